"""Frequentist baselines: Monte Carlo estimates, intervals and spike-train statistics.

These are the estimates the Bayesian models of :mod:`bayesactiv.models` are judged
against. Every function reads an activation dataset (see :mod:`bayesactiv.dataset`),
validates it first, and returns an :class:`xarray.Dataset` indexed by ``unit``;
aggregates are indexed by a ``group`` dimension whose coordinate ``group`` reads
``"network/layer"`` (one row per layer) or ``"network/*"`` (all layers of a
network), with coordinates ``group_network`` and ``group_layer`` (``"*"`` for the
network rows; the names differ from the ``network``/``layer`` coordinates on ``unit``).

Nothing here loops in Python over samples or units: estimates are closed forms
over ``count`` and ``n``, the bootstrap multiplies a matrix of resample counts by
the firing matrix, and the permutation test bins spike positions with ``bincount``.

Edge cases are reported as each method really gives them: a unit that never (or
always) fired gets a zero-width Wald and percentile-bootstrap interval, BCa gives
NaN there (its acceleration is undefined), and a Fano factor with zero mean is NaN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr
from scipy import special

from bayesactiv.dataset import DatasetError, require, validate

__all__ = [
    "bootstrap",
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
]

_KEEP_EVENTS = "record(..., keep_events=True)"
_WINDOWS = "record(..., window_size=50)"


# ----------------------------------------------------------------------------- helpers


def group_layout(ds: xr.Dataset, *, networks: bool = True) -> tuple[np.ndarray, xr.Dataset]:
    """Membership of units in the aggregate groups (layers, then whole networks).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    networks : bool
        Add one ``"network/*"`` group per network (all its layers) after the layers.

    Returns
    -------
    member : numpy.ndarray of bool, shape (group, unit)
        ``member[g, u]`` is True when unit ``u`` belongs to group ``g``.
    coords : xarray.Dataset
        Empty dataset carrying the ``group``, ``group_network`` and ``group_layer``
        coordinates.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([1, 2, 3], 5, network="net", layer=["a", "a", "b"])
    >>> member, coords = group_layout(ds)
    >>> coords["group"].values.tolist()
    ['net/a', 'net/b', 'net/*']
    """
    net = ds["network"].values.astype(str)
    lay = ds["layer"].values.astype(str)
    keys = list(dict.fromkeys(zip(net.tolist(), lay.tolist())))
    rows = [(a, b, (net == a) & (lay == b)) for a, b in keys]
    if networks:
        rows += [(a, "*", net == a) for a in dict.fromkeys(net.tolist())]
    member = np.stack([r[2] for r in rows])
    coords = xr.Dataset(
        coords={
            "group": ("group", np.array([f"{a}/{b}" for a, b, _ in rows], dtype=object)),
            "group_network": ("group", np.array([a for a, _, _ in rows], dtype=object)),
            "group_layer": ("group", np.array([b for _, b, _ in rows], dtype=object)),
        }
    )
    return member, coords


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


def _unit_frame(ds: xr.Dataset) -> xr.Dataset:
    """An empty dataset with the unit coordinates of ``ds``."""
    names = [c for c in ("unit", "network", "layer", "index", "epoch") if c in ds.coords]
    return xr.Dataset(coords={c: ds[c] for c in names})


def _check_level(confidence_level: float) -> float:
    level = float(confidence_level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence_level: must lie strictly between 0 and 1, got {confidence_level!r}")
    return level


def _proportion(count: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, count / np.maximum(n, 1), np.nan)


# ----------------------------------------------------------------------------- Monte Carlo


def monte_carlo(ds: xr.Dataset) -> xr.Dataset:
    """Monte Carlo estimate of each unit's firing probability, with its standard error.

    ``estimate = count / n`` estimates P(activation > threshold) over the input
    distribution; ``standard_error = sqrt(p (1 - p) / n)`` is its binomial standard
    error evaluated at the estimate (so it is 0 for a unit that never or always fired).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset (needs only ``count`` and ``n``).

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
    p = _proportion(count, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(p * (1.0 - p) / n)
    member, gcoords = group_layout(ds)
    with np.errstate(invalid="ignore", divide="ignore"):
        gest = (member * count).sum(axis=1) / (member * n).sum(axis=1)
    out = _unit_frame(ds).merge(gcoords, compat="override", join="outer")
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


def monte_carlo_curve(ds: xr.Dataset, n_points: int = 40) -> xr.Dataset:
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
    if int(n_points) < 2:
        raise ValueError(f"n_points: need at least 2, got {n_points!r}")
    if "fired" in ds.data_vars:
        fired = ds["fired"].values
        grid = _grid(fired.shape[0], int(n_points))
        starts = np.concatenate([[0], grid[:-1]])
        seg = np.add.reduceat(fired.view(np.uint8), starts, axis=0, dtype=np.int64)
        counts = np.cumsum(seg, axis=0)
        source = "fired"
    elif "window_count" in ds.data_vars:
        wc = ds["window_count"].values
        size = int(ds.attrs["window_size"])
        k = _grid(wc.shape[0], int(n_points))
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
    member, gcoords = group_layout(ds)
    out = _unit_frame(ds).merge(gcoords, compat="override", join="outer")
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
    level = _check_level(confidence_level)
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
        elif method == "clopper-pearson":
            low = np.where(c > 0, special.betaincinv(np.maximum(c, 1), n - c + 1, alpha / 2), 0.0)
            high = np.where(
                c < n, special.betaincinv(c + 1, np.maximum(n - c, 1), 1 - alpha / 2), 1.0
            )
        else:
            raise ValueError(
                f"method: expected 'wald', 'wilson', 'jeffreys' or 'clopper-pearson', got {method!r}"
            )
    low = np.where(n > 0, low, np.nan)
    high = np.where(n > 0, high, np.nan)
    out = _unit_frame(ds)
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
      NaN where the resampled estimates are all equal (never/always fired), as scipy.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired`` or ``window_count``.
    n_resamples : int
        Number of bootstrap resamples ``B``.
    confidence_level : float
    method : {"percentile", "bca", "basic"}
    seed : int or numpy.random.Generator, optional
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
    """
    validate(ds)
    level = _check_level(confidence_level)
    if method not in ("percentile", "bca", "basic"):
        raise ValueError(f"method: expected 'percentile', 'bca' or 'basic', got {method!r}")
    n_resamples = int(n_resamples)
    if n_resamples < 2:
        raise ValueError(f"n_resamples: need at least 2, got {n_resamples}")
    rng = np.random.default_rng(seed)
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
    batch = int(batch)
    if batch < 1:
        raise ValueError(f"batch: must be a positive integer, got {batch}")
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
    if method == "basic":
        low, high = 2 * theta_hat - high, 2 * theta_hat - low
    out = _unit_frame(ds)
    out["estimate"] = ("unit", theta_hat)
    out["low"] = ("unit", low)
    out["high"] = ("unit", high)
    out["standard_error"] = ("unit", theta_b.std(axis=0, ddof=1))
    out.attrs.update(
        method=method, confidence_level=level, n_resamples=n_resamples, resampled=resampled
    )
    return out


# ----------------------------------------------------------------------------- spike trains


def firing_rate(ds: xr.Dataset) -> xr.Dataset:
    """Poisson maximum-likelihood firing rate of each unit, and its layer/network means.

    ``rate = count / n`` (events per input: the MLE of a Poisson rate observed over
    ``n`` unit-time steps, equal to the Monte Carlo firing probability). When
    ``window_count`` exists, ``rate_per_window`` is the mean window count (the
    MLE of the rate per window of ``window_size`` inputs). Per group: ``mfr``
    (mean firing rate: the unweighted mean over units of ``rate``) and
    ``rate_var`` (variance over units of ``rate``, ddof 1).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> r = ba.baselines.firing_rate(ba.make_dataset([2, 4], 10, network="n", layer="l"))
    >>> r["mfr"].values.round(2).tolist()
    [0.3, 0.3]
    """
    validate(ds)
    rate = _proportion(ds["count"].values.astype(np.float64), ds["n"].values.astype(np.float64))
    member, gcoords = group_layout(ds)
    out = _unit_frame(ds).merge(gcoords, compat="override", join="outer")
    out["rate"] = ("unit", rate)
    if "window_count" in ds.data_vars:
        out["rate_per_window"] = ("unit", ds["window_count"].values.mean(axis=0))
    out["mfr"] = ("group", _group_mean(member, rate))
    out["rate_var"] = ("group", _group_var(member, rate))
    out["n_units"] = ("group", member.sum(axis=1))
    return out


def _fano(wc: np.ndarray) -> np.ndarray:
    """Fano factor along axis -2 (windows): population variance (ddof 0) / mean; NaN at mean 0."""
    mean = wc.mean(axis=-2)
    var = wc.var(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, var / mean, np.nan)


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

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> float(fano_null(0.2, 1000, 50, 20))  # (1 - 0.2) * 950 / 999
    0.7607607607607607
    """
    p = np.asarray(p, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    covered = float(window_size * n_windows)
    return (1.0 - p) * ((n - window_size) - (n - covered) / n_windows) / (n - 1.0)


def fano_factor(ds: xr.Dataset) -> xr.Dataset:
    r"""Fano factor of each unit's window counts, beside its random-order null.

    ``fano = var / mean`` of the unit's counts over the windows of
    ``window_count``, with the population variance (ddof 0, chosen because it
    makes :func:`fano_null` exact). Units that never fired in the windows
    (mean 0) get NaN: the ratio is undefined there, not 0. ``fano_null`` is the
    expectation under random order (see :func:`fano_null`; it uses
    ``p = count / n``), and ``fano_ratio = fano / fano_null`` (NaN where the null is
    0, i.e. units that always fired). Per group: ``mf`` (mean Fano factor over the
    units with a defined Fano factor), ``fano_var`` (variance over those units,
    ddof 1), ``mf_null`` (mean of their nulls), ``n_fano`` (how many units).

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
    wc = ds["window_count"].values.astype(np.float64)
    size = int(ds.attrs["window_size"])
    fano = _fano(wc)
    p = _proportion(ds["count"].values.astype(np.float64), ds["n"].values.astype(np.float64))
    null = fano_null(p, ds["n"].values, size, wc.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(null > 0, fano / null, np.nan)
    member, gcoords = group_layout(ds)
    defined = np.where(np.isfinite(fano), null, np.nan)
    out = _unit_frame(ds).merge(gcoords, compat="override", join="outer")
    out["fano"] = ("unit", fano)
    out["fano_null"] = ("unit", null)
    out["fano_ratio"] = ("unit", ratio)
    out["mf"] = ("group", _group_mean(member, fano))
    out["fano_var"] = ("group", _group_var(member, fano))
    out["mf_null"] = ("group", _group_mean(member, defined))
    out["n_fano"] = ("group", (member & np.isfinite(fano)).sum(axis=1))
    out.attrs.update(window_size=size, fano_ddof=0)
    return out


def isi_cv(ds: xr.Dataset) -> xr.Dataset:
    r"""Coefficient of variation of each unit's inter-spike intervals.

    The spike train of a unit is the ordered list of samples in which it fired;
    the inter-spike intervals (ISI) are the differences of consecutive firing
    sample indices. ``isi_cv = std(ISI, ddof=1) / mean(ISI)``; NaN with fewer than
    3 spikes (fewer than 2 intervals). For independent firing with probability
    ``p`` the ISIs are geometric and the CV is :math:`\sqrt{1-p}` (1 only in the
    Poisson limit). Per group: ``mean_isi_cv`` over units with a defined CV.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> fired = np.zeros((10, 1), bool); fired[[0, 2, 4, 6], 0] = True
    >>> ds = ba.make_dataset(fired.sum(0), 10, network="n", layer="l", fired=fired)
    >>> float(ba.baselines.isi_cv(ds)["isi_cv"][0])  # perfectly regular
    0.0
    """
    validate(ds)
    require(ds, "fired", "the coefficient of variation of inter-spike intervals", _KEEP_EVENTS)
    fired = ds["fired"].values
    k = fired.shape[1]
    unit_idx, sample_idx = np.nonzero(np.ascontiguousarray(fired.T))
    same = unit_idx[1:] == unit_idx[:-1]
    isi = np.diff(sample_idx)[same].astype(np.float64)
    owner = unit_idx[1:][same]
    m = np.bincount(owner, minlength=k).astype(np.float64)
    s1 = np.bincount(owner, weights=isi, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / m
        dev = isi - mean[owner]
        var = np.bincount(owner, weights=dev**2, minlength=k) / (m - 1)
        cv = np.where(m >= 2, np.sqrt(var) / mean, np.nan)
    member, gcoords = group_layout(ds)
    out = _unit_frame(ds).merge(gcoords, compat="override", join="outer")
    out["isi_cv"] = ("unit", cv)
    out["isi_mean"] = ("unit", np.where(m >= 1, mean, np.nan))
    out["mean_isi_cv"] = ("group", _group_mean(member, cv))
    out.attrs.update(isi_ddof=1)
    return out


def spike_stats(ds: xr.Dataset, stats: tuple[str, ...] | None = None) -> xr.Dataset:
    """Spike-train statistics of each unit (seed 002): rate, Fano factor, ISI CV.

    Combines :func:`firing_rate` (``rate``, ``rate_per_window``, ``mfr``,
    ``rate_var``), :func:`fano_factor` (``fano``, ``fano_null``, ``fano_ratio``,
    ``mf``, ``fano_var``, ``mf_null``) and :func:`isi_cv` (``isi_cv``,
    ``mean_isi_cv``); see those for the exact definitions.

    Parameters
    ----------
    ds : xarray.Dataset
    stats : tuple of {"rate", "fano", "cv"}, optional
        What to compute. Default: everything the dataset supports (``rate``
        always, ``fano`` with ``window_count``, ``cv`` with ``fired``); what was
        skipped is listed in ``attrs["skipped"]``. Asking explicitly for a
        statistic whose data are missing raises :class:`DatasetError`.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> s = ba.baselines.spike_stats(ba.make_dataset([1, 3], 10, network="n", layer="l"))
    >>> s.attrs["skipped"]
    'fano (needs window_count), cv (needs fired)'
    """
    validate(ds)
    known = {"rate", "fano", "cv"}
    skipped = []
    if stats is None:
        wanted = ["rate"]
        for name, var in (("fano", "window_count"), ("cv", "fired")):
            if var in ds.data_vars:
                wanted.append(name)
            else:
                skipped.append(f"{name} (needs {var})")
    else:
        wanted = list(stats)
        bad = set(wanted) - known
        if bad:
            raise ValueError(f"stats: unknown statistics {sorted(bad)}; choose from {sorted(known)}")
    parts = [firing_rate(ds)] if "rate" in wanted else []
    if "fano" in wanted:
        parts.append(fano_factor(ds))
    if "cv" in wanted:
        parts.append(isi_cv(ds))
    if not parts:
        raise ValueError("stats: nothing to compute")
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
    window_size : int, optional
        Default: ``ds.attrs["window_size"]``.
    alternative : {"two-sided", "greater", "less"}
    seed : int or numpy.random.Generator, optional
    batch : int, optional
        Permutations per chunk (memory about ``batch * total spikes`` integers).

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
    require(ds, "fired", "the order permutation test", _KEEP_EVENTS)
    if window_size is None:
        if "window_size" not in ds.attrs:
            raise ValueError("window_size: not given and the dataset has no 'window_size' attribute")
        window_size = int(ds.attrs["window_size"])
    window_size = int(window_size)
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative: expected 'two-sided', 'greater' or 'less', got {alternative!r}")
    n_permutations = int(n_permutations)
    if n_permutations < 1:
        raise ValueError(f"n_permutations: need at least 1, got {n_permutations}")
    fired = ds["fired"].values
    n, k = fired.shape
    m = n // window_size
    if window_size < 1 or m < 2:
        raise ValueError(
            f"window_size: need at least 2 windows of >= 1 sample in {n} samples, got {window_size}"
        )
    rng = np.random.default_rng(seed)
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

    observed = _fano(window_counts(labels[None, :]))[0]
    member, gcoords = group_layout(ds)
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
    for start in range(0, n_permutations, int(batch)):
        b = min(int(batch), n_permutations - start)
        lab = rng.permuted(np.broadcast_to(labels, (b, n)), axis=1)
        perm = _fano(window_counts(lab))  # (b, k)
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

    out = _unit_frame(ds).merge(gcoords, compat="override", join="outer")
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

