"""Numbers about one unit of an activation dataset: its default firing intervals, the
unit worth viewing, and the threshold it was recorded with.

:func:`bayesactiv.viz.unit.unit_view` draws them.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from scipy import stats

from bayesactiv.data import DatasetError, validate
from bayesactiv.data.checks import check_int, check_prob

__all__ = ["default_intervals", "pick_unit", "threshold_value"]


def default_intervals(count: int, n: int, prob: float = 0.9) -> dict[str, tuple[float, float, float]]:
    """Wald and Jeffreys intervals for a firing probability ``count / n``.

    Parameters
    ----------
    count, n : int
        Events fired and observed.
    prob : float
        Interval mass.

    Returns
    -------
    dict
        label -> (estimate, low, high).

    Examples
    --------
    >>> iv = default_intervals(5, 20)
    >>> [round(v, 3) for v in iv["Wald 90%"]]
    [0.25, 0.091, 0.409]
    """
    prob = check_prob(prob)
    n = check_int(n, "n")
    count = check_int(count, "count", minimum=0)
    if n <= 0:
        raise DatasetError(f"n: needs at least one observed event, got {n}")
    if count > n:
        raise DatasetError(f"count: {count} exceeds n = {n}")
    p = count / n
    z = stats.norm.ppf(0.5 + prob / 2)
    half = z * np.sqrt(p * (1 - p) / n)
    a, b = count + 0.5, n - count + 0.5
    lo, hi = stats.beta.ppf([(1 - prob) / 2, (1 + prob) / 2], a, b)
    pct = f"{100 * prob:g}%"
    return {
        f"Wald {pct}": (float(p), float(max(0.0, p - half)), float(min(1.0, p + half))),
        f"Jeffreys {pct}": (float(a / (a + b)), float(lo), float(hi)),
    }


def pick_unit(ds: xr.Dataset, *, network: str | None = None, layer: str | None = None) -> str:
    """Choose a unit worth looking at: the strongest activation among units that fire
    sometimes but not always (falls back to the most-firing unit).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    network, layer : str, optional
        Restrict the choice to one network and/or layer.

    Returns
    -------
    str
        The unit id.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> pick_unit(ba.make_dataset([0, 4, 10], 10, network="n", layer="l"))
    'n/l/1'
    """
    validate(ds)
    mask = np.ones(ds.sizes["unit"], dtype=bool)
    if network is not None:
        mask &= ds["network"].values.astype(str) == network
    if layer is not None:
        mask &= ds["layer"].values.astype(str) == layer
    if not mask.any():
        raise DatasetError(f"unit: no units with network={network!r}, layer={layer!r}")
    count, n = ds["count"].values, ds["n"].values
    score = ds["act_max"].values if "act_max" in ds else count / np.maximum(n, 1)
    score = np.asarray(score, dtype=float)
    varied = mask & (count > 0) & (count < n)
    pool = varied if varied.any() else mask
    best = np.flatnonzero(pool)[np.argmax(np.where(np.isfinite(score[pool]), score[pool], -np.inf))]
    return str(ds["unit"].values[best])


def threshold_value(ds: xr.Dataset) -> float | None:
    """The fixed activation threshold a dataset was recorded with, or None for other rules.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> threshold_value(ba.make_dataset([1], 2, network="n", layer="l", threshold_params={"threshold": 0.0}))
    0.0
    """
    try:
        params = json.loads(ds.attrs.get("threshold_params", "{}"))
    except (TypeError, ValueError):
        return None
    for key in ("threshold", "value", "t"):
        if isinstance(params.get(key), (int, float)):
            return float(params[key])
    return None
