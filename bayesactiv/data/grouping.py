"""The one grouping of units: which units share a layer-level prior or an aggregate.

``fit(..., group_by=...)``, the aggregates of :mod:`bayesactiv.stats.baselines` and
:mod:`bayesactiv.stats.descriptive` all group units with :func:`group_units`, so a
"group" means the same units everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data.checks import ArgumentError
from bayesactiv.data.contract import DatasetError

__all__ = ["GROUP_KEYS", "Grouping", "group_units", "normalize_group_by"]

#: the unit coordinates that may define groups
GROUP_KEYS = ("network", "layer", "epoch")


@dataclass(frozen=True)
class Grouping:
    """Membership of units in groups.

    Attributes
    ----------
    keys : tuple of str
        The coordinates that define the groups (a subset of :data:`GROUP_KEYS`).
    index : numpy.ndarray of int64, shape (unit,)
        The group of each unit, numbered in order of first appearance.
    labels : numpy.ndarray of object, shape (group,)
        ``"/"``-joined values of the keys (``"all"`` when ``keys`` is empty).
    coords : dict of str to numpy.ndarray
        The value of each key per group.
    """

    keys: tuple[str, ...]
    index: np.ndarray
    labels: np.ndarray
    coords: dict[str, np.ndarray]

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return len(self.labels)

    def member(self) -> np.ndarray:
        """Boolean membership matrix of shape (group, unit)."""
        return self.index[None, :] == np.arange(self.n_groups)[:, None]


def normalize_group_by(group_by: Sequence[str] | str | None) -> tuple[str, ...]:
    """Turn ``group_by`` into a tuple of known, distinct keys.

    Examples
    --------
    >>> from bayesactiv.data.grouping import normalize_group_by
    >>> normalize_group_by("layer")
    ('layer',)
    """
    if group_by is None:
        return ()
    keys = (group_by,) if isinstance(group_by, str) else tuple(group_by)
    for key in keys:
        if not isinstance(key, str) or key not in GROUP_KEYS:
            raise ArgumentError(f"group_by: unknown key {key!r}; use a subset of {GROUP_KEYS}")
    if len(set(keys)) != len(keys):
        raise ArgumentError(f"group_by: repeated keys in {keys}")
    return keys


def group_units(ds: xr.Dataset, group_by: Sequence[str] | str | None = ("network", "layer")) -> Grouping:
    """Group the units of an activation dataset by some of their coordinates.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    group_by : sequence of str or str
        A subset of ``("network", "layer", "epoch")``; empty puts all units in one
        group labelled ``"all"``.

    Returns
    -------
    Grouping

    Raises
    ------
    ArgumentError
        An unknown or repeated key.
    DatasetError
        A key whose coordinate the dataset lacks.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> from bayesactiv.data.grouping import group_units
    >>> ds = ba.make_dataset([1, 2, 3], 5, network="net", layer=["a", "a", "b"])
    >>> g = group_units(ds)
    >>> g.labels.tolist(), g.index.tolist()
    (['net/a', 'net/b'], [0, 0, 1])
    """
    keys = normalize_group_by(group_by)
    for key in keys:
        if key not in ds.coords:
            raise DatasetError(f"{key}: group_by needs the {key!r} coordinate, which is missing")
    n_units = ds.sizes["unit"]
    if not keys:
        return Grouping((), np.zeros(n_units, dtype=np.int64), np.array(["all"], dtype=object), {})
    # hash-based codes per key, combined; factorize keeps the order of first appearance
    cols = [ds[key].values for key in keys]
    code = np.zeros(n_units, dtype=np.int64)
    for col in cols:
        codes, uniques = pd.factorize(col)
        code = code * max(len(uniques), 1) + codes
    index, _ = pd.factorize(code)
    first = np.zeros(index.max(initial=-1) + 1, dtype=np.int64)
    first[index[::-1]] = np.arange(n_units)[::-1]
    labels = np.array(["/".join(str(col[i]) for col in cols) for i in first], dtype=object)
    coords = {key: ds[key].values[first] for key in keys}
    return Grouping(keys, index.astype(np.int64), labels, coords)
