"""Frequentist baselines: Monte Carlo estimates, intervals and spike-train statistics.

These are the estimates the Bayesian models of :mod:`bayesactiv.bayes.models` are judged
against. Every function reads an activation dataset (see :mod:`bayesactiv.data.dataset`),
validates it first, and returns an :class:`xarray.Dataset` indexed by ``unit``;
aggregates are indexed by a ``group`` dimension. The groups are those of
:func:`bayesactiv.data.grouping.group_units`, the grouping ``fit`` uses: every
aggregate takes ``group_by`` (default ``("network", "layer")``: coordinate
``group`` reads ``"network/layer"``, one row per layer, then ``"network/*"``, all
layers of a network), with coordinates ``group_network`` and ``group_layer``
(``"*"`` for the pooled rows; the names differ from the ``network``/``layer``
coordinates on ``unit``) and ``group_epoch`` when ``"epoch"`` is a key (see
:func:`group_layout`).

Nothing here loops in Python over samples or units: estimates are closed forms
over ``count`` and ``n``, the bootstrap multiplies a matrix of resample counts by
the firing matrix, and the permutation test bins spike positions with ``bincount``.

Edge cases are reported as each method really gives them: a unit that never (or
always) fired gets a zero-width Wald interval, and its bootstrap estimates are all
equal, so every bootstrap interval, BCa included, is that single value (e.g.
[0, 0]); a Fano factor with zero mean is NaN. Spike-train statistics follow the
definitions of Elephant (``elephant.statistics``: ``isi``, ``cv``, ``cv2``,
``lv``, ``fanofactor``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import xarray as xr
from scipy import special

from bayesactiv.data.checks import ArgumentError, check_choice, check_int, check_prob, check_seed
from bayesactiv.data.dataset import DatasetError, require, validate
from bayesactiv.data.grouping import Grouping, group_units, normalize_group_by

__all__ = [
    "bootstrap",
    "fano",
    "fano_factor",
    "fano_null",
    "firing_rate",
    "group_layout",
    "intervals",
    "isi_cv",
    "monte_carlo",
    "monte_carlo_curve",
    "order_permutation_test",
    "spike_stats",
    "unit_frame",
]

#: the default grouping of the aggregates: one row per layer (and one per network)
_BY_LAYER = ("network", "layer")

_KEEP_EVENTS = "record(..., keep_events=True)"
_WINDOWS = "record(..., window_size=50)"
_INTERVAL_METHODS = ("wald", "wilson", "jeffreys", "clopper-pearson")
_BOOTSTRAP_METHODS = ("percentile", "bca", "basic")
_ALTERNATIVES = ("two-sided", "greater", "less")
_SPIKE_STATS = ("rate", "fano", "cv")


# ----------------------------------------------------------------------------- helpers


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


def _group_mean(member: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean over the units of each group, ignoring NaN (NaN when a group has none defined)."""
    ok = member & np.isfinite(values)[None, :]
    total = np.where(ok, values[None, :], 0.0).sum(axis=1)
    k = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, total / k, np.nan)


def _group_var(member: np.ndarray, values: np.ndarray, ddof: int = 1) -> np.ndarray:
    """Variance over the units of each group (ddof 1), ignoring NaN."""
    ok = member & np.isfinite(values)[None, :]
    k = ok.sum(axis=1)
    mean = _group_mean(member, values)
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


_unit_frame = unit_frame  # the former private name, kept for modules not yet switched


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A generator from a checked seed (``None``, an integer >= 0) or a generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed))


def _frame(ds: xr.Dataset, gcoords: xr.Dataset) -> xr.Dataset:
    """The unit frame of ``ds`` with the group coordinates of an aggregate."""
    return unit_frame(ds).merge(gcoords, compat="override", join="outer")


def _proportion(count: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, count / np.maximum(n, 1), np.nan)


# ----------------------------------------------------------------------------- Monte Carlo


def monte_carlo(ds: xr.Dataset, *, group_by: Sequence[str] | str | None = _BY_LAYER) -> xr.Dataset:
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
    p = _proportion(count, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(p * (1.0 - p) / n)
    with np.errstate(invalid="ignore", divide="ignore"):
        gest = (member * count).sum(axis=1) / (member * n).sum(axis=1)
    out = _frame(ds, gcoords)
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
    ds: xr.Dataset, n_points: int = 40, *, group_by: Sequence[str] | str | None = _BY_LAYER
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
            f"lacks; record it with {_KEEP_EVENTS} or {_WINDOWS}"
        )
    m = grid[:, None].astype(np.float64)
    p = counts / m
    se = np.sqrt(p * (1.0 - p) / m)
    out = _frame(ds, gcoords)
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
    p = _proportion(c, n)
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


# ----------------------------------------------------------------------------- bootstrap


def _resample_counts(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    """``b`` rows of multinomial(n, 1/n) resample counts (how often each input is drawn)."""
    draws = rng.integers(0, n, size=(b, n), dtype=np.int64)
    draws += (np.arange(b, dtype=np.int64) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=b * n).reshape(b, n)


def _column_quantile(sorted_b: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantile (numpy's default) of each column at its own level ``q``."""
    b = sorted_b.shape[0]
    q = np.broadcast_to(q, sorted_b.shape[1:])
    finite = np.isfinite(q)
    pos = np.where(finite, np.clip(q, 0, 1), 0.0) * (b - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, b - 1)
    frac = pos - lo
    cols = np.arange(sorted_b.shape[1])
    vlo = sorted_b[lo, cols]
    vhi = sorted_b[hi, cols]
    return np.where(finite, vlo + frac * (vhi - vlo), np.nan)


def bootstrap(
    ds: xr.Dataset,
    *,
    n_resamples: int = 9999,
    confidence_level: float = 0.95,
    method: Literal["percentile", "bca", "basic"] = "percentile",
    seed: int | np.random.Generator | None = None,
    batch: int | None = None,
) -> xr.Dataset:
    r"""Bootstrap intervals for each unit's firing probability, resampling inputs jointly.

    With ``fired``: each resample draws ``n`` inputs with replacement, the same inputs
    for every unit (co-firing is preserved). A resample is represented by its counts
    ``w`` (how often each input was drawn, a multinomial(n, 1/n) vector), so the
    resampled fire counts of all units are one matrix product ``W @ fired``
    (``W``: resamples x inputs), computed in chunks of ``batch`` resamples.

    Without ``fired``, with ``window_count``: a block bootstrap over the windows
    (blocks of ``window_size`` consecutive inputs are resampled with replacement),
    which keeps dependence within a window. The statistic is then the firing
    fraction over the inputs the windows cover.

    Intervals (parameter names as in :func:`scipy.stats.bootstrap`):

    - ``"percentile"``: quantiles :math:`\alpha/2, 1-\alpha/2` of the resampled estimates
      (linear interpolation, as scipy). Zero width for a unit that never/always fired.
    - ``"basic"``: :math:`2\hat\theta - ` the percentile bounds, reversed.
    - ``"bca"``: bias-corrected and accelerated (Efron & Tibshirani eq. 14.10), with
      :math:`z_0 = \Phi^{-1}(\#\{\theta^* < \hat\theta\} + \#\{\theta^* \le \hat\theta\}) / 2B)`
      and the jackknife acceleration in closed form: for a proportion
      :math:`a = (1 - 2\hat p) / (6\sqrt{n \hat p (1-\hat p)})`; for window blocks
      :math:`a = \sum d^3 / (6 (\sum d^2)^{3/2})`, :math:`d` = window count minus its mean.

    Where the resampled estimates of a unit are all equal (a unit that never or
    always fired, or equal counts in every window), the bootstrap distribution is
    a point mass: every quantile of it, at any level the BCa correction picks, is
    that value, so all three methods give the zero-width interval
    :math:`[\hat\theta, \hat\theta]` (e.g. [0, 0] for a never-fired unit). The
    acceleration is 0/0 there, which is why :func:`scipy.stats.bootstrap` returns
    NaN for BCa; the interval does not depend on it.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired`` or ``window_count``.
    n_resamples : int
        Number of bootstrap resamples ``B``.
    confidence_level : float
    method : {"percentile", "bca", "basic"}
    seed : int or numpy.random.Generator, optional
        A non-negative integer, a generator, or None (fresh entropy).
    batch : int, optional
        Resamples per chunk (bounds memory to about ``batch * n`` integers);
        default: chosen so that a chunk holds about 2**23 resample counts.

    Returns
    -------
    xarray.Dataset
        ``estimate``, ``low``, ``high``, ``standard_error`` (standard deviation of the
        resampled estimates, ddof 1) over ``unit``; attrs ``method``,
        ``confidence_level``, ``n_resamples``, ``resampled``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> fired = np.random.default_rng(0).random((200, 2)) < [0.0, 0.4]
    >>> ds = ba.make_dataset(fired.sum(0), 200, network="n", layer="l", fired=fired)
    >>> bs = ba.baselines.bootstrap(ds, n_resamples=999, seed=1)
    >>> float(bs["high"][0] - bs["low"][0])  # never fired: the percentile interval collapses
    0.0
    >>> bca = ba.baselines.bootstrap(ds, n_resamples=999, method="bca", seed=1)
    >>> float(bca["low"][0]), float(bca["high"][0])  # and so does BCa's
    (0.0, 0.0)
    """
    validate(ds)
    level = check_prob(confidence_level, "confidence_level")
    method = check_choice(method, "method", _BOOTSTRAP_METHODS)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=2)
    if batch is not None:
        batch = check_int(batch, "batch", minimum=1)
    rng = _rng(seed)
    if "fired" in ds.data_vars:
        data = ds["fired"].values
        denom = float(data.shape[0])
        resampled = "inputs"
    elif "window_count" in ds.data_vars:
        data = ds["window_count"].values
        denom = float(data.shape[0] * int(ds.attrs["window_size"]))
        resampled = f"windows of {int(ds.attrs['window_size'])} inputs (block bootstrap)"
    else:
        raise DatasetError(
            "fired: the bootstrap needs 'fired' (or 'window_count' for a block bootstrap), which "
            f"this dataset lacks; record it with {_KEEP_EVENTS} or {_WINDOWS}"
        )
    rows = data.shape[0]
    if rows < 2:
        raise DatasetError(f"fired: the bootstrap needs at least 2 samples or windows, got {rows}")
    # float32 holds integer sums exactly up to 2**24
    ftype = np.float32 if rows * max(1, int(data.max(initial=0))) < 2**24 else np.float64
    matrix = data.astype(ftype)
    if batch is None:
        batch = max(1, min(n_resamples, 2**23 // rows))
    theta_b = np.empty((n_resamples, data.shape[1]), dtype=np.float64)
    for start in range(0, n_resamples, batch):
        b = min(batch, n_resamples - start)
        weights = _resample_counts(rng, b, rows).astype(ftype)
        theta_b[start : start + b] = weights @ matrix
    theta_b /= denom
    theta_hat = data.sum(axis=0) / denom
    alpha = (1.0 - level) / 2
    if method == "bca":
        below = (theta_b < theta_hat).sum(axis=0) + (theta_b <= theta_hat).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            z0 = special.ndtri(below / (2.0 * n_resamples))
            if resampled == "inputs":
                c = theta_hat * denom
                spread = c * (denom - c) * denom
                # 0/0 at c = 0 or c = n: undefined, NaN as the jackknife gives
                a = np.where(spread > 0, (denom - 2 * c) / (6.0 * np.sqrt(spread)), np.nan)
            else:
                d = data - data.mean(axis=0)
                a = (d**3).sum(axis=0) / (6.0 * ((d**2).sum(axis=0)) ** 1.5)
            za = special.ndtri(alpha)
            q_low = special.ndtr(z0 + (z0 + za) / (1 - a * (z0 + za)))
            q_high = special.ndtr(z0 + (z0 - za) / (1 - a * (z0 - za)))
    else:
        q_low = np.full(data.shape[1], alpha)
        q_high = np.full(data.shape[1], 1 - alpha)
    theta_b.sort(axis=0)
    low = _column_quantile(theta_b, q_low)
    high = _column_quantile(theta_b, q_high)
    point = theta_b[0] == theta_b[-1]  # a point-mass bootstrap distribution: every quantile is it
    low = np.where(point, theta_b[0], low)
    high = np.where(point, theta_b[0], high)
    if method == "basic":
        low, high = 2 * theta_hat - high, 2 * theta_hat - low
    out = unit_frame(ds)
    out["estimate"] = ("unit", theta_hat)
    out["low"] = ("unit", low)
    out["high"] = ("unit", high)
    out["standard_error"] = ("unit", theta_b.std(axis=0, ddof=1))
    out.attrs.update(
        method=method, confidence_level=level, n_resamples=n_resamples, resampled=resampled
    )
    return out


# ----------------------------------------------------------------------------- spike trains


def firing_rate(ds: xr.Dataset, *, group_by: Sequence[str] | str | None = _BY_LAYER) -> xr.Dataset:
    """Poisson maximum-likelihood firing rate of each unit, and its per-group means.

    ``rate = count / n`` (events per input: the MLE of a Poisson rate observed over
    ``n`` unit-time steps, equal to the Monte Carlo firing probability). When
    ``window_count`` exists, ``rate_per_window`` is the mean window count (the
    MLE of the rate per window of ``window_size`` inputs). Per group: ``mfr``
    (mean firing rate: the unweighted mean over units of ``rate``),
    ``rate_var`` (variance over units of ``rate``, ddof 1) and ``n_units``.

    Parameters
    ----------
    ds : xarray.Dataset
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`group_layout`).

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import bayesactiv as ba
    >>> r = ba.baselines.firing_rate(ba.make_dataset([2, 4], 10, network="n", layer="l"))
    >>> r["mfr"].values.round(2).tolist()
    [0.3, 0.3]
    """
    validate(ds)
    member, gcoords = group_layout(ds, group_by=group_by)
    rate = _proportion(ds["count"].values.astype(np.float64), ds["n"].values.astype(np.float64))
    out = _frame(ds, gcoords)
    out["rate"] = ("unit", rate)
    if "window_count" in ds.data_vars:
        out["rate_per_window"] = ("unit", ds["window_count"].values.mean(axis=0))
    out["mfr"] = ("group", _group_mean(member, rate))
    out["rate_var"] = ("group", _group_var(member, rate))
    out["n_units"] = ("group", member.sum(axis=1))
    return out


def fano(counts: np.ndarray) -> np.ndarray:
    """Fano factor of spike counts along axis -2 (the windows, or trials): var (ddof 0) / mean.

    As ``elephant.statistics.fanofactor``: the population variance (ddof 0) of the
    counts over the observations divided by their mean, NaN when every count is 0
    (non-negative counts: mean 0) or when there is no observation.

    Parameters
    ----------
    counts : numpy.ndarray, shape (..., window, unit)
        Non-negative counts.

    Returns
    -------
    numpy.ndarray, shape (..., unit)

    Examples
    --------
    >>> import numpy as np
    >>> fano(np.array([[4, 0], [1, 0], [1, 0]])).tolist()  # var 2 / mean 2; never fired
    [1.0, nan]
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape[-2] == 0:
        return np.full(counts.shape[:-2] + counts.shape[-1:], np.nan)
    mean = counts.mean(axis=-2)
    var = counts.var(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, var / mean, np.nan)


_fano = fano  # the former private name, kept for modules not yet switched


def fano_null(p: np.ndarray, n: np.ndarray, window_size: int, n_windows: int) -> np.ndarray:
    r"""Expected Fano factor of window counts when the order of the inputs carries no structure.

    Take ``n`` inputs of which ``K = p n`` make the unit fire, in random order, cut
    into ``m`` consecutive windows of ``W`` inputs (covering ``N' = m W <= n``). A
    window count is hypergeometric: mean :math:`Wp`, variance
    :math:`Wp(1-p)(n-W)/(n-1)`. The total over the windows, :math:`K'`, is
    hypergeometric too, with variance :math:`N'p(1-p)(n-N')/(n-1)`, and the
    population variance (ddof 0) over windows has expectation
    :math:`\mathrm{Var}(x) - \mathrm{Var}(K')/m^2`. Dividing by the mean :math:`Wp`:

    .. math:: F_0 = (1-p)\,\frac{(n - W) - (n - N')/m}{n - 1},

    which is :math:`(1-p)(n-W)/(n-1)` when the windows cover all inputs (exact
    then, because the mean of the window counts is fixed at :math:`K/m`) and
    tends to :math:`1 - p` for many windows: not the Poisson value 1.
    For independent Bernoulli(p) firing the same holds conditionally on ``K``.

    Parameters
    ----------
    p : array_like
        Firing fraction of each unit (``count / n``).
    n : array_like
        Inputs observed.
    window_size, n_windows : int
        Both >= 1.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> float(fano_null(0.2, 1000, 50, 20))  # (1 - 0.2) * 950 / 999
    0.7607607607607607
    """
    window_size = check_int(window_size, "window_size", minimum=1)
    n_windows = check_int(n_windows, "n_windows", minimum=1)
    p = np.asarray(p, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    covered = float(window_size * n_windows)
    return (1.0 - p) * ((n - window_size) - (n - covered) / n_windows) / (n - 1.0)


def fano_factor(ds: xr.Dataset, *, group_by: Sequence[str] | str | None = _BY_LAYER) -> xr.Dataset:
    r"""Fano factor of each unit's window counts, beside its random-order null.

    ``fano = var / mean`` of the unit's counts over the windows of
    ``window_count`` (:func:`fano`: the definition of
    ``elephant.statistics.fanofactor`` with the windows as trials: population
    variance, ddof 0, which also makes :func:`fano_null` exact). Units that never
    fired in the windows (mean 0) get NaN: the ratio is undefined there, not 0.
    ``fano_null`` is the expectation under random order (see :func:`fano_null`;
    it uses ``p = count / n``), and ``fano_ratio = fano / fano_null`` (NaN where
    the null is 0, i.e. units that always fired). Per group: ``mf`` (mean Fano
    factor over the units with a defined Fano factor), ``fano_var`` (variance
    over those units, ddof 1), ``mf_null`` (mean of their nulls), ``n_fano`` (how
    many units).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``window_count``.
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`group_layout`).

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> wc = np.array([[5, 0], [5, 0], [0, 0], [0, 0]])
    >>> ds = ba.make_dataset([10, 0], 20, network="n", layer="l", window_count=wc, window_size=5)
    >>> ba.baselines.fano_factor(ds)["fano"].values.tolist()
    [2.5, nan]
    """
    validate(ds)
    require(ds, "window_count", "the Fano factor", _WINDOWS)
    member, gcoords = group_layout(ds, group_by=group_by)
    wc = ds["window_count"].values.astype(np.float64)
    size = int(ds.attrs["window_size"])
    factor = fano(wc)
    p = _proportion(ds["count"].values.astype(np.float64), ds["n"].values.astype(np.float64))
    null = fano_null(p, ds["n"].values, size, wc.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(null > 0, factor / null, np.nan)
    defined = np.where(np.isfinite(factor), null, np.nan)
    out = _frame(ds, gcoords)
    out["fano"] = ("unit", factor)
    out["fano_null"] = ("unit", null)
    out["fano_ratio"] = ("unit", ratio)
    out["mf"] = ("group", _group_mean(member, factor))
    out["fano_var"] = ("group", _group_var(member, factor))
    out["mf_null"] = ("group", _group_mean(member, defined))
    out["n_fano"] = ("group", (member & np.isfinite(factor)).sum(axis=1))
    out.attrs.update(window_size=size, fano_ddof=0)
    return out


def _intervals_by_unit(fired: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inter-spike intervals of all units, unit after unit, and the unit each belongs to."""
    unit_idx, sample_idx = np.nonzero(np.ascontiguousarray(fired.T))
    same = unit_idx[1:] == unit_idx[:-1]
    return np.diff(sample_idx)[same].astype(np.float64), unit_idx[1:][same]


def _isi_variation(isi: np.ndarray, owner: np.ndarray, k: int, ddof: int) -> tuple[np.ndarray, ...]:
    """Per unit: number of intervals, their mean and ``std(ddof) / mean`` (NaN at <= ddof)."""
    m = np.bincount(owner, minlength=k).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(owner, weights=isi, minlength=k) / m
        dev = isi - mean[owner]
        var = np.bincount(owner, weights=dev**2, minlength=k) / (m - ddof)
        cv = np.where(m > ddof, np.sqrt(var) / mean, np.nan)
    return m, np.where(m >= 1, mean, np.nan), cv


def _isi_local(isi: np.ndarray, owner: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: Elephant's CV2 and LV of consecutive intervals (NaN with fewer than 2)."""
    pair = owner[1:] == owner[:-1]
    ratio = (np.diff(isi) / (isi[:-1] + isi[1:]))[pair]
    pair_owner = owner[1:][pair]
    pairs = np.bincount(pair_owner, minlength=k).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv2 = 2.0 * np.bincount(pair_owner, weights=np.abs(ratio), minlength=k) / pairs
        lv = 3.0 * np.bincount(pair_owner, weights=ratio**2, minlength=k) / pairs
    return np.where(pairs > 0, cv2, np.nan), np.where(pairs > 0, lv, np.nan)


def isi_cv(
    ds: xr.Dataset, *, ddof: int = 0, group_by: Sequence[str] | str | None = _BY_LAYER
) -> xr.Dataset:
    r"""Variability of each unit's inter-spike intervals: CV, CV2 and LV, as Elephant defines them.

    The spike train of a unit is the ordered list of samples in which it fired;
    the inter-spike intervals :math:`I_1, \dots, I_N` are the differences of
    consecutive firing sample indices (``elephant.statistics.isi``).

    - ``isi_cv``: ``elephant.statistics.cv`` of the intervals, which is
      :func:`scipy.stats.variation`: ``std(I, ddof) / mean(I)`` with ddof 0 by
      default. It is NaN with fewer than ``ddof + 1`` intervals (no interval, i.e.
      fewer than 2 spikes, at ddof 0) and, as there, 0 for a single interval.
      ``ddof=1`` gives the sample standard deviation (NaN below 2 intervals).
    - ``isi_cv2``: ``elephant.statistics.cv2``,
      :math:`\frac{2}{N-1}\sum_{i=1}^{N-1} |I_{i+1}-I_i| / (I_{i+1}+I_i)`.
    - ``isi_lv``: ``elephant.statistics.lv``,
      :math:`\frac{3}{N-1}\sum_{i=1}^{N-1} (I_i-I_{i+1})^2 / (I_i+I_{i+1})^2`.
      Both are NaN with fewer than 2 intervals (Elephant's ``with_nan=True``).

    Where Elephant signals a too short train (``cv``: scipy's ``SmallSampleWarning``
    on no interval; ``cv2``/``lv``: a ``ValueError``, or a warning with
    ``with_nan=True``), a layer of many units would signal again and again: here
    nothing is raised, the affected units are NaN, and ``n_isi_cv`` counts the
    units with a defined CV.

    For independent firing with probability ``p`` the intervals are geometric and
    the CV is about :math:`\sqrt{1-p}` (1 only in the Poisson limit). Per group:
    ``mean_isi_cv``, ``mean_isi_cv2``, ``mean_isi_lv`` over the units where each
    is defined, and ``n_isi_cv``.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired``.
    ddof : {0, 1}
        Delta degrees of freedom of the standard deviation in ``isi_cv``.
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`group_layout`).

    Returns
    -------
    xarray.Dataset
        ``isi_cv``, ``isi_cv2``, ``isi_lv``, ``isi_mean`` over ``unit``; the
        group means over ``group``; attrs ``isi_ddof``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> fired = np.zeros((10, 1), bool); fired[[0, 2, 4, 6], 0] = True
    >>> ds = ba.make_dataset(fired.sum(0), 10, network="n", layer="l", fired=fired)
    >>> float(ba.baselines.isi_cv(ds)["isi_cv"][0])  # perfectly regular
    0.0
    """
    validate(ds)
    ddof = check_int(ddof, "ddof", minimum=0, maximum=1)
    require(ds, "fired", "the coefficient of variation of inter-spike intervals", _KEEP_EVENTS)
    member, gcoords = group_layout(ds, group_by=group_by)
    k = ds["fired"].shape[1]
    isi, owner = _intervals_by_unit(ds["fired"].values)
    _, mean, cv = _isi_variation(isi, owner, k, ddof)
    cv2, lv = _isi_local(isi, owner, k)
    out = _frame(ds, gcoords)
    out["isi_cv"] = ("unit", cv)
    out["isi_cv2"] = ("unit", cv2)
    out["isi_lv"] = ("unit", lv)
    out["isi_mean"] = ("unit", mean)
    out["mean_isi_cv"] = ("group", _group_mean(member, cv))
    out["mean_isi_cv2"] = ("group", _group_mean(member, cv2))
    out["mean_isi_lv"] = ("group", _group_mean(member, lv))
    out["n_isi_cv"] = ("group", (member & np.isfinite(cv)).sum(axis=1))
    out.attrs.update(isi_ddof=ddof)
    return out


def _wanted_stats(ds: xr.Dataset, stats: Sequence[str] | str | None) -> tuple[list[str], list[str]]:
    """The statistics to compute and, by default, those skipped for lack of data."""
    if stats is None:
        wanted, skipped = ["rate"], []
        for name, var in (("fano", "window_count"), ("cv", "fired")):
            if var in ds.data_vars:
                wanted.append(name)
            else:
                skipped.append(f"{name} (needs {var})")
        return wanted, skipped
    wanted = [stats] if isinstance(stats, str) else list(stats)
    for name in wanted:
        check_choice(name, "stats", _SPIKE_STATS)
    if not wanted:
        raise ArgumentError("stats: nothing to compute; choose from 'rate', 'fano', 'cv'")
    return wanted, []


def spike_stats(
    ds: xr.Dataset,
    stats: Sequence[str] | str | None = None,
    *,
    group_by: Sequence[str] | str | None = _BY_LAYER,
) -> xr.Dataset:
    """Spike-train statistics of each unit (seed 002): rate, Fano factor, ISI variability.

    Combines :func:`firing_rate` (``rate``, ``rate_per_window``, ``mfr``,
    ``rate_var``), :func:`fano_factor` (``fano``, ``fano_null``, ``fano_ratio``,
    ``mf``, ``fano_var``, ``mf_null``) and :func:`isi_cv` (``isi_cv``,
    ``isi_cv2``, ``isi_lv``, ``mean_isi_cv``, ...); see those for the exact
    definitions.

    Parameters
    ----------
    ds : xarray.Dataset
    stats : sequence of {"rate", "fano", "cv"}, optional
        What to compute. Default: everything the dataset supports (``rate``
        always, ``fano`` with ``window_count``, ``cv`` with ``fired``); what was
        skipped is listed in ``attrs["skipped"]``. Asking explicitly for a
        statistic whose data are missing raises :class:`DatasetError`.
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`group_layout`).

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import bayesactiv as ba
    >>> s = ba.baselines.spike_stats(ba.make_dataset([1, 3], 10, network="n", layer="l"))
    >>> s.attrs["skipped"]
    'fano (needs window_count), cv (needs fired)'
    """
    validate(ds)
    wanted, skipped = _wanted_stats(ds, stats)
    parts = [firing_rate(ds, group_by=group_by)] if "rate" in wanted else []
    if "fano" in wanted:
        parts.append(fano_factor(ds, group_by=group_by))
    if "cv" in wanted:
        parts.append(isi_cv(ds, group_by=group_by))
    out = xr.merge(parts, compat="override", join="outer", combine_attrs="drop_conflicts")
    out.attrs["skipped"] = ", ".join(skipped)
    return out


def order_permutation_test(
    ds: xr.Dataset,
    n_permutations: int = 999,
    *,
    window_size: int | None = None,
    alternative: Literal["two-sided", "greater", "less"] = "two-sided",
    seed: int | np.random.Generator | None = None,
    batch: int | None = None,
    group_by: Sequence[str] | str | None = _BY_LAYER,
) -> xr.Dataset:
    """Permutation test of whether the order of the inputs carries structure.

    The statistic is each unit's Fano factor of window counts (ddof 0, windows of
    ``window_size`` consecutive samples covering the first ``m * window_size``
    samples), and per group the mean Fano factor (MF) over units with a defined
    Fano factor. Under the null the sample order is exchangeable: each
    permutation shuffles the order of all samples jointly (co-firing between units
    is kept). Only the positions of the spikes matter, so a permutation is a
    random relabelling of samples to windows, and the window counts of all units
    are one ``bincount`` of the spikes' new window labels.

    p-values are ``(1 + #{T* >= T}) / (1 + B)`` (``"greater"``: bursty, clustered
    firing), the mirror for ``"less"`` (regular firing), and twice the smaller,
    capped at 1, for ``"two-sided"``. Units without a defined Fano factor get NaN.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired``.
    n_permutations : int
        At least 1.
    window_size : int, optional
        Default: ``ds.attrs["window_size"]``.
    alternative : {"two-sided", "greater", "less"}
    seed : int or numpy.random.Generator, optional
        A non-negative integer, a generator, or None (fresh entropy).
    batch : int, optional
        Permutations per chunk (memory about ``batch * total spikes`` integers).
    group_by : sequence of str or str
        Keys of the groups of the MF statistic (see :func:`group_layout`).

    Returns
    -------
    xarray.Dataset
        ``fano``, ``fano_perm_mean``, ``p_value`` over ``unit``; ``mf``,
        ``mf_perm_mean``, ``mf_p_value`` over ``group``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> fired = np.zeros((400, 1), bool); fired[:40, 0] = True  # one burst
    >>> ds = ba.make_dataset(fired.sum(0), 400, network="n", layer="l", fired=fired)
    >>> t = ba.baselines.order_permutation_test(ds, 199, window_size=20, seed=0)
    >>> float(t["p_value"][0])
    0.01
    """
    validate(ds)
    n_permutations = check_int(n_permutations, "n_permutations", minimum=1)
    alternative = check_choice(alternative, "alternative", _ALTERNATIVES)
    if batch is not None:
        batch = check_int(batch, "batch", minimum=1)
    rng = _rng(seed)
    require(ds, "fired", "the order permutation test", _KEEP_EVENTS)
    if window_size is None:
        if "window_size" not in ds.attrs:
            raise ArgumentError("window_size: not given and the dataset has no 'window_size' attribute")
        window_size = ds.attrs["window_size"]
    window_size = check_int(window_size, "window_size", minimum=1)
    fired = ds["fired"].values
    n, k = fired.shape
    m = n // window_size
    if m < 2:
        raise ArgumentError(
            f"window_size: need at least 2 windows of >= 1 sample in {n} samples, got {window_size}"
        )
    labels = np.full(n, m, dtype=np.int64)  # label m: the uncovered tail
    labels[: m * window_size] = np.repeat(np.arange(m), window_size)
    unit_idx, sample_idx = np.nonzero(np.ascontiguousarray(fired.T))
    spikes = len(sample_idx)
    offset = unit_idx * (m + 1)

    def window_counts(lab: np.ndarray) -> np.ndarray:
        """lab: (b, n) window label of each sample -> (b, m, k) window counts."""
        b = lab.shape[0]
        keys = lab[:, sample_idx] + offset[None, :] + (np.arange(b) * k * (m + 1))[:, None]
        wc = np.bincount(keys.ravel(), minlength=b * k * (m + 1)).reshape(b, k, m + 1)
        return np.swapaxes(wc[:, :, :m], 1, 2).astype(np.float64)

    observed = fano(window_counts(labels[None, :]))[0]
    member, gcoords = group_layout(ds, group_by=group_by)
    mf_obs = _group_mean(member, observed)
    if batch is None:
        batch = max(1, min(n_permutations, 2**22 // max(spikes + k * (m + 1), 1)))
    ge = np.zeros(k)
    le = np.zeros(k)
    total = np.zeros(k)
    gge = np.zeros(len(mf_obs))
    gle = np.zeros(len(mf_obs))
    gtotal = np.zeros(len(mf_obs))
    tol = 1e-12
    for start in range(0, n_permutations, batch):
        b = min(batch, n_permutations - start)
        lab = rng.permuted(np.broadcast_to(labels, (b, n)), axis=1)
        perm = fano(window_counts(lab))  # (b, k)
        ge += (perm >= observed - tol).sum(axis=0)
        le += (perm <= observed + tol).sum(axis=0)
        total += perm.sum(axis=0)
        ok = np.isfinite(perm)
        gsum = np.where(ok, perm, 0.0) @ member.T
        with np.errstate(invalid="ignore", divide="ignore"):
            gperm = gsum / (ok.astype(np.float64) @ member.T)
        gge += (gperm >= mf_obs - tol).sum(axis=0)
        gle += (gperm <= mf_obs + tol).sum(axis=0)
        gtotal += gperm.sum(axis=0)

    def pvalue(obs: np.ndarray, n_ge: np.ndarray, n_le: np.ndarray) -> np.ndarray:
        greater = (1 + n_ge) / (1 + n_permutations)
        less = (1 + n_le) / (1 + n_permutations)
        if alternative == "greater":
            p = greater
        elif alternative == "less":
            p = less
        else:
            p = np.minimum(1.0, 2 * np.minimum(greater, less))
        return np.where(np.isfinite(obs), p, np.nan)

    out = _frame(ds, gcoords)
    out["fano"] = ("unit", observed)
    out["fano_perm_mean"] = ("unit", np.where(np.isfinite(observed), total / n_permutations, np.nan))
    out["p_value"] = ("unit", pvalue(observed, ge, le))
    out["mf"] = ("group", mf_obs)
    out["mf_perm_mean"] = ("group", gtotal / n_permutations)
    out["mf_p_value"] = ("group", pvalue(mf_obs, gge, gle))
    out.attrs.update(
        n_permutations=n_permutations, window_size=window_size, alternative=alternative,
        statistic="Fano factor of window counts (ddof 0)",
    )
    return out

