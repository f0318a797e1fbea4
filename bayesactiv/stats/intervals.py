"""Monte Carlo estimates of firing probabilities and their frequentist intervals.

:func:`monte_carlo` (count / n, with per-group means), :func:`monte_carlo_curve` (the
estimate as inputs accumulate) and :func:`intervals` (Wald, Wilson, Jeffreys,
Clopper-Pearson).

Clustered events. When an input holds several events (the tokens of a sequence, the
positions of a convolution counted per position) its events share context and are not
independent trials: the binomial standard error and the binomial intervals, which treat
the ``n`` events as independent, are too narrow. By default (``cluster_robust=True``)
the standard errors and intervals of clustered units are widened by their design effect
(:func:`design_effect`: the Rao-Scott ratio of the cluster-robust variance over inputs
to the binomial variance), i.e. they are computed from the effective count
``count / d`` out of the effective events ``n / d``. Dense units (one event per input)
have ``d = 1`` and keep their numbers exactly.

Events out of core. When ``fired`` is a dask array the per-input counts are computed
one block of whole inputs at a time (:mod:`bayesactiv.data.lazy`): the cluster sums add
over blocks and the curves carry their running sums from block to block, so the numbers
are those of ``fired`` in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from bayesactiv.data import DatasetError, input_count_sums, validate
from bayesactiv.data.checks import ArgumentError, check_choice, check_int, check_prob
from bayesactiv.data.lazy import EventBlock, event_blocks, is_lazy, map_blocks, reduce_blocks
from bayesactiv.stats.groups import (
    BY_LAYER,
    KEEP_EVENTS,
    WINDOWS,
    cluster_residual_sq,
    group_frame,
    group_layout,
    proportion,
    unit_frame,
)
from bayesactiv.stats.resampling import cluster_counts, event_clusters, event_word

__all__ = [
    "cluster_sums",
    "cluster_variances",
    "design_effect",
    "intervals",
    "monte_carlo",
    "monte_carlo_curve",
]

_INTERVAL_METHODS = ("wald", "wilson", "jeffreys", "clopper-pearson")
_SUM_NAMES = ("cluster_n", "cluster_count_sq", "cluster_count_n", "cluster_n_sq")


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


# ----------------------------------------------------------------------------- clusters


def cluster_sums(ds: xr.Dataset) -> dict[str, np.ndarray] | None:
    """Per-unit sums over inputs of the per-input counts, or None when events are not clustered.

    With ``c_i`` the events of input ``i`` in which the unit fired and ``t_i`` the events
    of input ``i``: ``cluster_n`` (inputs ``I``), ``cluster_count_sq`` (``sum c_i**2``),
    ``cluster_count_n`` (``sum c_i t_i``), ``cluster_n_sq`` (``sum t_i**2``), beside
    ``count`` and ``n``, all as float64. They are read from the streamed ``cluster_*``
    statistics of a recording, or else computed from ``fired`` and its ``input``
    coordinate. None when the dataset has neither, or when every input holds one event.

    A dask-backed ``fired`` (events out of core) is read one block of whole inputs at a
    time (:func:`bayesactiv.data.lazy.reduce_blocks`): the per-input counts of a block
    are summed there, so no more than a block's events are in memory, and the sums are
    the same integers as from ``fired`` in memory.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.

    Returns
    -------
    dict of str to numpy.ndarray of shape (unit,), or None

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> ds = ba.data.from_input_counts(np.array([[3], [1]]), [4, 2], network="n", layer="l")
    >>> {k: v.tolist() for k, v in cluster_sums(ds).items() if k != "count"}
    {'cluster_n': [2.0], 'cluster_count_sq': [10.0], 'cluster_count_n': [14.0], 'cluster_n_sq': [20.0], 'n': [6.0]}
    >>> cluster_sums(ba.make_dataset([1], 5, network="n", layer="l")) is None
    True
    """
    count = ds["count"].values.astype(np.float64)
    n = ds["n"].values.astype(np.float64)
    if "cluster_n" in ds.data_vars:
        sums = {name: ds[name].values.astype(np.float64) for name in _SUM_NAMES}
    else:
        clusters = event_clusters(ds)
        if clusters is None:
            return None
        if is_lazy(ds):
            totals = reduce_blocks(ds, partial(_block_cluster_sums, clusters=clusters))
            sums = {name: totals[i].astype(np.float64) for i, name in enumerate(_SUM_NAMES)}
        else:
            c, t = cluster_counts(ds["fired"].values, clusters)
            sums = {name: v.astype(np.float64) for name, v in input_count_sums(c, t).items()
                    if name in _SUM_NAMES}
    if not (sums["cluster_n"] < n).any():
        return None
    sums["count"], sums["n"] = count, n
    return sums


def _block_counts(block: EventBlock, events: np.ndarray,
                  clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-input counts ``c`` (input, unit) and events ``t`` of the whole inputs of a block."""
    if block.inputs is None:
        raise DatasetError("input: a block of clustered events without its inputs")
    return cluster_counts(events, clusters[block.events] - block.inputs.start)


def _block_cluster_sums(block: EventBlock, events: np.ndarray, *,
                        clusters: np.ndarray) -> np.ndarray:
    """The sums of :data:`_SUM_NAMES` over the inputs of one block, (4, unit) int64."""
    c, t = _block_counts(block, events, clusters)
    sums = input_count_sums(c, t)
    return np.stack([np.asarray(sums[name], dtype=np.int64) for name in _SUM_NAMES])


def _block_prefix(values: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total of ``values`` (rows, ...) over its rows, and its running sums after ``points`` rows.

    ``points``: ascending, distinct, in ``1 .. rows``. Sums of the segments between the
    points (int64), not a running sum of every row.
    """
    if values.dtype == bool:
        values = values.view(np.uint8)
    edges = np.r_[0, points[points < len(values)]].astype(np.int64)
    running = np.cumsum(np.add.reduceat(values, edges, axis=0, dtype=np.int64), axis=0)
    return running[-1], running[np.searchsorted(edges, points) - 1]


def _running_sums(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Running sums at the grid points from per-block ``(total, running within the block)``.

    The blocks are in order and each holds the grid points that fall in it, so the running
    sum at a point is the totals of the blocks before it plus its block's own.
    """
    before = np.zeros_like(parts[0][0])
    out = []
    for total, within in parts:
        out.append(within + before)
        before = before + total
    return np.concatenate(out, axis=0)


def _block_event_prefix(block: EventBlock, events: np.ndarray, *,
                        grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fired counts per unit over the block, and over the first ``g`` events at its grid points."""
    lo, hi = block.events.start, block.events.stop
    local = grid[(grid > lo) & (grid <= hi)] - lo
    return _block_prefix(events, local)


def _block_cluster_prefix(block: EventBlock, events: np.ndarray, *, clusters: np.ndarray,
                          grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`_block_event_prefix` over inputs, of ``[c, c**2, c t, t, t**2]``.

    Returns the block's totals (3 unit + 2,) and the running sums (points, 3 unit + 2) at
    the grid points (numbers of inputs) that fall in the block, all int64.
    """
    c, t = _block_counts(block, events, clusters)
    values = np.concatenate([c, c * c, c * t[:, None], t[:, None], (t * t)[:, None]], axis=1)
    lo, hi = block.inputs.start, block.inputs.stop
    local = grid[(grid > lo) & (grid <= hi)] - lo
    return _block_prefix(values, local)


def _residual_sq(sums: dict[str, np.ndarray], p: np.ndarray) -> np.ndarray:
    """``sum_i (c_i - p t_i)**2`` per unit from the cluster sums (:func:`cluster_residual_sq`)."""
    return cluster_residual_sq(sums["cluster_count_sq"], sums["cluster_count_n"],
                               sums["cluster_n_sq"], p)


def _layer_index(ds: xr.Dataset) -> np.ndarray:
    """The (network, layer[, epoch]) group of each unit, as integer codes."""
    keys = ds["network"].values.astype(str).astype(object) + "/" + ds["layer"].values.astype(str)
    if "epoch" in ds.coords and ds["epoch"].dims == ("unit",):
        keys = keys + "@" + ds["epoch"].values.astype(str)
    return pd.factorize(keys, sort=False)[0].astype(np.int64)


def cluster_variances(ds: xr.Dataset) -> dict[str, np.ndarray] | None:
    """Per unit, the cluster-robust and the binomial variance of the count, or None.

    ``var = I / (I - 1) sum_i (c_i - p t_i)**2`` (0 with one input) and ``binom = n p (1 - p)``
    with ``p = count / n``, from :func:`cluster_sums`; also ``p``, ``clustered`` (some input
    holds several of the unit's events) and ``informative`` (clustered, ``I >= 2`` and
    ``0 < p < 1``: the unit's own ratio ``var / binom`` is defined). The design effects of
    :func:`design_effect` and of the clustered model
    (:func:`bayesactiv.bayes.sufficient.design_effects`) are ratios of these.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> ds = ba.data.from_input_counts(np.array([[4], [0]]), [4, 4], network="n", layer="l")
    >>> {k: v.tolist() for k, v in cluster_variances(ds).items() if k in ("var", "binom")}
    {'var': [16.0], 'binom': [2.0]}
    """
    return _variances(cluster_sums(ds))


def _variances(sums: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
    """:func:`cluster_variances` from the cluster sums (None: not clustered)."""
    if sums is None:
        return None
    n, inputs = sums["n"], sums["cluster_n"]
    p = np.divide(sums["count"], n, out=np.zeros_like(n), where=n > 0)
    var = np.where(inputs > 1, inputs / np.maximum(inputs - 1, 1) * _residual_sq(sums, p), 0.0)
    binom = n * p * (1 - p)
    clustered = inputs < n
    return {"var": var, "binom": binom, "p": p, "clustered": clustered,
            "informative": clustered & (binom > 0) & (inputs > 1)}


def design_effect(ds: xr.Dataset) -> np.ndarray:
    r"""Per-unit design effect of clustered events: how much less an event tells than an input.

    For unit ``u`` with per-input counts :math:`c_i` of :math:`t_i` events over
    :math:`I` inputs and :math:`\hat p = ` ``count / n``, the cluster-robust
    (sandwich) variance of the total count is
    :math:`V = \frac{I}{I-1} \sum_i (c_i - \hat p t_i)^2`, computed from the cluster
    sums (:func:`cluster_sums`), and the design effect is its ratio to the binomial
    variance, :math:`d = V / (n \hat p (1 - \hat p))` (Rao and Scott 1992; for a
    beta-binomial over inputs of ``t`` events each, :math:`d \approx 1 + (t-1)/(\phi+1)`).
    It is the design effect of the clustered model's effective counts, here *unpooled*:
    a unit's own :math:`d` is used whenever it is defined (:math:`I \ge 2` and
    :math:`0 < \hat p < 1`); a unit that never or always fired takes its layer's
    :math:`d` (ratio of the sums of :math:`V` and of the binomial variances over the
    layer's units with a defined one, 1 if none). Values are floored at 1: clustered
    events never count as more than independent ones. Units whose events are not
    clustered (one event per input, or no cluster information) get exactly 1.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.

    Returns
    -------
    numpy.ndarray of float64, shape (unit,)

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> c = np.array([[8, 0], [0, 1], [8, 1], [0, 0]])  # unit 0 fires in bursts, unit 1 alone
    >>> ds = ba.data.from_input_counts(c, [8, 8, 8, 8], network="lm", layer="mlp")
    >>> design_effect(ds).round(2).tolist()
    [10.67, 1.0]
    """
    return _design_effect(ds, cluster_sums(ds))


def _design_effect(ds: xr.Dataset, sums: dict[str, np.ndarray] | None) -> np.ndarray:
    """:func:`design_effect` from the cluster sums of ``ds`` (None: not clustered)."""
    k = ds.sizes["unit"]
    d = np.ones(k)
    cv = _variances(sums)
    if cv is None:
        return d
    var, binom, is_clustered, informative = (cv[k] for k in ("var", "binom", "clustered",
                                                             "informative"))
    layer = _layer_index(ds)
    n_layers = int(layer.max(initial=-1)) + 1
    v_g = np.bincount(layer[informative], weights=var[informative], minlength=n_layers)
    b_g = np.bincount(layer[informative], weights=binom[informative], minlength=n_layers)
    d_layer = np.divide(v_g, b_g, out=np.ones(n_layers), where=b_g > 0)[layer]
    own = np.divide(var, binom, out=np.zeros_like(var), where=informative)
    d[is_clustered] = np.maximum(np.where(informative, own, d_layer)[is_clustered], 1.0)
    return d


def _events_note(ds: xr.Dataset, d: np.ndarray, cluster_robust: bool, clustered: bool) -> str:
    """``attrs["events"]``: how the events of ``ds`` were treated, in words."""
    if not clustered:
        return "one event per input: events are independent inputs"
    word = event_word(ds)
    if word == "inputs":
        word = "events"
    if cluster_robust:
        return (f"{word} clustered by input: standard errors and intervals widened by each "
                f"unit's design effect (effective events n / d; median d = {np.median(d):.3g})")
    return (f"{word} clustered by input, treated as independent (cluster_robust=False): "
            "the binomial standard errors and intervals are too narrow")


# ----------------------------------------------------------------------------- Monte Carlo


def monte_carlo(
    ds: xr.Dataset,
    *,
    group_by: Sequence[str] | str | None = BY_LAYER,
    cluster_robust: bool = True,
) -> xr.Dataset:
    """Monte Carlo estimate of each unit's firing probability, with its standard error.

    ``estimate = count / n`` estimates P(activation > threshold) over the input
    distribution; ``standard_error = sqrt(d p (1 - p) / n)`` is its binomial standard
    error evaluated at the estimate (so it is 0 for a unit that never or always fired),
    times the square root of the design effect ``d`` (:func:`design_effect`).

    For dense units (one event per input) ``d = 1``. For clustered events (tokens,
    positions: several events per input) the binomial error, which treats the events
    as independent, is too small; with ``cluster_robust`` (default) ``d`` is the unit's
    design effect, and the standard error is then the cluster-robust (sandwich) one of
    the ratio estimator over inputs, ``sqrt(V) / n`` (floored at the binomial one).
    ``attrs["events"]`` says which was done.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset (needs only ``count`` and ``n``, and for clustered events
        the ``cluster_*`` statistics or ``fired`` with its ``input`` coordinate).
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`group_layout`).
    cluster_robust : bool
        Widen the standard errors of clustered units by their design effect.

    Returns
    -------
    xarray.Dataset
        ``estimate``, ``standard_error``, ``count``, ``n`` over ``unit`` (and
        ``design_effect`` when some unit's events are clustered), and
        ``group_estimate`` (pooled ``sum count / sum n``) over ``group``.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> mc = ba.baselines.monte_carlo(ba.make_dataset([0, 5, 20], 20, network="n", layer="l"))
    >>> mc["estimate"].values.tolist()
    [0.0, 0.25, 1.0]
    """
    validate(ds)
    cluster_robust = _check_bool(cluster_robust, "cluster_robust")
    count = ds["count"].values.astype(np.float64)
    n = ds["n"].values.astype(np.float64)
    member, gcoords = group_layout(ds, group_by=group_by)
    p = proportion(count, n)
    sums = cluster_sums(ds)
    clustered = sums is not None
    d = _design_effect(ds, sums) if clustered and cluster_robust else np.ones(ds.sizes["unit"])
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(p * (1.0 - p) / n) if not clustered else np.sqrt(d * p * (1.0 - p) / n)
    with np.errstate(invalid="ignore", divide="ignore"):
        gest = (member * count).sum(axis=1) / (member * n).sum(axis=1)
    out = group_frame(ds, gcoords)
    out["estimate"] = ("unit", p)
    out["standard_error"] = ("unit", se)
    out["count"] = ds["count"]
    out["n"] = ds["n"]
    if clustered:
        out["design_effect"] = ("unit", d)
    out["group_estimate"] = ("group", gest)
    out.attrs.update(method="monte carlo", threshold_rule=ds.attrs.get("threshold_rule", ""),
                     events=_events_note(ds, d, cluster_robust, clustered))
    return out


def _grid(total: int, n_points: int) -> np.ndarray:
    """About ``n_points`` log-spaced distinct integers from 1 to ``total`` (``total`` included)."""
    grid = np.unique(np.round(np.geomspace(1, total, n_points)).astype(np.int64))
    return grid[(grid >= 1) & (grid <= total)]


def _cluster_curve(
    ds: xr.Dataset, clusters: np.ndarray, n_points: int, cluster_robust: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The curve over the first ``j`` inputs: events, inputs, estimates and standard errors.

    With ``cluster_robust`` the standard error of the ratio estimator ``C_j / T_j`` over
    the ``j`` inputs is the cluster-robust one, ``sqrt(j / (j - 1) sum_i (c_i - p t_i)**2)
    / T_j``, floored at the binomial ``sqrt(p (1 - p) / T_j)``; NaN at ``j = 1``.
    """
    j = _grid(int(clusters.max(initial=-1)) + 1, n_points)
    if is_lazy(ds):  # running sums block by block: the same integers
        parts = map_blocks(ds, partial(_block_cluster_prefix, clusters=clusters, grid=j))
        run = _running_sums(parts).astype(np.float64)
        k = ds.sizes["unit"]
        big_c, big_t = run[:, :k], run[:, 3 * k:3 * k + 1]
        sums = {"cluster_count_sq": run[:, k:2 * k], "cluster_count_n": run[:, 2 * k:3 * k],
                "cluster_n_sq": run[:, 3 * k + 1:]}
    else:
        c, t = cluster_counts(ds["fired"].values, clusters)
        c = c.astype(np.float64)
        t = t.astype(np.float64)
        big_c = np.cumsum(c, axis=0)[j - 1]
        big_t = np.cumsum(t)[j - 1][:, None]
        sums = {"cluster_count_sq": np.cumsum(c * c, axis=0)[j - 1],
                "cluster_count_n": np.cumsum(c * t[:, None], axis=0)[j - 1],
                "cluster_n_sq": np.cumsum(t * t)[j - 1][:, None]}
    p = big_c / big_t
    binom = p * (1.0 - p) / big_t
    if not cluster_robust:
        return big_t[:, 0].astype(np.int64), j, p, np.sqrt(binom)
    jj = j[:, None].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        robust = jj / (jj - 1.0) * _residual_sq(sums, p) / big_t**2
    se = np.where(jj > 1, np.sqrt(np.maximum(robust, binom)), np.nan)
    return big_t[:, 0].astype(np.int64), j, p, se


def monte_carlo_curve(
    ds: xr.Dataset,
    n_points: int = 40,
    *,
    group_by: Sequence[str] | str | None = BY_LAYER,
    cluster_robust: bool = True,
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

    Clustered events (several events per input: tokens, positions). The binomial
    error treats the events as independent, which they are not. When ``fired`` has an
    ``input`` coordinate, the grid is made of input boundaries: the estimate from the
    first ``j`` inputs (``n_samples`` their events, coordinate ``n_inputs``), and with
    ``cluster_robust`` (default) the standard error is the cluster-robust one of the
    ratio estimator over those inputs,
    ``sqrt(j / (j - 1) sum_i (c_i - p t_i)**2) / sum_i t_i``, floored at the binomial
    one (NaN at one input: the spread between inputs is not estimable from one).
    Without the inputs of the events (only ``window_count`` and the ``cluster_*``
    statistics), every point's binomial error is widened by the design effect of all
    events (:func:`design_effect`), an approximation. ``attrs["standard_error"]``
    says which error was computed.

    A dask-backed ``fired`` (events out of core) is read one block of whole inputs at a
    time; the running sums at the grid points are carried from block to block, and are
    the same integers as in memory.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired`` or ``window_count``.
    n_points : int
        Approximate number of grid points (>= 2).
    group_by : sequence of str or str
        Keys of the aggregate groups (see :func:`group_layout`).
    cluster_robust : bool
        For clustered events, compute cluster-robust standard errors (False: the
        binomial ones, treating events as independent).

    Returns
    -------
    xarray.Dataset
        ``estimate``, ``standard_error`` over (``n_samples``, ``unit``);
        ``group_estimate``, ``group_standard_error`` over (``n_samples``, ``group``);
        attrs ``source`` and ``standard_error``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> fired = np.random.default_rng(0).random((500, 3)) < 0.3
    >>> ds = ba.make_dataset(fired.sum(0), 500, network="n", layer="l", fired=fired)
    >>> curve = ba.baselines.monte_carlo_curve(ds, n_points=10)
    >>> int(curve["n_samples"][-1])
    500
    >>> tokens = ds.assign_coords(input=("sample", np.repeat(np.arange(50), 10)))
    >>> curve = ba.baselines.monte_carlo_curve(tokens, n_points=10)
    >>> int(curve["n_inputs"][-1]), curve.attrs["standard_error"][:14]
    (50, 'cluster-robust')
    """
    validate(ds)
    n_points = check_int(n_points, "n_points", minimum=2)
    cluster_robust = _check_bool(cluster_robust, "cluster_robust")
    member, gcoords = group_layout(ds, group_by=group_by)
    clusters = event_clusters(ds)
    inputs = None
    note = "binomial sqrt(p (1 - p) / m): events are independent inputs"
    if clusters is not None:
        grid, inputs, p, se = _cluster_curve(ds, clusters, n_points, cluster_robust)
        source = "fired (whole inputs)"
        note = ("cluster-robust over the first inputs (variance of the ratio estimator over "
                "inputs)" if cluster_robust else
                "binomial sqrt(p (1 - p) / m): treats clustered events as independent "
                "(cluster_robust=False), too small")
    else:
        if "fired" in ds.data_vars and is_lazy(ds):
            grid = _grid(ds.sizes["sample"], n_points)
            blocks = event_blocks(ds.drop_vars("input", errors="ignore"))
            counts = _running_sums(map_blocks(ds, partial(_block_event_prefix, grid=grid),
                                              blocks=blocks))
            source = "fired"
        elif "fired" in ds.data_vars:
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
        if cluster_sums(ds) is not None:
            if cluster_robust:
                se = se * np.sqrt(design_effect(ds))[None, :]
                note = ("binomial times the square root of each unit's design effect over all "
                        "events (the inputs of the events are not kept; approximate)")
            else:
                note = ("binomial sqrt(p (1 - p) / m): treats clustered events as independent "
                        "(cluster_robust=False), too small")
    out = group_frame(ds, gcoords)
    out = out.assign_coords(n_samples=("n_samples", grid))
    if inputs is not None:
        out = out.assign_coords(n_inputs=("n_samples", inputs))
    out["estimate"] = (("n_samples", "unit"), p)
    out["standard_error"] = (("n_samples", "unit"), se)
    k = member.sum(axis=1)
    out["group_estimate"] = (("n_samples", "group"), (p @ member.T) / k)
    out["group_standard_error"] = (("n_samples", "group"), np.sqrt((se**2 @ member.T) / k))
    out.attrs.update(method="monte carlo curve", source=source, standard_error=note)
    return out


# ----------------------------------------------------------------------------- intervals


def intervals(
    ds: xr.Dataset,
    method: Literal["wald", "wilson", "jeffreys", "clopper-pearson"] = "wilson",
    confidence_level: float = 0.95,
    *,
    cluster_robust: bool = True,
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

    All four are binomial intervals: they treat the ``n`` events as independent
    trials. That holds for dense units (one event per input). For clustered events
    (tokens of a sequence, positions of a convolution: several events per input) it
    does not, and the plain intervals are too narrow. With ``cluster_robust``
    (default) the intervals of clustered units are computed from the effective count
    :math:`c/d` of the effective events :math:`n/d`, :math:`d` the unit's design
    effect (:func:`design_effect`; Rao and Scott's adjustment, the one the clustered
    model uses); the estimate :math:`\hat p` is unchanged. Dense units have
    :math:`d = 1` and keep their intervals exactly. ``attrs["events"]`` says which
    was done.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    method : {"wald", "wilson", "jeffreys", "clopper-pearson"}
    confidence_level : float
    cluster_robust : bool
        Adjust clustered units by their design effect (False: the naive intervals,
        treating events as independent).

    Returns
    -------
    xarray.Dataset
        ``estimate``, ``low``, ``high``, ``width`` over ``unit`` (and ``design_effect``,
        ``n_effective`` when some unit's events are clustered); attrs ``method``,
        ``confidence_level``, ``events``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> ds = ba.make_dataset([0, 10], 20, network="n", layer="l")
    >>> ci = ba.baselines.intervals(ds, "wald")
    >>> ci["width"].values.round(3).tolist()
    [0.0, 0.438]
    >>> c = np.array([[8], [0], [8], [0], [4], [4]])  # bursts of tokens: 6 inputs of 8
    >>> tokens = ba.data.from_input_counts(c, [8] * 6, network="n", layer="l")
    >>> ci = ba.baselines.intervals(tokens, "wald")
    >>> round(float(ci["design_effect"][0]), 2), ci["width"].values.round(3).tolist()
    (6.4, [0.716])
    """
    validate(ds)
    method = check_choice(method, "method", _INTERVAL_METHODS)
    level = check_prob(confidence_level, "confidence_level")
    cluster_robust = _check_bool(cluster_robust, "cluster_robust")
    alpha = 1.0 - level
    c = ds["count"].values.astype(np.float64)
    n = ds["n"].values.astype(np.float64)
    p = proportion(c, n)
    sums = cluster_sums(ds)
    clustered = sums is not None
    d = _design_effect(ds, sums) if clustered and cluster_robust else np.ones(ds.sizes["unit"])
    if clustered:
        c, n = c / d, n / d
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
            low = np.where(c > 0, special.betaincinv(np.where(c > 0, c, 1.0), n - c + 1,
                                                     alpha / 2), 0.0)
            high = np.where(
                c < n, special.betaincinv(c + 1, np.where(c < n, n - c, 1.0), 1 - alpha / 2), 1.0
            )
    low = np.where(n > 0, low, np.nan)
    high = np.where(n > 0, high, np.nan)
    out = unit_frame(ds)
    out["estimate"] = ("unit", p)
    out["low"] = ("unit", low)
    out["high"] = ("unit", high)
    out["width"] = ("unit", high - low)
    if clustered:
        out["design_effect"] = ("unit", d)
        out["n_effective"] = ("unit", n)
    out.attrs.update(method=method, confidence_level=level,
                     events=_events_note(ds, d, cluster_robust, clustered))
    return out
