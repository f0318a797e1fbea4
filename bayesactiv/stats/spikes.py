"""Spike-train statistics: firing rates, Fano factors, inter-spike-interval variability, order tests.

Definitions follow Elephant (``elephant.statistics``: ``isi``, ``cv``, ``cv2``, ``lv``,
``fanofactor``). :func:`order_permutation_test` tests whether the order of the inputs
carries structure (bursty or regular firing) by permuting it.

Clustered events (the tokens of a sequence, the positions of a convolution: several
events per input) share their input's context. Windows then run over the events
input-major (``attrs["windows_over"]``), and the null of "no order structure" is that
whole *inputs* come in random order, each keeping its events together:
:func:`order_permutation_test` permutes whole inputs and :func:`fano_factor` reports the
null of random input order. :func:`cluster_fano` is the Fano factor of the per-input
counts themselves, the plug-in of the clustered model's MF.

Events out of core. When ``fired`` is a dask array (a lazily opened store) the
statistics that read it run one block of events at a time
(:mod:`bayesactiv.data.lazy`) and give the numbers of ``fired`` in memory: the cluster
sums and window counts are integer sums over blocks, the inter-spike intervals carry
each unit's last spike from block to block, and :func:`order_permutation_test` draws
the same permutations and counts each one's windows block by block.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal

import numpy as np
import xarray as xr

from bayesactiv.data import dense_cluster_stats, require, validate
from bayesactiv.data.checks import ArgumentError, check_choice, check_int
from bayesactiv.data.lazy import EventBlock, event_blocks, is_lazy, reduce_blocks
from bayesactiv.stats.groups import (
    BY_LAYER,
    KEEP_EVENTS,
    WINDOWS,
    as_generator,
    cluster_residual_sq,
    group_frame,
    group_layout,
    group_mean,
    group_var,
    proportion,
)
from bayesactiv.stats.intervals import cluster_sums
from bayesactiv.stats.resampling import event_clusters, event_word, windows_statement

__all__ = [
    "cluster_fano",
    "fano",
    "fano_factor",
    "fano_null",
    "firing_rate",
    "isi_cv",
    "order_permutation_test",
    "spike_stats",
]

_ALTERNATIVES = ("two-sided", "greater", "less")
_PERMUTE = ("auto", "inputs", "events")
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


def _input_null(
    ds: xr.Dataset, size: int, n_windows: int, factor_in: np.ndarray,
    sums: dict[str, np.ndarray] | None,
) -> np.ndarray:
    r"""Expected Fano factor of window counts when whole inputs come in random order.

    Closed form for a unit whose inputs all hold ``t`` events (``cluster_n_sq *
    cluster_n == n**2``) when a window holds ``r = size / t`` whole inputs: a window
    count is then a sum of ``r`` per-input counts drawn without replacement from the
    ``I`` inputs, and as in :func:`fano_null`
    :math:`F_0 = F_c \, ((I - r) - (I - N')/m) / (I - 1)`, with :math:`F_c` the Fano
    factor of the per-input counts (:func:`cluster_fano`) and :math:`N' = m r` the
    inputs covered. NaN where the form does not apply. ``sums``: :func:`cluster_sums`.
    """
    k = ds.sizes["unit"]
    if sums is None:
        return np.full(k, np.nan)
    inputs, n = sums["cluster_n"], sums["n"]
    equal = (inputs > 1) & (sums["cluster_n_sq"] * inputs == n * n)
    t = np.divide(n, inputs, out=np.ones_like(n), where=inputs > 0)
    r = size / t
    covered = n_windows * r
    ok = equal & (np.abs(r - np.round(r)) < 1e-9) & (r >= 1) & (covered <= inputs)
    with np.errstate(invalid="ignore", divide="ignore"):
        null = factor_in * ((inputs - r) - (inputs - covered) / n_windows) / (inputs - 1)
    return np.where(ok, null, np.nan)


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

    Windows are consecutive blocks of ``window_size`` events; ``attrs["windows_over"]``
    says what they run over (:func:`~bayesactiv.stats.resampling.windows_statement`):
    inputs in order, or, for tokens and positions, the events input-major.

    Clustered events (several events per input). Random order of single events
    (:func:`fano_null`) would break each input's events apart, so its null rises
    above 1 by the clustering alone, whatever the order of the inputs. For units
    whose events are clustered, ``fano_null`` is instead the null of *whole inputs
    in random order*, each keeping its events: in closed form when the unit's inputs
    all hold ``t`` events and a window holds ``r = window_size / t`` whole inputs,
    :math:`F_c ((I - r) - (I - N')/m) / (I - 1)` (:math:`F_c` the Fano factor of the
    per-input counts, :func:`cluster_fano`; :math:`I` inputs, :math:`N'` of them
    covered by the :math:`m` windows); NaN otherwise (windows that span or split
    inputs, inputs of unequal length: :func:`order_permutation_test`, which permutes
    whole inputs, gives its null as ``fano_perm_mean``). The single-event null is kept
    beside it as ``fano_null_events``. ``attrs["null"]`` says which null was used.

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
    >>> ba.baselines.fano_factor(ds).attrs["windows_over"]
    'inputs in order'
    """
    validate(ds)
    require(ds, "window_count", "the Fano factor", WINDOWS)
    member, gcoords = group_layout(ds, group_by=group_by)
    wc = ds["window_count"].values.astype(np.float64)
    size = int(ds.attrs["window_size"])
    factor = fano(wc)
    p = proportion(ds["count"].values.astype(np.float64), ds["n"].values.astype(np.float64))
    null = fano_null(p, ds["n"].values, size, wc.shape[0])
    sums = cluster_sums(ds)
    is_clustered = sums is not None and bool((sums["cluster_n"] < sums["n"]).any())
    events_null = null
    if is_clustered:
        unit_clustered = sums["cluster_n"] < sums["n"]
        input_null = _input_null(ds, size, wc.shape[0], _plug_in_fano(ds, sums), sums)
        null = np.where(unit_clustered, input_null, events_null)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(null > 0, factor / null, np.nan)
    defined = np.where(np.isfinite(factor), null, np.nan)
    out = group_frame(ds, gcoords)
    out["fano"] = ("unit", factor)
    out["fano_null"] = ("unit", null)
    out["fano_ratio"] = ("unit", ratio)
    if is_clustered:
        out["fano_null_events"] = ("unit", events_null)
    out["mf"] = ("group", group_mean(member, factor))
    out["fano_var"] = ("group", group_var(member, factor))
    out["mf_null"] = ("group", group_mean(member, defined))
    out["n_fano"] = ("group", (member & np.isfinite(factor)).sum(axis=1))
    if is_clustered:
        word = event_word(ds)
        word = "events" if word == "inputs" else word
        null_note = (f"whole inputs in random order, each keeping its {word} (closed form for "
                     "inputs of equal length when a window holds whole inputs, NaN otherwise: "
                     f"see order_permutation_test); fano_null_events: single {word} in random "
                     "order, which breaks inputs apart")
    else:
        null_note = "inputs in random order (hypergeometric window counts)"
    out.attrs.update(window_size=size, fano_ddof=0, windows_over=windows_statement(ds, size),
                     null=null_note)
    return out


def _plug_in_fano(ds: xr.Dataset, sums: dict[str, np.ndarray] | None) -> np.ndarray:
    """Per-unit ``sum_i (c_i - p t_i)**2 / (p n)`` (see :func:`cluster_fano`); NaN if never fired.

    ``sums``: :func:`cluster_sums` of ``ds`` (None: one event per input).
    """
    count = ds["count"].values.astype(np.float64)
    n = ds["n"].values.astype(np.float64)
    if sums is None:
        sums = {k: v.astype(np.float64) for k, v in dense_cluster_stats(
            ds["count"].values, ds["n"].values).items()}
    p = np.divide(count, n, out=np.zeros_like(n), where=n > 0)
    resid = cluster_residual_sq(sums["cluster_count_sq"], sums["cluster_count_n"],
                                sums["cluster_n_sq"], p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, resid / count, np.nan)


def cluster_fano(ds: xr.Dataset, *, group_by: Sequence[str] | str | None = BY_LAYER) -> xr.Dataset:
    r"""Plug-in Fano factor of each unit's per-input counts, and its per-group means.

    With :math:`c_i` the events of input :math:`i` in which the unit fired,
    :math:`t_i` the events of input :math:`i` (tokens, positions) and
    :math:`\hat p = ` ``count / n``:

    .. math:: F_u = \frac{\sum_i (c_i - \hat p t_i)^2}{\sum_i \hat p t_i},

    the residual variance of the per-input counts over their expectation; for inputs
    of equal length it is :math:`\mathrm{Var}(c_i) / \mathrm{mean}(c_i)` with ddof 0
    (:func:`fano` with the inputs as trials). It is computed from the streamed cluster
    sums, :math:`F_u = (\sum c_i^2 - 2\hat p \sum c_i t_i + \hat p^2 \sum t_i^2) /`
    ``count`` (the ``cluster_*`` variables; else from ``fired`` and its ``input``
    coordinate), in O(units). NaN for a unit that never fired.

    Exactly :math:`F_u = (1 - \hat p)\, d_u (I - 1)/I` over the unit's :math:`I`
    inputs, :math:`d_u` its design effect before flooring
    (:func:`bayesactiv.stats.intervals.design_effect`): the per-group mean ``mf`` is
    the plug-in of the ``clustered_beta_binomial`` model's MF,
    :math:`\mathrm{mean}_u (1 - \theta_u) d_u`, up to the factor :math:`(I-1)/I`. For dense units (one event per
    input, :math:`c_i \in \{0, 1\}`) :math:`F_u = 1 - \hat p`, the Fano factor of
    Bernoulli events; independent tokens in inputs of ``t`` give about
    :math:`1 - \hat p` too, and clustering raises it up to :math:`t (1 - \hat p)`.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset (with the ``cluster_*`` statistics, or ``fired`` with an
        ``input`` coordinate, for clustered events).
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`group_layout`).

    Returns
    -------
    xarray.Dataset
        ``cluster_fano`` over ``unit``; per group ``mf`` (mean over the units with a
        defined value), ``fano_var`` (their variance, ddof 1) and ``n_fano`` (how
        many); attrs ``statistic``, ``fano_ddof``, ``events``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> c = np.array([[4, 0, 1], [0, 0, 1], [2, 0, 1]])  # 3 inputs of 4 tokens, 3 units
    >>> ds = ba.data.from_input_counts(c, [4, 4, 4], network="lm", layer="mlp")
    >>> from bayesactiv.stats.spikes import cluster_fano
    >>> cf = cluster_fano(ds)
    >>> cf["cluster_fano"].values.round(3).tolist()  # var([4, 0, 2]) / 2; never fired; even
    [1.333, nan, 0.0]
    >>> round(float(cf["mf"][0]), 3)
    0.667
    """
    validate(ds)
    member, gcoords = group_layout(ds, group_by=group_by)
    sums = cluster_sums(ds)
    factor = _plug_in_fano(ds, sums)
    out = group_frame(ds, gcoords)
    out["cluster_fano"] = ("unit", factor)
    out["mf"] = ("group", group_mean(member, factor))
    out["fano_var"] = ("group", group_var(member, factor))
    out["n_fano"] = ("group", (member & np.isfinite(factor)).sum(axis=1))
    word = event_word(ds)
    if sums is None:
        events = "one event per input: the Fano factor of Bernoulli events, 1 - p"
    else:
        events = f"{'events' if word == 'inputs' else word} clustered by input"
    out.attrs.update(
        statistic="sum_i (c_i - p t_i)**2 / (p n): Fano factor of the per-input counts",
        fano_ddof=0, events=events,
    )
    return out


def _intervals_by_unit(fired: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inter-spike intervals of all units, unit after unit, and the unit each belongs to."""
    unit_idx, sample_idx = np.nonzero(np.ascontiguousarray(fired.T))
    same = unit_idx[1:] == unit_idx[:-1]
    return np.diff(sample_idx)[same].astype(np.float64), unit_idx[1:][same]


#: Events x units of a block handled at once by the block functions below (their spike
#: lists take a few int64 per spike).
_GROUP_CELLS = 2**20


def _unit_groups(n_events: int, n_units: int) -> list[slice]:
    """Slices of units of about :data:`_GROUP_CELLS` events x units each."""
    per = max(1, _GROUP_CELLS // max(1, n_events))
    return [slice(lo, min(lo + per, n_units)) for lo in range(0, n_units, per)]


def _isi_block(block: EventBlock, events: np.ndarray) -> dict[str, np.ndarray]:
    """Per unit, the spike train of one block of events (:func:`_isi_trains`), units in groups."""
    parts = [_isi_trains(events[:, units], block.events.start)
             for units in _unit_groups(*events.shape)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _isi_trains(events: np.ndarray, start: int) -> dict[str, np.ndarray]:
    """Per unit, the spike train of events from sample ``start`` on, summed up so that blocks join.

    ``spikes``; ``first``/``last`` spike (global sample index, -1 without a spike);
    ``isi_first``/``isi_last`` (its first and last interval, 0 with fewer than 2 spikes);
    ``isi_sum``, ``isi_sq`` (the sums of its intervals and of their squares, int64);
    ``ratio_abs``, ``ratio_sq`` (the sums over its consecutive pairs of intervals of
    ``|I_{i+1} - I_i| / (I_{i+1} + I_i)`` and of its square, float64).
    """
    k = events.shape[1]
    unit_idx, sample_idx = np.nonzero(np.ascontiguousarray(events.T))
    sample_idx = sample_idx.astype(np.int64) + start
    spikes = np.bincount(unit_idx, minlength=k).astype(np.int64)
    ends = np.cumsum(spikes)
    has = spikes > 0
    first = np.full(k, -1, dtype=np.int64)
    last = np.full(k, -1, dtype=np.int64)
    first[has] = sample_idx[(ends - spikes)[has]]
    last[has] = sample_idx[ends[has] - 1]
    same = unit_idx[1:] == unit_idx[:-1]
    isi = np.diff(sample_idx)[same]
    owner = unit_idx[1:][same]
    n_isi = np.maximum(spikes - 1, 0)
    isi_ends = np.cumsum(n_isi)
    two = n_isi > 0
    isi_first = np.zeros(k, dtype=np.int64)
    isi_last = np.zeros(k, dtype=np.int64)
    isi_first[two] = isi[(isi_ends - n_isi)[two]]
    isi_last[two] = isi[isi_ends[two] - 1]
    running = np.concatenate([[0], np.cumsum(isi)])
    running_sq = np.concatenate([[0], np.cumsum(isi * isi)])
    pair = owner[1:] == owner[:-1]
    as_float = isi.astype(np.float64)
    ratio = (np.diff(as_float) / (as_float[:-1] + as_float[1:]))[pair]
    pair_owner = owner[1:][pair]
    return {"spikes": spikes, "first": first, "last": last, "isi_first": isi_first,
            "isi_last": isi_last, "isi_sum": running[isi_ends] - running[isi_ends - n_isi],
            "isi_sq": running_sq[isi_ends] - running_sq[isi_ends - n_isi],
            "ratio_abs": np.bincount(pair_owner, weights=np.abs(ratio), minlength=k),
            "ratio_sq": np.bincount(pair_owner, weights=ratio**2, minlength=k)}


def _ratio_terms(earlier: np.ndarray, later: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray,
                                                                                      np.ndarray]:
    """``|r|`` and ``r**2`` of the pair of intervals (earlier, later) where ``valid``, else 0."""
    a = earlier.astype(np.float64)
    b = later.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(valid, (b - a) / np.where(valid, a + b, 1.0), 0.0)
    return np.abs(ratio), ratio**2


def _isi_join(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The summary of two consecutive segments of events, ``left`` before ``right``.

    Where both hold spikes, the interval between ``left``'s last and ``right``'s first
    spike joins the train, with the pairs it forms with its neighbours. Associative, so
    that :func:`bayesactiv.data.lazy.reduce_blocks` may join blocks in a tree.
    """
    both = (left["spikes"] > 0) & (right["spikes"] > 0)
    gap = np.where(both, right["first"] - left["last"], 0)
    left_two = both & (left["spikes"] >= 2)
    right_two = both & (right["spikes"] >= 2)
    abs_l, sq_l = _ratio_terms(left["isi_last"], gap, left_two)
    abs_r, sq_r = _ratio_terms(gap, right["isi_first"], right_two)
    right_only = left["spikes"] == 0
    left_only = right["spikes"] == 0
    return {
        "spikes": left["spikes"] + right["spikes"],
        "first": np.where(right_only, right["first"], left["first"]),
        "last": np.where(left_only, left["last"], right["last"]),
        "isi_first": np.where(right_only, right["isi_first"],
                              np.where(both & (left["spikes"] == 1), gap, left["isi_first"])),
        "isi_last": np.where(left_only, left["isi_last"],
                             np.where(both & (right["spikes"] == 1), gap, right["isi_last"])),
        "isi_sum": left["isi_sum"] + right["isi_sum"] + gap,
        "isi_sq": left["isi_sq"] + right["isi_sq"] + gap * gap,
        "ratio_abs": left["ratio_abs"] + right["ratio_abs"] + abs_l + abs_r,
        "ratio_sq": left["ratio_sq"] + right["ratio_sq"] + sq_l + sq_r,
    }


def _lazy_isi(ds: xr.Dataset, ddof: int) -> tuple[np.ndarray, ...]:
    """``(mean, cv, cv2, lv)`` per unit of a dask-backed ``fired``, block by block.

    The sums of the intervals and of their squares are exact integers, and the variance
    ``(m sum I**2 - (sum I)**2) / (m (m - ddof))`` is taken in exact integer arithmetic,
    so it differs from the two-pass variance in memory by float rounding only.
    """
    blocks = event_blocks(ds.drop_vars("input", errors="ignore"))
    train = reduce_blocks(ds, _isi_block, combine=_isi_join, blocks=blocks)
    m = np.maximum(train["spikes"] - 1, 0)
    pairs = np.maximum(train["spikes"] - 2, 0).astype(np.float64)
    numerator = [int(a) * int(b) - int(c) ** 2
                 for a, b, c in zip(m, train["isi_sq"], train["isi_sum"], strict=True)]
    var = np.array([num / (int(a) * (int(a) - ddof)) if a > ddof else np.nan
                    for num, a in zip(numerator, m, strict=True)], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = train["isi_sum"].astype(np.float64) / m
        cv = np.where(m > ddof, np.sqrt(var) / mean, np.nan)
        cv2 = np.where(pairs > 0, 2.0 * train["ratio_abs"] / pairs, np.nan)
        lv = np.where(pairs > 0, 3.0 * train["ratio_sq"] / pairs, np.nan)
    return np.where(m >= 1, mean, np.nan), cv, cv2, lv


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

    A dask-backed ``fired`` (events out of core) is read one block of events at a time:
    each block's trains are summed up (spikes, first and last spike, first and last
    interval, the sums of the intervals, of their squares and of the pair ratios) and
    the blocks joined in order, the interval across a boundary carried from a unit's
    last spike before it. The means are those in memory; the variance is taken from the
    exact integer sums, so ``isi_cv`` differs from the two-pass one in memory, and
    ``isi_cv2``/``isi_lv`` (sums in another order) too, by float rounding only.

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
    if is_lazy(ds):
        mean, cv, cv2, lv = _lazy_isi(ds, ddof)
    else:
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
        return self.spike_counts(lab[:, self.sample_idx])

    def spike_counts(self, spike_lab: np.ndarray) -> np.ndarray:
        """spike_lab: (b, spikes) window label of each spike -> (b, m, k) window counts."""
        b, k, m = spike_lab.shape[0], self.k, self.m
        keys = spike_lab + self.offset[None, :] + (np.arange(b) * k * (m + 1))[:, None]
        wc = np.bincount(keys.ravel(), minlength=b * k * (m + 1)).reshape(b, k, m + 1)
        return np.swapaxes(wc[:, :, :m], 1, 2).astype(np.float64)


class _InputShuffler:
    """Window labels of the spikes when whole inputs are put in random order.

    Each input keeps its events together, in their order; a permutation of the ``I``
    inputs lays them end to end, and an event at offset ``o`` of an input starting at
    event ``s`` lands in window ``(s + o) // window_size`` (label ``m``: the uncovered
    tail).
    """

    def __init__(self, clusters: np.ndarray, sample_idx: np.ndarray, window_size: int, m: int):
        self.k = int(clusters.max()) + 1
        self.lengths = np.bincount(clusters, minlength=self.k).astype(np.int64)
        order = np.argsort(clusters, kind="stable")
        starts = np.cumsum(self.lengths) - self.lengths
        offset = np.empty(clusters.size, dtype=np.int64)
        offset[order] = np.arange(clusters.size) - starts[clusters[order]]
        self.spike_input = clusters[sample_idx]
        self.spike_offset = offset[sample_idx]
        self.window_size = window_size
        self.m = m

    def labels(self, rng: np.random.Generator, b: int) -> np.ndarray:
        """(b, spikes) window labels of the spikes under ``b`` random orders of the inputs."""
        order = rng.permuted(np.broadcast_to(np.arange(self.k), (b, self.k)), axis=1)
        lengths = self.lengths[order]
        start_sorted = np.cumsum(lengths, axis=1) - lengths
        start = np.empty_like(order)
        np.put_along_axis(start, order, start_sorted, axis=1)
        pos = start[:, self.spike_input] + self.spike_offset[None, :]
        return np.minimum(pos // self.window_size, self.m)


def _block_window_counts(block: EventBlock, events: np.ndarray, *, labels: np.ndarray,
                         m: int) -> np.ndarray:
    """Window counts (b, unit, m) of one block's spikes, given each event's window labels.

    ``labels`` (b, sample): the window of every event under ``b`` orders (label ``m``:
    the uncovered tail). Integer counts, which add over blocks.
    """
    b, k = labels.shape[0], events.shape[1]
    out = np.empty((b, k, m), dtype=np.int64)
    block_labels = labels[:, block.events]
    for units in _unit_groups(events.shape[0] * b, k):
        unit_idx, sample_idx = np.nonzero(np.ascontiguousarray(events[:, units].T))
        g = units.stop - units.start
        keys = (block_labels[:, sample_idx] + (unit_idx * (m + 1))[None, :]
                + (np.arange(b) * g * (m + 1))[:, None])
        wc = np.bincount(keys.ravel(), minlength=b * g * (m + 1)).reshape(b, g, m + 1)
        out[:, units] = wc[:, :, :m]
    return out


def _lazy_window_counts(ds: xr.Dataset, blocks: list[EventBlock], labels: np.ndarray,
                        m: int) -> np.ndarray:
    """Window counts (b, m, unit) of a dask-backed ``fired`` under the event labels (b, sample).

    Laid out in memory as :meth:`_WindowBinner.spike_counts` lays them out, so that the
    Fano factors are summed in the same order.
    """
    counts = reduce_blocks(ds, partial(_block_window_counts, labels=labels, m=m), blocks=blocks)
    return np.swapaxes(counts, 1, 2).astype(np.float64)


def _permutation_tallies(
    window_counts: Callable[[int], np.ndarray],
    k: int,
    member: np.ndarray,
    observed: np.ndarray,
    mf_obs: np.ndarray,
    n_permutations: int,
    batch: int,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Counts of permuted statistics >= and <= the observed ones, and their sums.

    ``window_counts(b)`` gives the window counts (b, window, unit) under the next ``b``
    permutations. Returns ``(ge, le, total)`` per unit and per group.
    """
    ge, le, total = np.zeros(k), np.zeros(k), np.zeros(k)
    g = len(mf_obs)
    gge, gle, gtotal = np.zeros(g), np.zeros(g), np.zeros(g)
    tol = 1e-12
    for start in range(0, n_permutations, batch):
        b = min(batch, n_permutations - start)
        perm = fano(window_counts(b))  # (b, k)
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
    permute: Literal["auto", "inputs", "events"] = "auto",
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

    Clustered events (``fired`` has an ``input`` coordinate and some input holds
    several events: the tokens of a sequence, the positions of a convolution). The
    events of one input share its context, so shuffling single events breaks every
    input apart and makes almost every unit look bursty, whatever the order of the
    inputs. With ``permute="auto"`` (default) the null is then that the *inputs* are
    exchangeable: each permutation puts whole inputs in random order, each keeping
    its events together and in order, laid end to end (inputs of unequal length
    shift the windows accordingly). When every window lies within one input of
    equal length the window counts do not depend on the order of the inputs and the
    test cannot reject (a warning says so); windows must hold or span several inputs.
    ``permute="events"`` shuffles single events anyway (a test of the clustering
    itself, not of the order of the inputs). ``attrs["permuted"]`` says what was
    permuted and ``attrs["windows_over"]`` what the windows run over.

    p-values are ``(1 + #{T* >= T}) / (1 + B)`` (``"greater"``: bursty, clustered
    firing), the mirror for ``"less"`` (regular firing), and twice the smaller,
    capped at 1, for ``"two-sided"``. Units without a defined Fano factor get NaN.

    A dask-backed ``fired`` (events out of core) gives the same numbers for the same
    seed and ``batch``: the permutations are drawn as in memory, and each batch's
    window counts are summed block by block
    (:func:`bayesactiv.data.lazy.reduce_blocks`), one pass over the events per batch;
    the window labels of every event of a batch (``batch * sample`` integers) are in
    memory, and by default ``batch`` keeps them and the window counts near 32 MiB.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired``.
    n_permutations : int
        At least 1.
    window_size : int, optional
        Default: ``ds.attrs["window_size"]``.
    alternative : {"two-sided", "greater", "less"}
    permute : {"auto", "inputs", "events"}
        What is put in random order: ``"inputs"`` (whole inputs with their events),
        ``"events"`` (single events), or ``"auto"``: inputs (for dense data the two
        are the same and give the same numbers).
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
        ``mf_perm_mean``, ``mf_p_value`` over ``group``; attrs ``permuted``,
        ``windows_over``, ``n_permutations``, ``window_size``, ``alternative``,
        ``statistic``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> fired = np.zeros((400, 1), bool); fired[:40, 0] = True  # one burst
    >>> ds = ba.make_dataset(fired.sum(0), 400, network="n", layer="l", fired=fired)
    >>> t = ba.baselines.order_permutation_test(ds, 199, window_size=20, seed=0)
    >>> float(t["p_value"][0])
    0.01
    >>> tokens = ds.assign_coords(input=("sample", np.repeat(np.arange(50), 8)))
    >>> t = ba.baselines.order_permutation_test(tokens, 199, window_size=20, seed=0)
    >>> t.attrs["permuted"], float(t["p_value"][0])  # still the first inputs: a burst
    ('whole inputs (50, each keeping its 8 events in order)', 0.01)
    """
    validate(ds)
    n_permutations = check_int(n_permutations, "n_permutations", minimum=1)
    alternative = check_choice(alternative, "alternative", _ALTERNATIVES)
    permute = check_choice(permute, "permute", _PERMUTE)
    if batch is not None:
        batch = check_int(batch, "batch", minimum=1)
    rng = as_generator(seed)
    require(ds, "fired", "the order permutation test", KEEP_EVENTS)
    if window_size is None:
        if "window_size" not in ds.attrs:
            raise ArgumentError("window_size: not given and the dataset has no 'window_size' attribute")
        window_size = ds.attrs["window_size"]
    window_size = check_int(window_size, "window_size", minimum=1)
    lazy = is_lazy(ds)
    fired = None if lazy else ds["fired"].values
    n, k = ds.sizes["sample"], ds.sizes["unit"]
    m = n // window_size
    if m < 2:
        raise ArgumentError(
            f"window_size: need at least 2 windows of >= 1 sample in {n} samples, got {window_size}"
        )
    labels = np.full(n, m, dtype=np.int64)  # label m: the uncovered tail
    labels[: m * window_size] = np.repeat(np.arange(m), window_size)
    if lazy:
        blocks = event_blocks(ds.drop_vars("input", errors="ignore"))
        observed = fano(_lazy_window_counts(ds, blocks, labels[None, :], m))[0]
        spike_idx = np.arange(n)  # labels of every event, counted per block
        per_draw = n + k * (m + 1)
    else:
        binner = _WindowBinner(fired, m)
        observed = fano(binner.counts(labels[None, :]))[0]
        spike_idx = binner.sample_idx
        per_draw = binner.spikes + k * (m + 1)
    member, gcoords = group_layout(ds, group_by=group_by)
    mf_obs = group_mean(member, observed)
    if batch is None:
        batch = max(1, min(n_permutations, 2**22 // max(per_draw, 1)))
    clusters = event_clusters(ds)
    over = windows_statement(ds, window_size)
    word = event_word(ds)
    word = "events" if word == "inputs" else word
    if clusters is not None and permute != "events":
        shuffler = _InputShuffler(clusters, spike_idx, window_size, m)
        lengths = shuffler.lengths
        per = (f"{lengths[0]}" if (lengths == lengths[0]).all()
               else f"{lengths.min()} to {lengths.max()}")
        permuted = f"whole inputs ({shuffler.k}, each keeping its {per} {word} in order)"
        within = "within one input" in over or "is one whole input" in over
        if within and (lengths == lengths[0]).all():
            warnings.warn(
                f"window_size: each window of {window_size} {word} lies within one input, "
                "so the window counts do not depend on the order of the inputs and the "
                "test cannot reject; use windows that hold several inputs",
                UserWarning, stacklevel=2,
            )

        def draw(b: int) -> np.ndarray:
            return shuffler.labels(rng, b)
    else:
        permuted = "inputs" if clusters is None else (
            f"single {word} (permute='events': each input's {word} are broken apart)")

        def draw(b: int) -> np.ndarray:
            permuted = rng.permuted(np.broadcast_to(labels, (b, n)), axis=1)
            return permuted if lazy else permuted[:, spike_idx]

    def window_counts(b: int) -> np.ndarray:
        if lazy:
            return _lazy_window_counts(ds, blocks, draw(b), m)
        return binner.spike_counts(draw(b))

    unit_t, group_t = _permutation_tallies(
        window_counts, k, member, observed, mf_obs, n_permutations, batch
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
        statistic="Fano factor of window counts (ddof 0)", permuted=permuted, windows_over=over,
    )
    return out
