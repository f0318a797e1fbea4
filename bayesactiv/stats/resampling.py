"""The resampling engine: bootstrap weights in chunks and the statistics computed over them.

A bootstrap resample of ``n`` items (inputs, or windows of inputs) is represented by
its *counts* ``w`` (how often each item was drawn; a multinomial(n, 1/n) vector), so a
statistic that is a sum over items is one matrix product ``W @ data`` (``W``:
resamples x items). Two ways of drawing them are kept, because each consumes the
random stream differently and callers promise fixed numbers for a seed:

- ``draw="index"``: ``rng.integers(0, n, size=(b, n))`` item indices, counted with
  ``bincount`` (:func:`resample_indices` gives the indices themselves);
- ``draw="multinomial"``: ``rng.multinomial(n, [1/n] * n, size=b)``.

Resamples come in chunks (:func:`chunk_sizes`) to bound memory; the chunk sizes are
part of the random stream (``integers`` discards half a 64-bit word at the end of a
call), so they are an explicit argument.

Clustered events. When an input holds several events (the tokens of a sequence, the
positions of a convolution counted per position; :func:`event_clusters`), its events
are not independent, so the items resampled are whole inputs, each with all its
events: the fired events per input ``c`` and the events per input ``t``
(:func:`cluster_counts`) give a resample's rates as ``(w @ c) / (w @ t)``
(:func:`resampled_cluster_rates`). Windows (consecutive blocks of ``window_size``
events) then run over the events input-major and may span inputs; their Fano factor
is resampled by input too, each input carrying the windows that start in it
(:func:`window_clusters`, :func:`resampled_cluster_fano`). :func:`resampled_statement`
and :func:`windows_statement` say in words what was resampled and what the windows
run over. Dense events (one per input) take the plain paths, draw for draw.

On top of the weights: per-unit rates (:func:`resampled_rates`), the Fano factor of
resampled window counts (:func:`resampled_fano`), per-group means over units
(:func:`group_means`, :func:`nanmean`), the per-layer replicates of MFR, fraction of
dead units (:func:`group_rate_replicates`) and MF (:func:`group_fano_replicates`),
and differences between levels with percentile intervals (:func:`level_differences`,
:func:`percentile_interval`). :func:`bayesactiv.stats.baselines.bootstrap`, the
bootstrap of :func:`bayesactiv.compare` and the report's layer bootstrap use them.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from bayesactiv.data import DatasetError, validate
from bayesactiv.data.checks import check_choice, check_int, check_prob
from bayesactiv.data.lazy import EventBlock, event_blocks, is_lazy, reduce_blocks
from bayesactiv.stats.groups import (
    KEEP_EVENTS,
    WINDOWS,
    as_generator,
    cluster_residual_sq,
    unit_frame,
)

__all__ = [
    "block_group_replicates",
    "bootstrap",
    "chunk_sizes",
    "cluster_counts",
    "cluster_window_moments",
    "default_chunk",
    "event_clusters",
    "event_word",
    "group_fano_replicates",
    "group_input_fano_replicates",
    "group_means",
    "group_rate_replicates",
    "level_differences",
    "nanmean",
    "percentile_interval",
    "resample_counts",
    "resample_indices",
    "resampled_cluster_fano",
    "resampled_cluster_rates",
    "resampled_fano",
    "resampled_input_sums",
    "resampled_rates",
    "resampled_statement",
    "window_clusters",
    "window_counts",
    "windows_statement",
]


# ----------------------------------------------------------------------------- weights


def chunk_sizes(n_resamples: int, per: int) -> list[int]:
    """Split ``n_resamples`` into chunks of ``per`` (the last one shorter).

    Parameters
    ----------
    n_resamples, per : int
        Both >= 1.

    Returns
    -------
    list of int

    Examples
    --------
    >>> chunk_sizes(10, 4)
    [4, 4, 2]
    """
    per = max(1, min(per, n_resamples))
    sizes = [per] * (n_resamples // per)
    if n_resamples % per:
        sizes.append(n_resamples % per)
    return sizes


def default_chunk(n_items: int, n_units: int) -> int:
    """Resamples per chunk that keep a chunk of weights and products near 2e7 numbers.

    The chunking of :func:`bayesactiv.compare`'s bootstrap.

    Examples
    --------
    >>> default_chunk(1000, 64)
    10000
    """
    return max(1, int(2e7 // max(1, n_items * max(1, n_units) // 64 + n_items)))


def resample_indices(
    rng: np.random.Generator, n_items: int, sizes: Sequence[int]
) -> Iterator[np.ndarray]:
    """Item indices of bootstrap resamples, one (b, n_items) int64 array per chunk.

    Each row draws ``n_items`` indices uniformly with replacement
    (``rng.integers(0, n_items, size=(b, n_items))``).

    Parameters
    ----------
    rng : numpy.random.Generator
    n_items : int
    sizes : sequence of int
        Resamples per chunk (see :func:`chunk_sizes`).

    Yields
    ------
    numpy.ndarray of int64, shape (b, n_items)

    Examples
    --------
    >>> import numpy as np
    >>> [idx.shape for idx in resample_indices(np.random.default_rng(0), 5, [2, 1])]
    [(2, 5), (1, 5)]
    """
    for b in sizes:
        yield rng.integers(0, n_items, size=(b, n_items), dtype=np.int64)


def resample_counts(
    rng: np.random.Generator,
    n_items: int,
    sizes: Sequence[int],
    *,
    draw: Literal["index", "multinomial"] = "multinomial",
    dtype: type = np.float64,
) -> Iterator[np.ndarray]:
    """Bootstrap resample counts (how often each item is drawn), one chunk at a time.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_items : int
        Items resampled (inputs or windows).
    sizes : sequence of int
        Resamples per chunk (see :func:`chunk_sizes`).
    draw : {"multinomial", "index"}
        ``"multinomial"``: ``rng.multinomial``; ``"index"``: the indices of
        :func:`resample_indices`, counted. Same distribution, different random streams.
    dtype : numpy dtype
        Of the yielded counts (float32 holds integer sums exactly up to 2**24).

    Yields
    ------
    numpy.ndarray, shape (b, n_items)
        Each row sums to ``n_items``.

    Examples
    --------
    >>> import numpy as np
    >>> w = next(resample_counts(np.random.default_rng(0), 4, [3], draw="index"))
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 4), [4.0, 4.0, 4.0])
    """
    if draw == "index":
        for idx in resample_indices(rng, n_items, sizes):
            b = idx.shape[0]
            idx += (np.arange(b, dtype=np.int64) * n_items)[:, None]
            counts = np.bincount(idx.ravel(), minlength=b * n_items).reshape(b, n_items)
            yield counts.astype(dtype)
    else:
        pvals = np.full(n_items, 1.0 / n_items)
        for b in sizes:
            yield rng.multinomial(n_items, pvals, size=b).astype(dtype)


# ----------------------------------------------------------------------------- clusters

_EVENT_WORDS = {"token": "tokens", "per_position": "positions", "mixed": "events"}


def event_word(ds: xr.Dataset) -> str:
    """What an event of ``ds`` is, in words: ``"tokens"``, ``"positions"``, ``"events"`` or ``"inputs"``.

    Read from ``attrs["spatial"]`` (``"token"``, ``"per_position"``, ``"mixed"``; anything
    else means one event per input).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([1], 5, network="n", layer="l")
    >>> event_word(ds), event_word(ds.assign_attrs(spatial="token"))
    ('inputs', 'tokens')
    """
    return _EVENT_WORDS.get(str(ds.attrs.get("spatial", "")), "inputs")


def event_clusters(ds: xr.Dataset) -> np.ndarray | None:
    """The input (cluster) of each event, numbered in order of first appearance; None if unclustered.

    Events are clustered when the dataset keeps ``fired`` with an ``input`` coordinate on
    ``sample`` and some input holds more than one event (tokens of a sequence, positions
    of a convolution). One event per input, or no ``input`` coordinate: None (dense).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.

    Returns
    -------
    numpy.ndarray of int64, shape (sample,), or None

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.zeros((4, 1), dtype=bool)
    >>> ds = ba.make_dataset(f.sum(0), 4, network="n", layer="l", fired=f)
    >>> event_clusters(ds) is None
    True
    >>> event_clusters(ds.assign_coords(input=("sample", [7, 7, 3, 3]))).tolist()
    [0, 0, 1, 1]
    """
    if "fired" not in ds.data_vars or "input" not in ds.coords:
        return None
    if ds["input"].dims != ("sample",):
        return None
    codes, uniques = pd.factorize(ds["input"].values, sort=False)
    if (codes < 0).any():
        raise DatasetError("input: the input coordinate has missing values")
    if len(uniques) == codes.size:
        return None
    return codes.astype(np.int64)


def cluster_counts(fired: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fired events per input and unit, and events per input.

    Parameters
    ----------
    fired : numpy.ndarray of bool, shape (sample, unit)
    clusters : numpy.ndarray of int, shape (sample,)
        The input of each event, ``0 .. k-1`` (:func:`event_clusters`).

    Returns
    -------
    counts : numpy.ndarray of int64, shape (input, unit)
        ``c[i, u]``: events of input ``i`` in which unit ``u`` fired.
    events : numpy.ndarray of int64, shape (input,)
        ``t[i]``: events of input ``i``.

    Examples
    --------
    >>> import numpy as np
    >>> f = np.array([[1], [1], [0], [1], [0]], dtype=bool)
    >>> c, t = cluster_counts(f, np.array([0, 0, 0, 1, 1]))
    >>> c.ravel().tolist(), t.tolist()
    ([2, 1], [3, 2])
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    k = int(clusters.max(initial=-1)) + 1
    counts = _segment_sums(np.asarray(fired, dtype=bool).view(np.uint8), clusters, k, np.int64)
    return counts, np.bincount(clusters, minlength=k).astype(np.int64)


def _segment_sums(values: np.ndarray, codes: np.ndarray, k: int, dtype: type) -> np.ndarray:
    """Sums of the rows of ``values`` per code ``0 .. k-1`` (zeros for a code with no row)."""
    out = np.zeros((k, values.shape[1]), dtype=dtype)
    if codes.size == 0:
        return out
    if (np.diff(codes) >= 0).all():
        order = None
    else:
        order = np.argsort(codes, kind="stable")
        codes, values = codes[order], values[order]
    starts = np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1]]))
    out[codes[starts]] = np.add.reduceat(values, starts, axis=0, dtype=dtype)
    return out


def resampled_statement(ds: xr.Dataset) -> str:
    """What a bootstrap of ``ds``'s ``fired`` events resamples, in words (``attrs["resampled"]``).

    ``"inputs"`` for dense events; ``"inputs (clusters of 32 tokens on average)"`` when
    events are clustered (:func:`event_clusters`): whole inputs are drawn, with their events.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.zeros((6, 1), dtype=bool)
    >>> ds = ba.make_dataset(f.sum(0), 6, network="n", layer="l", fired=f, attrs={"spatial": "token"})
    >>> resampled_statement(ds.assign_coords(input=("sample", [0, 0, 0, 1, 1, 1])))
    'inputs (clusters of 3 tokens on average)'
    """
    clusters = event_clusters(ds)
    if clusters is None:
        return "inputs"
    mean = clusters.size / (int(clusters.max()) + 1)
    return f"inputs (clusters of {mean:.3g} {event_word(ds)} on average)"


def windows_statement(ds: xr.Dataset, window_size: int | None = None) -> str:
    """What windows of ``ds`` run over, in words (``attrs["windows_over"]``).

    Windows are consecutive blocks of ``window_size`` events in the order they were
    seen. For one event per input: ``"inputs in order"``. For tokens or positions they
    run over the events input-major: ``"tokens, input-major (windows may span inputs)"``;
    when the kept events show more, it says so: ``"... (each window lies within one
    input)"``, ``"... (each window holds whole inputs)"`` or ``"... (each window is one
    whole input)"``.

    Parameters
    ----------
    ds : xarray.Dataset
    window_size : int, optional
        Default: the recorded ``attrs["window_size"]``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.zeros((6, 1), dtype=bool)
    >>> ds = ba.make_dataset(f.sum(0), 6, network="n", layer="l", fired=f, attrs={"spatial": "token"})
    >>> ds = ds.assign_coords(input=("sample", [0, 0, 0, 1, 1, 1]))
    >>> windows_statement(ds, 2), windows_statement(ds, 3)
    ('tokens, input-major (windows may span inputs)', 'tokens, input-major (each window is one whole input)')
    """
    word = event_word(ds)
    clusters = event_clusters(ds)
    if clusters is None and word == "inputs":
        return "inputs in order"
    if word == "inputs":
        word = "events"
    if window_size is None and "window_size" in ds.attrs:
        window_size = int(ds.attrs["window_size"])
    if clusters is not None and window_size:
        nw = clusters.size // window_size
        if nw:
            blocks = clusters[: nw * window_size].reshape(nw, window_size)
            within = bool((blocks == blocks[:, :1]).all())
            cuts = np.arange(1, nw + 1) * window_size
            cuts = cuts[cuts < clusters.size]
            whole = bool((clusters[cuts] != clusters[cuts - 1]).all())
            if within and whole:
                return f"{word}, input-major (each window is one whole input)"
            if within:
                return f"{word}, input-major (each window lies within one input)"
            if whole:
                return f"{word}, input-major (each window holds whole inputs)"
    return f"{word}, input-major (windows may span inputs)"


def window_clusters(ds: xr.Dataset, n_windows: int, window_size: int) -> np.ndarray | None:
    """The input each window starts in (cluster codes of :func:`event_clusters`); None if dense.

    Window ``j`` covers events ``j * window_size`` to ``(j + 1) * window_size - 1``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.zeros((6, 1), dtype=bool)
    >>> ds = ba.make_dataset(f.sum(0), 6, network="n", layer="l", fired=f)
    >>> window_clusters(ds.assign_coords(input=("sample", [0, 0, 0, 1, 1, 1])), 3, 2).tolist()
    [0, 0, 1]
    """
    clusters = event_clusters(ds)
    if clusters is None:
        return None
    starts = np.arange(n_windows, dtype=np.int64) * window_size
    if n_windows and starts[-1] >= clusters.size:
        raise DatasetError(f"window_count: {n_windows} windows of {window_size} events exceed "
                           f"the {clusters.size} kept events")
    return clusters[starts]


def cluster_window_moments(
    wc: np.ndarray, clusters: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-input sums of window counts and their squares, and windows per input.

    The inputs are ``0 .. max(clusters)``; an input no window starts in has zeros.

    Returns
    -------
    s1, s2 : numpy.ndarray of float64, shape (input, unit)
    m : numpy.ndarray of float64, shape (input,)

    Examples
    --------
    >>> import numpy as np
    >>> s1, s2, m = cluster_window_moments(np.array([[1.0], [2.0], [4.0]]), np.array([0, 0, 2]))
    >>> s1.ravel().tolist(), s2.ravel().tolist(), m.tolist()
    ([3.0, 0.0, 4.0], [5.0, 0.0, 16.0], [2.0, 0.0, 1.0])
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    k = int(clusters.max(initial=-1)) + 1
    wc = np.asarray(wc, dtype=np.float64)
    s1 = _segment_sums(wc, clusters, k, np.float64)
    s2 = _segment_sums(wc**2, clusters, k, np.float64)
    return s1, s2, np.bincount(clusters, minlength=k).astype(np.float64)


# ----------------------------------------------------------------------------- statistics


def resampled_rates(weights: np.ndarray, counts: np.ndarray, total: float) -> np.ndarray:
    """Per-unit firing rates of resamples: ``weights @ counts / total``.

    Parameters
    ----------
    weights : numpy.ndarray, shape (b, item)
        Resample counts (:func:`resample_counts`); a row of ones is the observed data.
    counts : numpy.ndarray, shape (item, unit)
        Fired events (0/1) per input, or counts per window.
    total : float
        Events per unit covered by all items (inputs, or windows x window size).

    Returns
    -------
    numpy.ndarray, shape (b, unit)

    Examples
    --------
    >>> import numpy as np
    >>> resampled_rates(np.array([[2.0, 0.0]]), np.array([[1.0], [0.0]]), 2.0).tolist()
    [[1.0]]
    """
    return weights @ counts / total


def resampled_fano(weights: np.ndarray, wc: np.ndarray) -> np.ndarray:
    """Fano factor (variance ddof 0 / mean) of resampled window counts, from resample counts.

    The moments are weighted sums (``w @ wc``, ``w @ wc**2``), so no resampled copy of the
    windows is built; it equals :func:`bayesactiv.stats.spikes.fano` of the drawn windows up
    to rounding. NaN where the resampled mean is 0.

    Parameters
    ----------
    weights : numpy.ndarray, shape (b, window)
    wc : numpy.ndarray, shape (window, unit)

    Returns
    -------
    numpy.ndarray, shape (b, unit)

    Examples
    --------
    >>> import numpy as np
    >>> resampled_fano(np.ones((1, 3)), np.array([[4.0, 0.0], [1.0, 0.0], [1.0, 0.0]])).tolist()
    [[1.0, nan]]
    """
    nw = wc.shape[0]
    mean = weights @ wc / nw
    var = weights @ (wc**2) / nw - mean**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, np.maximum(var, 0.0) / mean, np.nan)


def resampled_cluster_rates(
    weights: np.ndarray, counts: np.ndarray, events: np.ndarray
) -> np.ndarray:
    """Per-unit firing rates of resampled inputs that hold several events each.

    A resample drawing input ``i`` ``w_i`` times has, for unit ``u``, ``sum_i w_i c_iu``
    fired events out of ``sum_i w_i t_i``: the rate is ``(w @ c) / (w @ t)``, a ratio,
    so inputs of unequal length (variable sequence lengths, masked tokens) weigh by
    their events. NaN where a resample holds no event.

    Parameters
    ----------
    weights : numpy.ndarray, shape (b, input)
        Resample counts (:func:`resample_counts`); a row of ones is the observed data.
    counts : numpy.ndarray, shape (input, unit)
        Fired events per input (:func:`cluster_counts`).
    events : numpy.ndarray, shape (input,)
        Events per input.

    Returns
    -------
    numpy.ndarray of float64, shape (b, unit)

    Examples
    --------
    >>> import numpy as np
    >>> c, t = np.array([[3.0], [0.0]]), np.array([4.0, 2.0])
    >>> resampled_cluster_rates(np.array([[1.0, 1.0], [2.0, 0.0]]), c, t).tolist()
    [[0.5], [0.75]]
    """
    num = (weights @ counts).astype(np.float64)
    den = (weights @ events).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den[:, None] > 0, num / den[:, None], np.nan)


def resampled_cluster_fano(
    weights: np.ndarray, s1: np.ndarray, s2: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """Fano factor (variance ddof 0 / mean) of window counts when inputs are resampled.

    Each input carries the windows that start in it (:func:`cluster_window_moments`:
    ``s1``, ``s2`` the sums of their counts and squared counts, ``m`` how many); a resample
    drawing input ``i`` ``w_i`` times holds ``w @ m`` windows with mean ``w @ s1 / w @ m``
    and second moment ``w @ s2 / w @ m``. A row of ones gives the Fano factor of all the
    windows; drawing every input that holds one window is :func:`resampled_fano`. NaN
    where the resampled mean is 0 or the resample holds no window.

    Parameters
    ----------
    weights : numpy.ndarray, shape (b, input)
    s1, s2 : numpy.ndarray, shape (input, unit)
    m : numpy.ndarray, shape (input,)

    Returns
    -------
    numpy.ndarray, shape (b, unit)

    Examples
    --------
    >>> import numpy as np
    >>> s1, s2, m = cluster_window_moments(np.array([[4.0], [1.0], [1.0]]), np.array([0, 0, 1]))
    >>> resampled_cluster_fano(np.ones((1, 2)), s1, s2, m).tolist()
    [[1.0]]
    """
    nw = (weights @ m)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (weights @ s1) / nw
        var = (weights @ s2) / nw - mean**2
        return np.where((nw > 0) & (mean > 0), np.maximum(var, 0.0) / mean, np.nan)


def nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN; NaN (no warning) where all are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> nanmean(np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])).tolist()
    [2.0, nan]
    """
    ok = np.isfinite(values)
    k = ok.sum(axis=-1)
    total = np.where(ok, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, total / np.maximum(k, 1), np.nan)


def group_means(
    values: np.ndarray, units: Sequence[np.ndarray], *, skip_nan: bool = False
) -> np.ndarray:
    """Mean over the units of each group, for every resample.

    Parameters
    ----------
    values : numpy.ndarray, shape (b, unit)
    units : sequence of integer arrays
        The unit columns of each group.
    skip_nan : bool
        Leave undefined values out (:func:`nanmean`).

    Returns
    -------
    numpy.ndarray, shape (b, group)

    Examples
    --------
    >>> import numpy as np
    >>> group_means(np.array([[1.0, 2.0, 6.0]]), [np.array([0, 1]), np.array([2])]).tolist()
    [[1.5, 6.0]]
    """
    if skip_nan:
        out = np.full((values.shape[0], len(units)), np.nan)
        for j, u in enumerate(units):
            out[:, j] = nanmean(values[:, u])
        return out
    return np.stack([values[:, u].mean(axis=1) for u in units], axis=1)


def group_rate_replicates(
    counts: np.ndarray,
    total: float | np.ndarray,
    units: Sequence[np.ndarray],
    epsilon: float,
    rng: np.random.Generator,
    n_resamples: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observed and resampled MFR and fraction of dead units per group.

    Items (the rows of ``counts``) are resampled with multinomial counts in chunks of
    :func:`default_chunk`; the groups share the resampled items. When the items are
    inputs holding several events each (clustered events: ``total`` is an array of
    events per input), a resample's rates are :func:`resampled_cluster_rates`.

    Parameters
    ----------
    counts : numpy.ndarray, shape (item, unit)
        Fired events (0/1) per input, counts per window, or fired events per input
        of clustered events (:func:`cluster_counts`).
    total : float or numpy.ndarray of shape (item,)
        Events per unit covered by all items; or, for clustered events, the events
        of each input.
    units : sequence of integer arrays
        The unit columns of each group.
    epsilon : float
        A unit with rate below it is dead.
    rng : numpy.random.Generator
    n_resamples : int

    Returns
    -------
    obs_mfr, obs_dead : numpy.ndarray, shape (group,)
    rep_mfr, rep_dead : numpy.ndarray, shape (n_resamples, group)

    Examples
    --------
    >>> import numpy as np
    >>> fired = np.random.default_rng(0).random((50, 3)) < [0.0, 0.2, 0.6]
    >>> om, od, rm, rd = group_rate_replicates(fired.astype(float), 50.0, [np.arange(3)], 0.01,
    ...                                        np.random.default_rng(1), 100)
    >>> rm.shape, float(od[0])
    ((100, 1), 0.3333333333333333)
    >>> c, t = np.array([[2.0, 0.0], [1.0, 3.0]]), np.array([4.0, 3.0])  # 2 inputs, 7 tokens
    >>> om, od, rm, rd = group_rate_replicates(c, t, [np.arange(2)], 0.01,
    ...                                        np.random.default_rng(1), 10)
    >>> round(float(om[0]), 4)  # (3/7 + 3/7) / 2
    0.4286
    """

    def stats(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return group_means(rates, units), group_means(rates < epsilon, units)

    clustered = np.ndim(total) == 1
    if clustered:
        events = np.asarray(total, dtype=np.float64)
        obs_mfr, obs_dead = stats(resampled_cluster_rates(np.ones((1, counts.shape[0])), counts,
                                                          events))
    else:
        obs_mfr, obs_dead = stats(counts.sum(axis=0, keepdims=True) / total)
    mfr_parts, dead_parts = [], []
    n_items = counts.shape[0]
    sizes = chunk_sizes(n_resamples, default_chunk(n_items, counts.shape[1]))
    for w in resample_counts(rng, n_items, sizes):
        if clustered:
            rates = resampled_cluster_rates(w, counts, events)
        else:
            rates = resampled_rates(w, counts, total)
        m, d = stats(rates)
        mfr_parts.append(m)
        dead_parts.append(d)
    return obs_mfr[0], obs_dead[0], np.concatenate(mfr_parts), np.concatenate(dead_parts)


def group_input_fano_replicates(
    counts: np.ndarray,
    events: np.ndarray,
    units: Sequence[np.ndarray],
    rng: np.random.Generator,
    n_resamples: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed and resampled mean per-input Fano factor per group, resampling whole inputs.

    The Fano factor of a unit's per-input counts, ``F_u = sum_i (c_i - p t_i)**2 / (p n)``
    with ``p = sum c_i / sum t_i`` and ``n = sum t_i`` (``Var(c_i) / mean(c_i)``, ddof 0, for
    inputs of equal length), is the plug-in counterpart of the clustered model's
    ``(1 - theta_u) d_u``. Each resample draws the inputs with multinomial counts ``w``; the
    sums are weighted (``w @ c``, ``w @ c**2``, ``w @ (c t)``, ``w @ t``, ``w @ t**2``). Units
    that never fire in a resample are left out of its mean.

    Parameters
    ----------
    counts : numpy.ndarray, shape (input, unit)
        Fired events per input.
    events : numpy.ndarray, shape (input,)
        Events per input.
    units : sequence of integer arrays
        The unit columns of each group.
    rng : numpy.random.Generator
    n_resamples : int

    Returns
    -------
    obs : numpy.ndarray, shape (group,)
    reps : numpy.ndarray, shape (n_resamples, group)

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([[4.0, 1.0], [0.0, 1.0], [2.0, 1.0]])  # 3 inputs of 4 tokens, 2 units
    >>> obs, reps = group_input_fano_replicates(c, np.full(3, 4.0), [np.arange(2)],
    ...                                         np.random.default_rng(0), 20)
    >>> round(float(obs[0]), 4), reps.shape  # unit 0: var 2.667 / mean 2; unit 1: 0
    (0.6667, (20, 1))
    """
    c = counts.astype(np.float64)
    t = events.astype(np.float64)
    cols = [c, c * c, c * t[:, None]]

    def mean_fano(w: np.ndarray) -> np.ndarray:
        s1, s2, sct = (w @ x for x in cols)
        return _input_fano_means(s1, s2, sct, w @ t, w @ (t * t), units)

    obs = mean_fano(np.ones((1, c.shape[0])))[0]
    per = default_chunk(c.shape[0], c.shape[1])
    reps = [mean_fano(w) for w in resample_counts(rng, c.shape[0], chunk_sizes(n_resamples, per))]
    return obs, np.concatenate(reps) if reps else np.empty((0, len(units)))


def _input_fano_means(s1: np.ndarray, s2: np.ndarray, sct: np.ndarray, st: np.ndarray,
                      stt: np.ndarray, units: Sequence[np.ndarray]) -> np.ndarray:
    """Mean per-input Fano factor per group from the weighted sums over inputs.

    ``s1``, ``s2``, ``sct`` (b, unit): sums of ``c``, ``c**2``, ``c t``; ``st``, ``stt`` (b,):
    sums of ``t``, ``t**2`` (see :func:`group_input_fano_replicates`). Returns (b, group).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        p = s1 / st[:, None]
        f = cluster_residual_sq(s2, sct, stt[:, None], p) / s1
    f = np.where(s1 > 0, f, np.nan)
    return np.stack([nanmean(f[:, u]) for u in units], axis=1)


def group_fano_replicates(
    wc: np.ndarray,
    units: Sequence[np.ndarray],
    rng: np.random.Generator,
    n_resamples: int,
    *,
    clusters: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed and resampled mean Fano factor (MF) per group, resampling windows or inputs.

    Units that never fire in the (resampled) windows have no Fano factor and are left
    out of the mean. Windows are resampled with multinomial counts in chunks of
    :func:`default_chunk`. With ``clusters`` (clustered events: the input each window
    starts in, :func:`window_clusters`) whole inputs are resampled instead, each with the
    windows that start in it (:func:`resampled_cluster_fano`), so windows of one input
    are never split up; a window that spans two inputs goes with the first.

    Parameters
    ----------
    wc : numpy.ndarray, shape (window, unit)
    units : sequence of integer arrays
    rng : numpy.random.Generator
    n_resamples : int
    clusters : numpy.ndarray of int, shape (window,), optional
        The input each window starts in, ``0 .. k-1``; the ``k`` inputs are resampled.

    Returns
    -------
    obs : numpy.ndarray, shape (group,)
    reps : numpy.ndarray, shape (n_resamples, group)

    Examples
    --------
    >>> import numpy as np
    >>> wc = np.array([[4.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    >>> obs, reps = group_fano_replicates(wc, [np.arange(2)], np.random.default_rng(0), 10)
    >>> obs.tolist(), reps.shape
    ([1.0], (10, 1))
    >>> obs, reps = group_fano_replicates(wc, [np.arange(2)], np.random.default_rng(0), 10,
    ...                                   clusters=np.array([0, 0, 1]))
    >>> obs.tolist(), reps.shape
    ([1.0], (10, 1))
    """
    if clusters is not None:
        s1, s2, m = cluster_window_moments(wc, clusters)
        k = m.shape[0]

        def cstats(w: np.ndarray) -> np.ndarray:
            return group_means(resampled_cluster_fano(w, s1, s2, m), units, skip_nan=True)

        obs = cstats(np.ones((1, k)))[0]
        sizes = chunk_sizes(n_resamples, default_chunk(k, wc.shape[1]))
        return obs, np.concatenate([cstats(w) for w in resample_counts(rng, k, sizes)])
    nw = wc.shape[0]

    def stats(w: np.ndarray) -> np.ndarray:
        return group_means(resampled_fano(w, wc), units, skip_nan=True)

    obs = stats(np.ones((1, nw)))[0]
    sizes = chunk_sizes(n_resamples, default_chunk(nw, wc.shape[1]))
    parts = [stats(w) for w in resample_counts(rng, nw, sizes)]
    return obs, np.concatenate(parts)


def window_counts(ds: xr.Dataset, window_size: int | None) -> tuple[np.ndarray | None, str]:
    """Window counts (window, unit) to resample for the Fano factor, or a reason why none.

    With ``window_size`` and ``fired``: windows of ``window_size`` consecutive inputs
    built from the events (summed chunk by chunk when ``fired`` is a dask array, see
    :mod:`bayesactiv.data.lazy`); otherwise the recorded ``window_count``.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    window_size : int, optional

    Returns
    -------
    counts : numpy.ndarray of float64 or None
    reason : str
        Empty when ``counts`` is given.

    Raises
    ------
    DatasetError
        ``window_size`` differs from the recorded one and no events are kept.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.zeros((10, 1), dtype=bool)
    >>> ds = ba.make_dataset(f.sum(0), 10, network="n", layer="l", fired=f)
    >>> window_counts(ds, 5)[0].shape, window_counts(ds, None)[1][:21]
    ((2, 1), 'needs window counts: ')
    """
    if window_size is not None and "fired" in ds.data_vars and is_lazy(ds):
        nw = ds.sizes["sample"] // window_size
        if nw < 2:
            return None, f"fewer than two windows of {window_size} events"
        # summed chunk by chunk: only the (window, unit) counts are held
        fired = ds["fired"].transpose("sample", ...).isel(sample=slice(0, nw * window_size))
        wc = fired.coarsen(sample=window_size).sum().values
        return wc.astype(np.float64), ""
    if window_size is not None and "fired" in ds.data_vars:
        fired = ds["fired"].values
        nw = fired.shape[0] // window_size
        if nw < 2:
            return None, f"fewer than two windows of {window_size} events"
        wc = fired[: nw * window_size].reshape(nw, window_size, -1).sum(axis=1)
        return wc.astype(np.float64), ""
    if "window_count" in ds.data_vars:
        recorded = int(ds.attrs["window_size"])
        if window_size is not None and window_size != recorded:
            raise DatasetError(
                f"window_size: {window_size} differs from the recorded window_size={recorded} and "
                "the dataset keeps no fired events to rebuild windows from; pass "
                f"window_size=None or record with keep_events=True"
            )
        if ds.sizes["window"] < 2:
            return None, "fewer than two windows"
        return ds["window_count"].values.astype(np.float64), ""
    if "fired" in ds.data_vars:
        return None, "needs window counts: pass window_size= (the dataset keeps fired events)"
    return None, "needs window counts: record with window_size=..."


# ----------------------------------------------------------------------------- out of core

#: Resample counts (resamples x inputs of a block) that the block bootstrap draws at once.
BLOCK_DRAW_CELLS = 2**20

_SUM_KEYS = ("counts", "events")
_MOMENT_KEYS = ("counts_sq", "counts_events", "events_sq")


def _block_generator(key: Sequence[int], index: int) -> np.random.Generator:
    """The random stream of block ``index``: a function of ``key`` and the index only."""
    return np.random.default_rng(np.random.SeedSequence(entropy=list(key), spawn_key=(index,)))


def _block_items(block: EventBlock, events: np.ndarray, input_events: np.ndarray | None,
                 dtype: type) -> tuple[np.ndarray, np.ndarray | None]:
    """The block's fired events per input ``c`` (input, unit) and events per input ``t``.

    Unclustered events (``input_events`` None): ``c`` is the events themselves and ``t`` None
    (one event per input).
    """
    fired = np.asarray(events, dtype=bool)
    if input_events is None:
        return fired.astype(dtype), None
    t = input_events[block.inputs]
    if int(t.sum()) != fired.shape[0]:
        raise DatasetError(
            f"input: block {block.index} holds {fired.shape[0]} events but its inputs "
            f"{block.inputs.start}..{block.inputs.stop - 1} hold {int(t.sum())}")
    starts = np.r_[0, np.cumsum(t)[:-1]].astype(np.int64)
    counts = np.add.reduceat(fired.view(np.uint8), starts, axis=0, dtype=dtype)
    return counts, t.astype(dtype)


def _block_input_sums(
    block: EventBlock, events: np.ndarray, *, draws: np.ndarray, key: tuple[int, ...],
    input_events: np.ndarray | None, dtype: type, moments: bool, batch: int | None,
) -> dict[str, np.ndarray]:
    """The sums of :func:`resampled_input_sums` over the inputs of one block."""
    c, t = _block_items(block, events, input_events, dtype)
    k, n_units = c.shape
    if t is None and moments:
        t = np.ones(k, dtype=dtype)
    items = {"counts": c}
    scalars = {"events": t}
    if moments:
        items.update(counts_sq=c * c, counts_events=c * t[:, None])
        scalars["events_sq"] = t * t
    per_block = draws[:, block.index]
    n_resamples = per_block.size
    out: dict[str, np.ndarray] = {}
    for name, values in items.items():
        out[name] = np.empty((n_resamples, n_units), dtype=dtype)
        out["total_" + name] = values.sum(axis=0, dtype=np.float64)
    for name, values in scalars.items():
        out[name] = np.empty(n_resamples, dtype=dtype)
        out["total_" + name] = np.float64(k if values is None else values.sum(dtype=np.float64))
    rng = _block_generator(key, block.index)
    per = batch if batch is not None else max(1, BLOCK_DRAW_CELLS // k)
    for start in range(0, n_resamples, per):
        drawn = per_block[start : start + per]
        b = drawn.size
        # the drawn.sum() draws of these resamples that land in this block, uniform on its inputs
        index = rng.integers(0, k, size=int(drawn.sum()), dtype=np.int64)
        index += np.repeat(np.arange(b, dtype=np.int64) * k, drawn)
        weights = np.bincount(index, minlength=b * k).reshape(b, k).astype(dtype)
        del index
        rows = slice(start, start + b)
        for name, values in items.items():
            out[name][rows] = weights @ values
        for name, values in scalars.items():
            out[name][rows] = drawn if values is None else weights @ values
    return out


def _add_sums(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Key by key sum of two blocks' partial sums (associative: the tree of reduce_blocks)."""
    return {name: left[name] + right[name] for name in left}


def resampled_input_sums(
    ds: xr.Dataset,
    n_resamples: int,
    seed: int | np.random.Generator | None = None,
    *,
    moments: bool = False,
    batch: int | None = None,
    blocks: list[EventBlock] | None = None,
) -> dict[str, np.ndarray]:
    """Sums over bootstrap resamples of inputs, block by block of ``fired`` (out of core).

    A resample draws the ``n`` inputs uniformly with replacement: how often each input is
    drawn is its count ``w_i`` (a multinomial(n, 1/n) vector), and every statistic of the
    bootstraps here is a ratio of sums ``w @ x`` over inputs. The draws are split over the
    blocks of whole inputs (:func:`bayesactiv.data.lazy.event_blocks`) exactly: first how
    many of a resample's ``n`` draws land in each block (multinomial over the blocks, with
    probabilities their shares of the inputs; a (n_resamples, block) array drawn up front
    from ``seed``), then, within a block, that many inputs uniformly among its own
    (counted with ``bincount``). The result has the distribution of the in-memory draws
    (:func:`resample_counts`), not their random stream. Each block's stream is derived from
    ``seed`` and the block's index only (:class:`numpy.random.SeedSequence`), so the sums
    depend on the seed and the blocks, not on the scheduler, the number of workers or the
    order the blocks run in. Blocks are dask tasks (:func:`bayesactiv.data.lazy.reduce_blocks`),
    summed in a tree; a block holds only its events (as float32 or float64) and the counts
    of ``batch`` resamples over its inputs at a time.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired`` (a dask array or in memory).
    n_resamples : int
        Resamples ``B``.
    seed : int or numpy.random.Generator, optional
    moments : bool
        Also the sums of ``c**2``, ``c t`` and ``t**2`` (the per-input Fano factor).
    batch : int, optional
        Resamples drawn at once in a block; default: about :data:`BLOCK_DRAW_CELLS`
        counts (resamples x inputs of the block).
    blocks : list of EventBlock, optional
        Default :func:`bayesactiv.data.lazy.event_blocks` of ``ds``.

    Returns
    -------
    dict of numpy.ndarray
        With ``c`` the fired events per input and unit and ``t`` the events per input
        (``t = 1`` for one event per input): ``counts`` (B, unit) = ``w @ c``, ``events``
        (B,) = ``w @ t``; with ``moments``, ``counts_sq``, ``counts_events`` (B, unit) and
        ``events_sq`` (B,); and, for each, ``total_<name>`` the sum over all inputs once
        (float64). Sums are float32 when they are integers below 2**24, else float64.

    Raises
    ------
    DatasetError
        Without ``fired``, fewer than 2 inputs, or an input whose events are not
        consecutive (see :func:`bayesactiv.data.lazy.event_blocks`).

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> fired = np.eye(6, dtype=bool)  # unit u fires on input u only: counts = weights
    >>> ds = ba.make_dataset(fired.sum(0), 6, network="n", layer="l", fired=fired)
    >>> sums = resampled_input_sums(ds.chunk({"sample": 2}), 4, seed=0)
    >>> sums["counts"].shape, sums["counts"].sum(axis=1).tolist(), sums["total_events"].item()
    ((4, 6), [6.0, 6.0, 6.0, 6.0], 6.0)
    """
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    if batch is not None:
        batch = check_int(batch, "batch", minimum=1)
    if blocks is None:
        blocks = event_blocks(ds)
    clusters = event_clusters(ds)
    if clusters is None:
        input_events = None
        sizes = np.array([b.events.stop - b.events.start for b in blocks], dtype=np.int64)
        top = 1
    else:
        if any(b.inputs is None for b in blocks):
            raise DatasetError("input: the blocks do not say which inputs they hold")
        input_events = np.bincount(clusters).astype(np.int64)
        sizes = np.array([b.inputs.stop - b.inputs.start for b in blocks], dtype=np.int64)
        top = int(input_events.max())
    n_inputs = int(sizes.sum())
    if n_inputs < 2:
        raise DatasetError(f"fired: the bootstrap needs at least 2 inputs, got {n_inputs}")
    rng = as_generator(seed)
    draws = rng.multinomial(n_inputs, sizes / n_inputs, size=n_resamples)
    key = tuple(int(x) for x in rng.integers(0, 2**63, size=4, dtype=np.int64))
    # float32 holds integer sums exactly up to 2**24
    exact32 = not moments and n_inputs * max(1, top) < 2**24
    func = functools.partial(_block_input_sums, draws=draws, key=key, input_events=input_events,
                             dtype=np.float32 if exact32 else np.float64, moments=moments,
                             batch=batch)
    return reduce_blocks(ds, func, combine=_add_sums, blocks=blocks)


def _block_jackknife(block: EventBlock, events: np.ndarray, *, input_events: np.ndarray,
                     total_counts: np.ndarray, total_events: float,
                     center: np.ndarray) -> dict[str, np.ndarray]:
    """Power sums over the block's inputs of ``theta_(i) - center`` (leave input i out)."""
    c, t = _block_items(block, events, input_events, np.float64)
    shifted = (total_counts[None, :] - c) / (total_events - t)[:, None] - center[None, :]
    return {"s1": shifted.sum(axis=0), "s2": (shifted**2).sum(axis=0),
            "s3": (shifted**3).sum(axis=0), "k": np.float64(t.size)}


def _lazy_jackknife_acceleration(ds: xr.Dataset, blocks: list[EventBlock],
                                 total_counts: np.ndarray, total_events: float) -> np.ndarray:
    """The BCa acceleration of the clustered ratio estimator, from one pass over the blocks.

    ``a = sum d**3 / (6 (sum d**2)**1.5)``, ``d_i = mean(theta_(.)) - theta_(i)``,
    ``theta_(i) = (C - c_i) / (T - t_i)``, from the power sums of ``theta_(i) - C/T``.
    """
    clusters = event_clusters(ds)
    if clusters is None:
        raise DatasetError("input: the jackknife over inputs needs clustered events")
    center = total_counts / total_events
    func = functools.partial(_block_jackknife, input_events=np.bincount(clusters),
                             total_counts=total_counts, total_events=total_events,
                             center=center)
    sums = reduce_blocks(ds, func, combine=_add_sums, blocks=blocks)
    k = float(sums["k"])
    mean = sums["s1"] / k
    spread = np.maximum(sums["s2"] - k * mean**2, 0.0)
    third = -(sums["s3"] - 3 * mean * sums["s2"] + 2 * k * mean**3)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, third / (6.0 * spread**1.5), np.nan)


def block_group_replicates(
    ds: xr.Dataset,
    units: Sequence[np.ndarray],
    rng: np.random.Generator,
    n_resamples: int,
    *,
    epsilon: float | None = None,
    input_fano: bool = False,
    batch: int | None = None,
) -> dict[str, np.ndarray]:
    """Observed and resampled group statistics of inputs resampled block by block.

    The out-of-core counterpart of :func:`group_rate_replicates` (MFR, fraction of dead
    units) and :func:`group_input_fano_replicates` (mean per-input Fano factor) for a
    dataset whose ``fired`` is a dask array: the resamples are those of
    :func:`resampled_input_sums` (same distribution, another random stream), shared by all
    the statistics and groups, and no array of all events is built.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired``.
    units : sequence of integer arrays
        The unit columns of each group.
    rng : numpy.random.Generator
    n_resamples : int
    epsilon : float, optional
        A unit with rate below it is dead; None: no fraction of dead units.
    input_fano : bool
        Also the mean per-input Fano factor (clustered events).
    batch : int, optional
        As :func:`resampled_input_sums`.

    Returns
    -------
    dict of numpy.ndarray
        ``obs_mfr`` (group,), ``rep_mfr`` (B, group); with ``epsilon``, ``obs_dead``,
        ``rep_dead``; with ``input_fano``, ``obs_mf``, ``rep_mf``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> fired = np.random.default_rng(0).random((50, 3)) < [0.0, 0.2, 0.6]
    >>> ds = ba.make_dataset(fired.sum(0), 50, network="n", layer="l", fired=fired)
    >>> out = block_group_replicates(ds.chunk({"sample": 20}), [np.arange(3)],
    ...                              np.random.default_rng(1), 100, epsilon=0.01)
    >>> out["rep_mfr"].shape, float(out["obs_dead"][0])
    ((100, 1), 0.3333333333333333)
    """
    sums = resampled_input_sums(ds, n_resamples, rng, moments=input_fano, batch=batch)
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = sums["total_counts"][None, :] / sums["total_events"]
        rates = sums["counts"].astype(np.float64) / sums["events"].astype(np.float64)[:, None]
    out["obs_mfr"], out["rep_mfr"] = group_means(observed, units)[0], group_means(rates, units)
    if epsilon is not None:
        out["obs_dead"] = group_means(observed < epsilon, units)[0]
        out["rep_dead"] = group_means(rates < epsilon, units)
    del rates
    if input_fano:
        names = ("counts", "counts_sq", "counts_events", "events", "events_sq")
        out["obs_mf"] = _input_fano_means(
            *(np.atleast_1d(sums["total_" + name])[None] for name in names[:3]),
            *(np.atleast_1d(sums["total_" + name]) for name in names[3:]), units)[0]
        out["rep_mf"] = _input_fano_means(*(sums[name] for name in names), units)
    return out


# ----------------------------------------------------------------------------- differences


def level_differences(
    obs: np.ndarray, reps: np.ndarray, level_pos: np.ndarray, ref_pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Observed and resampled differences *level minus reference* between groups.

    Parameters
    ----------
    obs : numpy.ndarray, shape (group,)
    reps : numpy.ndarray, shape (b, group)
    level_pos, ref_pos : integer arrays, shape (contrast,)
        The group of each contrast's level and of its reference.

    Returns
    -------
    estimate : numpy.ndarray, shape (contrast,)
    replicates : numpy.ndarray, shape (b, contrast)

    Examples
    --------
    >>> import numpy as np
    >>> est, rep = level_differences(np.array([1.0, 3.0]), np.array([[1.0, 2.0]]), [1], [0])
    >>> est.tolist(), rep.tolist()
    ([2.0], [[1.0]])
    """
    return obs[level_pos] - obs[ref_pos], reps[:, level_pos] - reps[:, ref_pos]


def percentile_interval(
    estimate: np.ndarray, replicates: np.ndarray, prob: float
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed percentile interval of mass ``prob`` over the resamples (axis 0).

    NaN replicates are ignored; NaN where the estimate is NaN or there is no resample.

    Parameters
    ----------
    estimate : numpy.ndarray, shape (...)
    replicates : numpy.ndarray, shape (b, ...)
    prob : float

    Returns
    -------
    low, high : numpy.ndarray, shape (...)

    Examples
    --------
    >>> import numpy as np
    >>> low, high = percentile_interval(np.array([0.5]), np.linspace(0, 1, 101)[:, None], 0.9)
    >>> low.round(2).tolist(), high.round(2).tolist()
    ([0.05], [0.95])
    """
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if replicates.shape[0]:
            low = np.nanquantile(replicates, lo_q, axis=0)
            high = np.nanquantile(replicates, hi_q, axis=0)
        else:
            low = high = np.full_like(estimate, np.nan)
    low = np.where(np.isnan(estimate), np.nan, low)
    high = np.where(np.isnan(estimate), np.nan, high)
    return low, high


# ----------------------------------------------------------------------------- bootstrap

_BOOTSTRAP_METHODS = ("percentile", "bca", "basic")


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


def _bca_levels(
    theta_b: np.ndarray, theta_hat: np.ndarray, data: np.ndarray, denom: float, alpha: float,
    *, inputs: bool, events: np.ndarray | None = None, acceleration: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The BCa quantile levels of each unit's low and high bound (Efron & Tibshirani 14.10).

    With ``events`` (clustered events: ``data`` holds fired events per input, ``events``
    the events per input) the acceleration is the jackknife one of the ratio estimator,
    leaving out one whole input at a time. A given ``acceleration`` (per unit) is used as
    it is (``data`` is then not read).
    """
    n_resamples = theta_b.shape[0]
    below = (theta_b < theta_hat).sum(axis=0) + (theta_b <= theta_hat).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z0 = special.ndtri(below / (2.0 * n_resamples))
        if acceleration is not None:
            a = acceleration
        elif events is not None:
            counts = data.astype(np.float64)
            ev = events.astype(np.float64)
            jack = (counts.sum(axis=0)[None, :] - counts) / (ev.sum() - ev)[:, None]
            d = jack.mean(axis=0) - jack
            spread = (d**2).sum(axis=0)
            a = np.where(spread > 0, (d**3).sum(axis=0) / (6.0 * spread**1.5), np.nan)
        elif inputs:
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
    return q_low, q_high


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

    Clustered events (tokens of a sequence, positions of a convolution: ``fired`` has an
    ``input`` coordinate on ``sample`` and some input holds more than one event,
    :func:`event_clusters`): the events of one input are not independent, so whole
    inputs are resampled, each with all its events. With ``c`` the fired events per
    input and unit and ``t`` the events per input (:func:`cluster_counts`), a resample
    drawing input ``i`` ``w_i`` times estimates :math:`(w \cdot c_u) / (w \cdot t)`
    (:func:`resampled_cluster_rates`); inputs of unequal length weigh by their events.
    One event per input, or no ``input`` coordinate: the events are the inputs, and the
    numbers are those of the plain input bootstrap above, draw for draw.

    Without ``fired``, with ``window_count``: a block bootstrap over the windows
    (blocks of ``window_size`` consecutive events are resampled with replacement),
    which keeps dependence within a window. The statistic is then the firing
    fraction over the events the windows cover. For tokens or positions the windows
    run over the events input-major and may span inputs (``attrs["windows_over"]``);
    without ``fired`` the inputs are unknown, so windows, not inputs, are resampled.

    Intervals (parameter names as in :func:`scipy.stats.bootstrap`):

    - ``"percentile"``: quantiles :math:`\alpha/2, 1-\alpha/2` of the resampled estimates
      (linear interpolation, as scipy). Zero width for a unit that never/always fired.
    - ``"basic"``: :math:`2\hat\theta - ` the percentile bounds, reversed.
    - ``"bca"``: bias-corrected and accelerated (Efron & Tibshirani eq. 14.10), with
      :math:`z_0 = \Phi^{-1}(\#\{\theta^* < \hat\theta\} + \#\{\theta^* \le \hat\theta\}) / 2B)`
      and the jackknife acceleration in closed form: for a proportion
      :math:`a = (1 - 2\hat p) / (6\sqrt{n \hat p (1-\hat p)})`; for window blocks
      :math:`a = \sum d^3 / (6 (\sum d^2)^{3/2})`, :math:`d` = window count minus its mean;
      for clustered events the same sum over the leave-one-input-out estimates
      :math:`d_i = \bar\theta_{(\cdot)} - \theta_{(i)}`,
      :math:`\theta_{(i)} = (C - c_i) / (T - t_i)`.

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
        ``confidence_level``, ``n_resamples``, ``resampled`` (what was resampled:
        ``"inputs"``, ``"inputs (clusters of 32 tokens on average)"``, or the window
        blocks) and, for window blocks, ``windows_over`` (what the windows run over:
        ``"inputs in order"`` or e.g. ``"tokens, input-major (windows may span inputs)"``).

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
    >>> tokens = ds.assign_coords(input=("sample", np.repeat(np.arange(20), 10)))
    >>> ba.baselines.bootstrap(tokens.assign_attrs(spatial="token"), n_resamples=99,
    ...                        seed=1).attrs["resampled"]
    'inputs (clusters of 10 tokens on average)'
    """
    validate(ds)
    level = check_prob(confidence_level, "confidence_level")
    method = check_choice(method, "method", _BOOTSTRAP_METHODS)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=2)
    if batch is not None:
        batch = check_int(batch, "batch", minimum=1)
    rng = as_generator(seed)
    if "fired" in ds.data_vars and is_lazy(ds):
        return _lazy_bootstrap(ds, n_resamples=n_resamples, level=level, method=method, rng=rng,
                               batch=batch)
    clusters = event_clusters(ds)
    events = None
    windows_over = None
    if clusters is not None:
        data, events = cluster_counts(ds["fired"].values, clusters)
        denom = float(events.sum())
        resampled = resampled_statement(ds)
    elif "fired" in ds.data_vars:
        data = ds["fired"].values
        denom = float(data.shape[0])
        resampled = "inputs"
    elif "window_count" in ds.data_vars:
        data = ds["window_count"].values
        size = int(ds.attrs["window_size"])
        denom = float(data.shape[0] * size)
        word = event_word(ds)
        resampled = f"windows of {size} {word} (block bootstrap)"
        windows_over = windows_statement(ds, size)
        if word != "inputs":
            resampled += ("; the inputs of the events are not kept, so windows are resampled "
                          "one by one, not whole inputs")
    else:
        raise DatasetError(
            "fired: the bootstrap needs 'fired' (or 'window_count' for a block bootstrap), which "
            f"this dataset lacks; record it with {KEEP_EVENTS} or {WINDOWS}"
        )
    rows = data.shape[0]
    if rows < 2:
        what = "inputs" if events is not None else "samples or windows"
        raise DatasetError(f"fired: the bootstrap needs at least 2 {what}, got {rows}")
    # float32 holds integer sums exactly up to 2**24
    top = int(events.max()) if events is not None else int(data.max(initial=0))
    ftype = np.float32 if rows * max(1, top) < 2**24 else np.float64
    matrix = data.astype(ftype)
    if batch is None:
        batch = max(1, min(n_resamples, 2**23 // rows))
    theta_b = np.empty((n_resamples, data.shape[1]), dtype=np.float64)
    start = 0
    sizes = chunk_sizes(n_resamples, batch)
    if events is not None:
        ev = events.astype(ftype)
        for weights in resample_counts(rng, rows, sizes, draw="index", dtype=ftype):
            theta_b[start : start + len(weights)] = resampled_cluster_rates(weights, matrix, ev)
            start += len(weights)
    else:
        for weights in resample_counts(rng, rows, sizes, draw="index", dtype=ftype):
            theta_b[start : start + len(weights)] = weights @ matrix
            start += len(weights)
        theta_b /= denom
    theta_hat = data.sum(axis=0) / denom
    alpha = (1.0 - level) / 2
    if method == "bca":
        q_low, q_high = _bca_levels(theta_b, theta_hat, data, denom, alpha,
                                    inputs=resampled == "inputs", events=events)
    else:
        q_low = np.full(data.shape[1], alpha)
        q_high = np.full(data.shape[1], 1 - alpha)
    return _bootstrap_frame(ds, theta_b, theta_hat, q_low, q_high, method=method, level=level,
                            resampled=resampled, windows_over=windows_over)


def _bootstrap_frame(
    ds: xr.Dataset, theta_b: np.ndarray, theta_hat: np.ndarray, q_low: np.ndarray,
    q_high: np.ndarray, *, method: str, level: float, resampled: str, windows_over: str | None,
) -> xr.Dataset:
    """The intervals of :func:`bootstrap` from the resampled estimates (sorted in place)."""
    n_resamples = theta_b.shape[0]
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
    if windows_over is not None:
        out.attrs["windows_over"] = windows_over
    return out


def _lazy_bootstrap(
    ds: xr.Dataset, *, n_resamples: int, level: float, method: str, rng: np.random.Generator,
    batch: int | None,
) -> xr.Dataset:
    """:func:`bootstrap` of a dataset whose ``fired`` is a dask array, block by block."""
    blocks = event_blocks(ds)
    clustered = blocks[0].inputs is not None
    sums = resampled_input_sums(ds, n_resamples, rng, batch=batch, blocks=blocks)
    denom = float(sums["total_events"])
    theta_hat = sums["total_counts"] / denom
    if clustered:
        events_b = sums["events"].astype(np.float64)[:, None]
        theta_b = sums["counts"].astype(np.float64) / events_b
    else:
        theta_b = sums["counts"].astype(np.float64) / denom
    del sums
    alpha = (1.0 - level) / 2
    if method == "bca":
        accel = (_lazy_jackknife_acceleration(ds, blocks, theta_hat * denom, denom)
                 if clustered else None)
        q_low, q_high = _bca_levels(theta_b, theta_hat, np.empty((0, theta_hat.size)), denom,
                                    alpha, inputs=True, acceleration=accel)
    else:
        q_low = np.full(theta_hat.size, alpha)
        q_high = np.full(theta_hat.size, 1 - alpha)
    return _bootstrap_frame(ds, theta_b, theta_hat, q_low, q_high, method=method, level=level,
                            resampled=resampled_statement(ds), windows_over=None)

