"""Monte Carlo estimates of firing probabilities and their frequentist intervals.

:func:`monte_carlo` (count / n, with per-group means), :func:`monte_carlo_curve` (the
estimate as inputs accumulate) and :func:`intervals` (Wald, Wilson, Jeffreys,
Clopper-Pearson).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import xarray as xr
from scipy import special

from bayesactiv.data import DatasetError, validate
from bayesactiv.data.checks import check_choice, check_int, check_prob
from bayesactiv.stats.groups import (
    BY_LAYER,
    KEEP_EVENTS,
    WINDOWS,
    group_frame,
    group_layout,
    proportion,
    unit_frame,
)

__all__ = ["intervals", "monte_carlo", "monte_carlo_curve"]

_INTERVAL_METHODS = ("wald", "wilson", "jeffreys", "clopper-pearson")


# ----------------------------------------------------------------------------- Monte Carlo


def monte_carlo(ds: xr.Dataset, *, group_by: Sequence[str] | str | None = BY_LAYER) -> xr.Dataset:
    """Monte Carlo estimate of each unit's firing probability, with its standard error.

    ``estimate = count / n`` estimates P(activation > threshold) over the input
    distribution; ``standard_error = sqrt(p (1 - p) / n)`` is its binomial standard
    error evaluated at the estimate (so it is 0 for a unit that never or always fired).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset (needs only ``count`` and ``n``).
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`group_layout`).

    Returns
    -------
    xarray.Dataset
        ``estimate``, ``standard_error``, ``count``, ``n`` over ``unit``, and
        ``group_estimate`` (pooled ``sum count / sum n``) over ``group``.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> mc = ba.baselines.monte_carlo(ba.make_dataset([0, 5, 20], 20, network="n", layer="l"))
    >>> mc["estimate"].values.tolist()
    [0.0, 0.25, 1.0]
    """
    validate(ds)
    count = ds["count"].values.astype(np.float64)
    n = ds["n"].values.astype(np.float64)
    member, gcoords = group_layout(ds, group_by=group_by)
    p = proportion(count, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(p * (1.0 - p) / n)
    with np.errstate(invalid="ignore", divide="ignore"):
        gest = (member * count).sum(axis=1) / (member * n).sum(axis=1)
    out = group_frame(ds, gcoords)
    out["estimate"] = ("unit", p)
    out["standard_error"] = ("unit", se)
    out["count"] = ds["count"]
    out["n"] = ds["n"]
    out["group_estimate"] = ("group", gest)
    out.attrs.update(method="monte carlo", threshold_rule=ds.attrs.get("threshold_rule", ""))
    return out


def _grid(total: int, n_points: int) -> np.ndarray:
    """About ``n_points`` log-spaced distinct integers from 1 to ``total`` (``total`` included)."""
    grid = np.unique(np.round(np.geomspace(1, total, n_points)).astype(np.int64))
    return grid[(grid >= 1) & (grid <= total)]


def monte_carlo_curve(
    ds: xr.Dataset, n_points: int = 40, *, group_by: Sequence[str] | str | None = BY_LAYER
) -> xr.Dataset:
    """How the Monte Carlo estimate behaves as the number of samples grows.

    For each sample size ``m`` on a log-spaced grid, the estimate of each unit from
    the first ``m`` samples (in recording order) and its standard error
    ``sqrt(p (1-p) / m)``. Per group: the mean over units of the estimate
    (``group_estimate``) and the root mean square of the units' standard errors
    (``group_standard_error``, the typical per-unit error, which falls as
    ``1/sqrt(m)`` once the estimate has settled).

    Needs ``fired``; without it, ``window_count`` is used and the grid is made of
    window boundaries (``m = k * window_size``).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired`` or ``window_count``.
    n_points : int
        Approximate number of grid points (>= 2).
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`group_layout`).

    Returns
    -------
    xarray.Dataset
        ``estimate``, ``standard_error`` over (``n_samples``, ``unit``);
        ``group_estimate``, ``group_standard_error`` over (``n_samples``, ``group``).

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> fired = np.random.default_rng(0).random((500, 3)) < 0.3
    >>> ds = ba.make_dataset(fired.sum(0), 500, network="n", layer="l", fired=fired)
    >>> curve = ba.baselines.monte_carlo_curve(ds, n_points=10)
    >>> int(curve["n_samples"][-1])
    500
    """
    validate(ds)
    n_points = check_int(n_points, "n_points", minimum=2)
    member, gcoords = group_layout(ds, group_by=group_by)
    if "fired" in ds.data_vars:
        fired = ds["fired"].values
        grid = _grid(fired.shape[0], n_points)
        starts = np.concatenate([[0], grid[:-1]])
        seg = np.add.reduceat(fired.view(np.uint8), starts, axis=0, dtype=np.int64)
        counts = np.cumsum(seg, axis=0)
        source = "fired"
    elif "window_count" in ds.data_vars:
        wc = ds["window_count"].values
        size = int(ds.attrs["window_size"])
        k = _grid(wc.shape[0], n_points)
        counts = np.cumsum(wc, axis=0)[k - 1]
        grid = k * size
        source = "window_count"
    else:
        raise DatasetError(
            "fired: the Monte Carlo curve needs 'fired' or 'window_count', which this dataset "
            f"lacks; record it with {KEEP_EVENTS} or {WINDOWS}"
        )
    m = grid[:, None].astype(np.float64)
    p = counts / m
    se = np.sqrt(p * (1.0 - p) / m)
    out = group_frame(ds, gcoords)
    out = out.assign_coords(n_samples=("n_samples", grid))
    out["estimate"] = (("n_samples", "unit"), p)
    out["standard_error"] = (("n_samples", "unit"), se)
    k = member.sum(axis=1)
    out["group_estimate"] = (("n_samples", "group"), (p @ member.T) / k)
    out["group_standard_error"] = (("n_samples", "group"), np.sqrt((se**2 @ member.T) / k))
    out.attrs.update(method="monte carlo curve", source=source)
    return out


# ----------------------------------------------------------------------------- intervals


def intervals(
    ds: xr.Dataset,
    method: Literal["wald", "wilson", "jeffreys", "clopper-pearson"] = "wilson",
    confidence_level: float = 0.95,
) -> xr.Dataset:
    r"""Analytic confidence intervals for each unit's firing probability.

    With :math:`\hat p = c/n`, :math:`z = \Phi^{-1}(1 - \alpha/2)`, :math:`\alpha = 1 - ` level:

    - ``"wald"``: :math:`\hat p \pm z \sqrt{\hat p(1-\hat p)/n}`, not clipped to [0, 1]
      and of zero width when ``c = 0`` or ``c = n``.
    - ``"wilson"``: the score interval
      :math:`\frac{\hat p + z^2/2n \pm z\sqrt{\hat p(1-\hat p)/n + z^2/4n^2}}{1 + z^2/n}`
      (no continuity correction; as ``scipy.stats.binomtest(...).proportion_ci("wilson")``).
    - ``"jeffreys"``: the equal-tailed interval of the Beta(c + 1/2, n - c + 1/2)
      posterior (the Jeffreys prior), without the Brown-Cai-DasGupta boundary
      modification.
    - ``"clopper-pearson"``: the exact interval from Beta quantiles, lower bound 0 at
      ``c = 0`` and upper bound 1 at ``c = n`` (as ``proportion_ci("exact")``).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    method : {"wald", "wilson", "jeffreys", "clopper-pearson"}
    confidence_level : float

    Returns
    -------
    xarray.Dataset
        ``estimate``, ``low``, ``high``, ``width`` over ``unit``; attrs ``method``,
        ``confidence_level``.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 10], 20, network="n", layer="l")
    >>> ci = ba.baselines.intervals(ds, "wald")
    >>> ci["width"].values.round(3).tolist()
    [0.0, 0.438]
    """
    validate(ds)
    method = check_choice(method, "method", _INTERVAL_METHODS)
    level = check_prob(confidence_level, "confidence_level")
    alpha = 1.0 - level
    c = ds["count"].values.astype(np.float64)
    n = ds["n"].values.astype(np.float64)
    p = proportion(c, n)
    z = special.ndtri(1.0 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "wald":
            half = z * np.sqrt(p * (1.0 - p) / n)
            low, high = p - half, p + half
        elif method == "wilson":
            denom = 1.0 + z**2 / n
            centre = (p + z**2 / (2 * n)) / denom
            half = z * np.sqrt(p * (1.0 - p) / n + z**2 / (4 * n**2)) / denom
            low, high = centre - half, centre + half
        elif method == "jeffreys":
            low = special.betaincinv(c + 0.5, n - c + 0.5, alpha / 2)
            high = special.betaincinv(c + 0.5, n - c + 0.5, 1 - alpha / 2)
        else:  # clopper-pearson
            low = np.where(c > 0, special.betaincinv(np.maximum(c, 1), n - c + 1, alpha / 2), 0.0)
            high = np.where(
                c < n, special.betaincinv(c + 1, np.maximum(n - c, 1), 1 - alpha / 2), 1.0
            )
    low = np.where(n > 0, low, np.nan)
    high = np.where(n > 0, high, np.nan)
    out = unit_frame(ds)
    out["estimate"] = ("unit", p)
    out["low"] = ("unit", low)
    out["high"] = ("unit", high)
    out["width"] = ("unit", high - low)
    out.attrs.update(method=method, confidence_level=level)
    return out

