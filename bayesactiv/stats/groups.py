"""Groups of units and the frames of results: the layout every aggregate of :mod:`bayesactiv.stats` shares.

:func:`group_layout` gives the membership of units in the aggregate groups (those of
:func:`bayesactiv.data.grouping.group_units`, then pooled per-network rows);
:func:`group_mean` / :func:`group_var` aggregate a per-unit value over them;
:func:`unit_frame` / :func:`group_frame` are the empty frames results are written into.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from bayesactiv.data.checks import check_seed
from bayesactiv.data.grouping import Grouping, group_units, normalize_group_by

__all__ = [
    "BY_LAYER",
    "KEEP_EVENTS",
    "WINDOWS",
    "as_generator",
    "cluster_residual_sq",
    "group_frame",
    "group_layout",
    "group_mean",
    "group_var",
    "proportion",
    "unit_frame",
]

#: the default grouping of the aggregates: one row per layer (and one per network)
BY_LAYER = ("network", "layer")

#: how to record what a statistic needs (quoted in error messages)
KEEP_EVENTS = "record(..., keep_events=True)"
WINDOWS = "record(..., window_size=50)"


def _key_coord(grouping: Grouping, key: str) -> np.ndarray:
    """The ``group_<key>`` value of each group: as text, ``"*"`` where ``key`` does not split it."""
    if key not in grouping.coords:
        return np.full(grouping.n_groups, "*", dtype=object)
    return np.array([str(v) for v in grouping.coords[key]], dtype=object)


def _pooled_labels(pooled: Grouping, keys: tuple[str, ...]) -> np.ndarray:
    """Labels of the groups pooled over layers: the ``keys`` values, ``"*"`` for the layer."""
    columns = [_key_coord(pooled, key) for key in keys]
    return np.array(["/".join(row) for row in zip(*columns, strict=True)], dtype=object)


def group_layout(
    ds: xr.Dataset,
    *,
    networks: bool = True,
    group_by: Sequence[str] | str | None = ("network", "layer"),
) -> tuple[np.ndarray, xr.Dataset]:
    """Membership of units in the aggregate groups (one per ``group_by`` value, then networks).

    The groups are those of :func:`bayesactiv.data.grouping.group_units` (the grouping
    ``fit`` uses), in order of first appearance. When ``group_by`` holds both
    ``"network"`` and ``"layer"`` and ``networks`` is true, one pooled row per
    value of the other keys follows, over all layers: by default one
    ``"network/*"`` row per network; with ``("network", "layer", "epoch")`` one
    ``"network/*/epoch"`` row per network and epoch (the layers of one network
    at one checkpoint). Other choices of ``group_by`` get no pooled rows.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    networks : bool
        Add the pooled rows described above.
    group_by : sequence of str or str
        A subset of ``("network", "layer", "epoch")``; empty: one group ``"all"``.

    Returns
    -------
    member : numpy.ndarray of bool, shape (group, unit)
        ``member[g, u]`` is True when unit ``u`` belongs to group ``g``.
    coords : xarray.Dataset
        Empty dataset carrying the ``group`` (label), ``group_network`` and
        ``group_layer`` coordinates (``"*"`` where pooled or not a key), and
        ``group_epoch`` when ``"epoch"`` is a key.

    Raises
    ------
    ArgumentError
        An unknown or repeated key.
    DatasetError
        A key whose coordinate the dataset lacks.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([1, 2, 3], 5, network="net", layer=["a", "a", "b"])
    >>> member, coords = group_layout(ds)
    >>> coords["group"].values.tolist()
    ['net/a', 'net/b', 'net/*']
    >>> both = ba.combine([ba.make_dataset([1, 2], 5, network="net", layer=["a", "b"], epoch=e)
    ...                    for e in (0, 9)])
    >>> group_layout(both, group_by=("network", "layer", "epoch"))[1]["group"].values.tolist()
    ['net/a/0', 'net/b/0', 'net/a/9', 'net/b/9', 'net/*/0', 'net/*/9']
    """
    keys = normalize_group_by(group_by)
    parts = [group_units(ds, keys)]
    labels = [parts[0].labels.astype(object)]
    if networks and "network" in keys and "layer" in keys:
        parts.append(group_units(ds, tuple(key for key in keys if key != "layer")))
        labels.append(_pooled_labels(parts[1], keys))
    coords = {
        "group": ("group", np.concatenate(labels)),
        "group_network": ("group", np.concatenate([_key_coord(p, "network") for p in parts])),
        "group_layer": ("group", np.concatenate([_key_coord(p, "layer") for p in parts])),
    }
    if "epoch" in keys:
        coords["group_epoch"] = ("group", np.concatenate([p.coords["epoch"] for p in parts]))
    member = np.concatenate([part.member() for part in parts])
    return member, xr.Dataset(coords=coords)


def group_mean(member: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean over the units of each group, ignoring NaN (NaN when a group has none defined)."""
    ok = member & np.isfinite(values)[None, :]
    total = np.where(ok, values[None, :], 0.0).sum(axis=1)
    k = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, total / k, np.nan)


def group_var(member: np.ndarray, values: np.ndarray, ddof: int = 1) -> np.ndarray:
    """Variance over the units of each group (ddof 1), ignoring NaN."""
    ok = member & np.isfinite(values)[None, :]
    k = ok.sum(axis=1)
    mean = group_mean(member, values)
    dev = np.where(ok, values[None, :] - mean[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > ddof, (dev**2).sum(axis=1) / (k - ddof), np.nan)


def unit_frame(ds: xr.Dataset) -> xr.Dataset:
    """An empty dataset with the unit coordinates of ``ds``: the frame of per-unit results.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.

    Returns
    -------
    xarray.Dataset
        No variables; the ``unit``, ``network``, ``layer``, ``index`` and (when
        present) ``epoch`` coordinates of ``ds``.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> frame = unit_frame(ba.make_dataset([1, 2], 5, network="n", layer="l"))
    >>> list(frame.coords), len(frame.data_vars)
    (['unit', 'network', 'layer', 'index'], 0)
    """
    names = [c for c in ("unit", "network", "layer", "index", "epoch") if c in ds.coords]
    return xr.Dataset(coords={c: ds[c] for c in names})


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A generator from a checked seed (``None``, an integer >= 0) or a generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed))


def group_frame(ds: xr.Dataset, gcoords: xr.Dataset) -> xr.Dataset:
    """The unit frame of ``ds`` with the group coordinates of an aggregate."""
    return unit_frame(ds).merge(gcoords, compat="override", join="outer")


def proportion(count: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, count / np.maximum(n, 1), np.nan)


def cluster_residual_sq(count_sq: np.ndarray, count_n: np.ndarray, n_sq: np.ndarray,
                        p: np.ndarray) -> np.ndarray:
    """``sum_i (c_i - p t_i)**2`` from the sums over inputs ``sum c_i**2``, ``sum c_i t_i`` and
    ``sum t_i**2`` (clipped at 0 against rounding): the residual sum of squares of per-input
    counts ``c_i`` of ``t_i`` events around ``p t_i``, behind every cluster-robust variance
    and per-input Fano factor of bayesactiv.

    Examples
    --------
    >>> import numpy as np
    >>> c, t = np.array([3.0, 1.0]), np.array([4.0, 2.0])  # two inputs, p = 4 / 6: (3 - 8/3)**2 + (1 - 4/3)**2
    >>> round(float(cluster_residual_sq((c * c).sum(), (c * t).sum(), (t * t).sum(), 4 / 6)), 6)
    0.222222
    """
    return np.maximum(count_sq - 2 * p * count_n + p * p * n_sq, 0.0)
