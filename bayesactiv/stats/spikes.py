"""Spike-train statistics: firing rates, Fano factors, inter-spike-interval variability, order tests.

Definitions follow Elephant (``elephant.statistics``: ``isi``, ``cv``, ``cv2``, ``lv``,
``fanofactor``). :func:`order_permutation_test` tests whether the order of the inputs
carries structure (bursty or regular firing) by permuting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import xarray as xr

from bayesactiv.data import require, validate
from bayesactiv.data.checks import ArgumentError, check_choice, check_int
from bayesactiv.stats.groups import (
    BY_LAYER,
    KEEP_EVENTS,
    WINDOWS,
    as_generator,
    group_frame,
    group_layout,
    group_mean,
    group_var,
    proportion,
)

__all__ = [
    "fano",
    "fano_factor",
    "fano_null",
    "firing_rate",
    "isi_cv",
    "order_permutation_test",
    "spike_stats",
]

_ALTERNATIVES = ("two-sided", "greater", "less")
_SPIKE_STATS = ("rate", "fano", "cv")


# ----------------------------------------------------------------------------- spike trains


def firing_rate(ds: xr.Dataset, *, group_by: Sequence[str] | str | None = BY_LAYER) -> xr.Dataset:
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
    rate = proportion(ds["count"].values.astype(np.float64), ds["n"].values.astype(np.float64))
    out = group_frame(ds, gcoords)
    out["rate"] = ("unit", rate)
    if "window_count" in ds.data_vars:
        out["rate_per_window"] = ("unit", ds["window_count"].values.mean(axis=0))
    out["mfr"] = ("group", group_mean(member, rate))
    out["rate_var"] = ("group", group_var(member, rate))
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


def fano_factor(ds: xr.Dataset, *, group_by: Sequence[str] | str | None = BY_LAYER) -> xr.Dataset:
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
    require(ds, "window_count", "the Fano factor", WINDOWS)
    member, gcoords = group_layout(ds, group_by=group_by)
    wc = ds["window_count"].values.astype(np.float64)
    size = int(ds.attrs["window_size"])
    factor = fano(wc)
    p = proportion(ds["count"].values.astype(np.float64), ds["n"].values.astype(np.float64))
    null = fano_null(p, ds["n"].values, size, wc.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(null > 0, factor / null, np.nan)
    defined = np.where(np.isfinite(factor), null, np.nan)
    out = group_frame(ds, gcoords)
    out["fano"] = ("unit", factor)
    out["fano_null"] = ("unit", null)
    out["fano_ratio"] = ("unit", ratio)
    out["mf"] = ("group", group_mean(member, factor))
    out["fano_var"] = ("group", group_var(member, factor))
    out["mf_null"] = ("group", group_mean(member, defined))
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
    ds: xr.Dataset, *, ddof: int = 0, group_by: Sequence[str] | str | None = BY_LAYER
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
    require(ds, "fired", "the coefficient of variation of inter-spike intervals", KEEP_EVENTS)
    member, gcoords = group_layout(ds, group_by=group_by)
    k = ds["fired"].shape[1]
    isi, owner = _intervals_by_unit(ds["fired"].values)
    _, mean, cv = _isi_variation(isi, owner, k, ddof)
    cv2, lv = _isi_local(isi, owner, k)
    out = group_frame(ds, gcoords)
    out["isi_cv"] = ("unit", cv)
    out["isi_cv2"] = ("unit", cv2)
    out["isi_lv"] = ("unit", lv)
    out["isi_mean"] = ("unit", mean)
    out["mean_isi_cv"] = ("group", group_mean(member, cv))
    out["mean_isi_cv2"] = ("group", group_mean(member, cv2))
    out["mean_isi_lv"] = ("group", group_mean(member, lv))
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
    group_by: Sequence[str] | str | None = BY_LAYER,
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


class _WindowBinner:
    """Window counts of all units from a window label per sample, by one ``bincount``."""

    def __init__(self, fired: np.ndarray, m: int) -> None:
        self.k = fired.shape[1]
        self.m = m
        unit_idx, self.sample_idx = np.nonzero(np.ascontiguousarray(fired.T))
        self.spikes = len(self.sample_idx)
        self.offset = unit_idx * (m + 1)

    def counts(self, lab: np.ndarray) -> np.ndarray:
        """lab: (b, n) window label of each sample -> (b, m, k) window counts."""
        b, k, m = lab.shape[0], self.k, self.m
        keys = lab[:, self.sample_idx] + self.offset[None, :] + (np.arange(b) * k * (m + 1))[:, None]
        wc = np.bincount(keys.ravel(), minlength=b * k * (m + 1)).reshape(b, k, m + 1)
        return np.swapaxes(wc[:, :, :m], 1, 2).astype(np.float64)


def _permutation_tallies(
    rng: np.random.Generator,
    labels: np.ndarray,
    binner: _WindowBinner,
    member: np.ndarray,
    observed: np.ndarray,
    mf_obs: np.ndarray,
    n_permutations: int,
    batch: int,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Counts of permuted statistics >= and <= the observed ones, and their sums.

    Returns ``(ge, le, total)`` per unit and per group.
    """
    n = labels.shape[0]
    k = binner.k
    ge, le, total = np.zeros(k), np.zeros(k), np.zeros(k)
    g = len(mf_obs)
    gge, gle, gtotal = np.zeros(g), np.zeros(g), np.zeros(g)
    tol = 1e-12
    for start in range(0, n_permutations, batch):
        b = min(batch, n_permutations - start)
        lab = rng.permuted(np.broadcast_to(labels, (b, n)), axis=1)
        perm = fano(binner.counts(lab))  # (b, k)
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
    return (ge, le, total), (gge, gle, gtotal)


def _p_value(
    obs: np.ndarray, n_ge: np.ndarray, n_le: np.ndarray, n_permutations: int, alternative: str
) -> np.ndarray:
    """Permutation p-values ``(1 + #) / (1 + B)``; two-sided: twice the smaller, capped at 1."""
    greater = (1 + n_ge) / (1 + n_permutations)
    less = (1 + n_le) / (1 + n_permutations)
    if alternative == "greater":
        p = greater
    elif alternative == "less":
        p = less
    else:
        p = np.minimum(1.0, 2 * np.minimum(greater, less))
    return np.where(np.isfinite(obs), p, np.nan)


def order_permutation_test(
    ds: xr.Dataset,
    n_permutations: int = 999,
    *,
    window_size: int | None = None,
    alternative: Literal["two-sided", "greater", "less"] = "two-sided",
    seed: int | np.random.Generator | None = None,
    batch: int | None = None,
    group_by: Sequence[str] | str | None = BY_LAYER,
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
    rng = as_generator(seed)
    require(ds, "fired", "the order permutation test", KEEP_EVENTS)
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
    binner = _WindowBinner(fired, m)
    observed = fano(binner.counts(labels[None, :]))[0]
    member, gcoords = group_layout(ds, group_by=group_by)
    mf_obs = group_mean(member, observed)
    if batch is None:
        batch = max(1, min(n_permutations, 2**22 // max(binner.spikes + k * (m + 1), 1)))
    unit_t, group_t = _permutation_tallies(
        rng, labels, binner, member, observed, mf_obs, n_permutations, batch
    )
    ge, le, total = unit_t
    gge, gle, gtotal = group_t

    def pvalue(obs: np.ndarray, n_ge: np.ndarray, n_le: np.ndarray) -> np.ndarray:
        return _p_value(obs, n_ge, n_le, n_permutations, alternative)

    out = group_frame(ds, gcoords)
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

