"""Record how the hidden units of any PyTorch network fire, streaming O(units) statistics.

:func:`record` hooks modules of a :class:`torch.nn.Module`, runs the inputs through
it batch by batch under :func:`torch.no_grad` and eval mode, and reduces every batch
on the device to the sufficient statistics of the activation-dataset contract
(:mod:`bayesactiv.data.contract`): ``count``, ``n``, ``window_count``, optional raw ``fired``
events, and streamed per-unit summaries of the raw activations (min, max, moments,
zeros, top-k events) plus a per-layer histogram. Memory is O(units), not
O(events x units), unless ``keep_events=True``. :func:`capture` returns the raw
activations of one layer, event by event, through the same hook, event rules and
mode handling (the unit view re-runs a network with it).

What is an event
----------------
* ``[batch, features]`` output: a unit is a feature, an event is an input.
* ``[batch, channels, *positions]`` output (rank >= 4, e.g. a 2-d convolution): a unit
  is a channel. With ``spatial="per_position"`` (the default) every (input, position)
  pair is an event, input-major, and the input is the events' cluster. With
  ``spatial="any"`` an event is an input and its activation is the channel's maximum
  over positions, so the channel fired for an input when it fired at any position.
* ``[batch, sequence, features]`` output (rank 3): a unit is a feature and an event
  is a token (input-major), the input being the tokens' cluster; with an attention
  mask (mapping batches), padding tokens are not events. A 1-d convolution's
  ``[batch, channels, length]`` is therefore read as tokens; pass
  ``output=lambda t: t.unsqueeze(-1)`` to read it as channels over positions instead.

Clustered events
----------------
Tokens and positions of one input share its context: they are not independent
trials. For such layers the dataset also carries the per-input (cluster) sums of the
contract (``cluster_n``, ``cluster_fired``, ``cluster_count_sq``, ``cluster_count_n``,
``cluster_n_sq``), streamed in O(units) memory, which the default model of
:func:`bayesactiv.fit` and the bootstrap use. ``cluster_fired / cluster_n`` is the
fraction of inputs in which a unit fired anywhere, the ``spatial="any"`` view, so a
per-position recording holds both.

Why ``per_position`` is the default: after a batch norm and a ReLU nearly every
channel of a convolution fires *somewhere* in every input, so under ``"any"`` a
layer's firing is 1 for every channel and carries no information, while the
fraction of positions at which a channel fires does; the clustered model keeps its
intervals honest.

The steps live in their own modules: the threshold rules and their calibration
statistics in :mod:`~bayesactiv.recording.rules`, the inputs and layers in
:mod:`~bayesactiv.recording.inputs`, the forward hooks in
:mod:`~bayesactiv.recording.hooks`, the streaming reducer in
:mod:`~bayesactiv.recording.reducer` (its summaries in
:mod:`~bayesactiv.recording.summaries`) and its compiled CPU kernels in
:mod:`~bayesactiv.recording.kernels`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from xarray.indexes import PandasIndex

from bayesactiv.data.contract import (
    CLUSTER_VARS,
    LAYER_CLUSTER_VARS,
    dense_cluster_stats,
    layer_unit_ids,
    unit_dataset_parts,
    validate,
)
from bayesactiv.data.files import EventStream, check_save_path, open_dataset, save
from bayesactiv.recording.distributed import (
    gather_and_merge,
    process_group,
    reduce_count,
    reduce_extremes,
    reduce_histogram,
    reduce_quantile_buffer,
)
from bayesactiv.recording.hooks import inference, run_pass
from bayesactiv.recording.inputs import (
    Batches,
    batch_length,
    check_module,
    check_spatial,
    module_dtype,
    resolve_layers,
    unit_indices,
)
from bayesactiv.recording.reducer import LayerReducer
from bayesactiv.recording.rules import (
    Calibration,
    Fixed,
    FractionOfMax,
    Quantile,
    ThresholdRule,
    as_rule,
    histogram_bins,
    quantile_finish,
    quantile_plan,
)

__all__ = ["Fixed", "FractionOfMax", "Quantile", "ThresholdRule", "capture",
           "default_network_name", "record"]


def default_network_name(module: torch.nn.Module) -> str:
    """The name :func:`record` stores in the ``network`` coordinate when none is given.

    The module's ``bayesactiv_network`` attribute when it has one (the reference
    networks of :func:`bayesactiv.zoo.load` carry their zoo name there), else the
    name of its class. The command line uses the same rule.

    Examples
    --------
    >>> import torch
    >>> from bayesactiv.recording.recorder import default_network_name
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    >>> default_network_name(net)
    'Sequential'
    >>> net.bayesactiv_network = "my-net"
    >>> default_network_name(net)
    'my-net'
    """
    name = getattr(module, "bayesactiv_network", None)
    return type(module).__name__ if name is None else str(name)



def _check_finite(name: str, lo: torch.Tensor | np.ndarray, hi: torch.Tensor | np.ndarray) -> None:
    # on the host: the O(units) copy costs less than the torch calls on a few hundred values
    bad = ~(np.isfinite(_host(lo)) & np.isfinite(_host(hi)))
    if bad.any():
        units = np.flatnonzero(bad).tolist()
        more = f" and {len(units) - 10} more" if len(units) > 10 else ""
        raise ValueError(f"layer {name!r}: NaN or infinite activations in units {units[:10]}{more}")


# ---------------------------------------------------------------- record


def record(
    module: torch.nn.Module,
    inputs: Any,
    layers: str | Sequence[str],
    *,
    threshold: float | ThresholdRule = 0.0,
    window_size: int | None = None,
    keep_events: bool = False,
    network: str | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    spatial: str = "per_position",
    output: int | str | Callable[[Any], torch.Tensor] | None = None,
    topk: int = 10,
    hist_bins: int = 64,
    hist_range: tuple[float, float] | None = None,
    labels: Any = None,
    summaries: bool = True,
    attention_mask: str | None = "attention_mask",
    store: str | os.PathLike | None = None,
) -> xr.Dataset:
    """Record how the units of chosen layers of a PyTorch network fire.

    Parameters
    ----------
    module : torch.nn.Module
        Any network. It runs under :func:`torch.no_grad` in eval mode; the training
        mode of every submodule is restored and every hook removed afterwards, also
        when an exception is raised.
    inputs : torch.Tensor, numpy.ndarray, mapping or iterable
        A tensor or array (split into batches of ``batch_size``); a mapping of tensors
        over all inputs, such as a tokenizer's output (split likewise; each batch is
        passed as keyword arguments, ``module(**batch)``); or an iterable of batches such
        as a DataLoader or a list, a batch being a tensor, ``(x, y)`` with ``y`` the
        ``label`` of its inputs, or a mapping (a Hugging Face style batch).
    layers : str or sequence of str
        Module names as in ``module.named_modules()``; glob patterns (``"fc*"``) allowed.
    threshold : float or Fixed or FractionOfMax or Quantile
        When a unit fires: a number ``t`` means ``activation > t``. The rules that
        need a statistic of the whole recording run calibration passes first, and
        need re-iterable inputs.
    window_size : int, optional
        Record ``window_count``: fired counts in consecutive blocks of this many
        events (complete windows only). When layers see different numbers of events,
        only the windows complete in every layer are kept.
    keep_events : bool
        Keep the raw ``fired`` events (sample x unit bool matrix; all layers must then
        see the same number of events).
    network : str, optional
        Name stored in the ``network`` coordinate; default :func:`default_network_name`
        (the module's ``bayesactiv_network`` attribute, set on the reference networks by
        :func:`bayesactiv.zoo.load`, else its class name).
    batch_size : int, optional
        Batch size for a tensor or array input (default 256).
    device : str or torch.device, optional
        Where the inputs go and the reductions happen; defaults to the device of the
        module's parameters. The module must already be there.
    progress : bool
        Show a tqdm progress bar.
    spatial : {"per_position", "any"}
        Events of a convolution channel (outputs of rank >= 4): ``"per_position"`` (the
        default), one event per input and position, clustered by input; ``"any"``, one
        event per input, fired when the channel fired at any position (its activation is
        the maximum over positions).
    output : int, str or callable, optional
        Which tensor to take from a layer returning a tuple (index) or dict (key);
        a callable maps every hooked output to a tensor.
    topk : int
        Keep each unit's ``topk`` most activating events (``topk_sample``, ``topk_value``).
    hist_bins : int
        Bins of the per-layer activation histogram (even).
    hist_range : (float, float), optional
        Fixed edges ``(low, high)`` of every layer's histogram (values outside count in the
        end bins). Default: from the first batch, widened as later batches need. Shards of
        one recording need the same edges to :func:`bayesactiv.merge`.
    labels : array_like or str, optional
        A label per input, for a tensor or array input (or to override an iterable's);
        or, for mapping batches, the key that holds them (taken out of the batch before
        the module sees it, e.g. ``labels="labels"``).
    summaries : bool
        Stream moments, zero counts, top-k events and histograms (set False for a
        little more speed; ``act_min``/``act_max`` are always kept).
    attention_mask : str or None
        The key of mapping batches that marks real tokens (``[batch, sequence]``, 1 or
        True for a real token): masked (padding) tokens of ``[batch, sequence, features]``
        outputs are not events, so inputs of different lengths are counted right. None:
        every position is an event.
    store : str or path-like, optional
        A ``.zarr`` store to write the dataset to, atomically as :func:`bayesactiv.save`
        does (only over a store bayesactiv wrote). With ``keep_events=True`` the events are
        streamed there as they are recorded, bit-packed a chunk at a time (about 1 MiB),
        so memory stays flat in the number of inputs, and the dataset returned is the
        store opened lazily: ``fired`` is a dask array (:mod:`bayesactiv.data.lazy`). The
        per-event ``input`` and ``label`` coordinates are kept in memory (8 bytes an event).
        Not under torch.distributed.

    Under torch.distributed (an initialized process group of two or more ranks, as under
    ``torchrun``), each rank records the inputs it is given (its shard, e.g. from a
    ``DistributedSampler``), and every rank returns the dataset of all ranks' inputs, in
    rank order: thresholds that need the whole recording and the histogram edges are
    agreed before recording (:mod:`bayesactiv.recording.distributed`), and the ranks'
    datasets are merged exactly by :func:`bayesactiv.merge`.

    Returns
    -------
    xarray.Dataset
        A validated activation dataset (see :mod:`bayesactiv.data.contract`) with, besides
        ``count``, ``n``, the per-unit ``threshold`` used and, when asked,
        ``window_count`` and ``fired``: ``act_min``, ``act_max``, ``act_mean``,
        ``act_var`` (ddof=0), ``act_skewness``, ``act_kurtosis`` (Fisher excess; NaN for
        a constant unit), ``act_zero``, ``topk_sample``/``topk_value`` and
        ``hist_count``/``hist_edges``.

    Raises
    ------
    ValueError
        Unknown layer (close matches listed), glob matching nothing, empty inputs,
        NaN or infinite activations (layer and units named), a rule that does not
        apply to a layer, ``window_size < 1``, a one-shot iterator with a rule that
        needs calibration, a module whose parameters are on the ``meta`` device (no
        values: load the weights first).

    Examples
    --------
    >>> import torch, bayesactiv as ba
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> ds = ba.record(net, torch.randn(100, 4), ["1"], window_size=10, progress=False)
    >>> ds.sizes["unit"], int(ds["n"][0]), ds.sizes["window"]
    (8, 100, 10)
    """
    dev = check_module(module, device)
    if attention_mask is not None and not isinstance(attention_mask, str):
        raise TypeError(f"attention_mask: expected the key of the mask in mapping batches "
                        f"(str) or None, got {attention_mask!r}")
    rule = as_rule(threshold)
    window_size = _check_window_size(window_size)
    check_spatial(spatial)
    _check_summary_options(topk, hist_bins)
    hist_range = _check_hist_range(hist_range)
    network = _network_name(module, network)
    mods = dict(module.named_modules())  # (walked once for the whole call)
    names = _layer_names(module, layers, mods)
    batches = Batches(inputs, batch_size, labels, module_dtype(module))
    _check_reiterable(rule, batches)
    distributed = process_group() is not None
    target = _check_store(store, distributed)
    stream = EventStream(target) if target is not None and keep_events else None
    with inference(module), stream or contextlib.nullcontext():
        thresholds, hist_ranges, n_approx = _calibrate(
            module, batches, names, rule, dev, output, spatial, progress, attention_mask,
            distributed=distributed, global_range=distributed and summaries and hist_range is None)
        if hist_range is not None:
            hist_ranges = dict.fromkeys(names, hist_range)
        recs, seen = _recording_pass(module, batches, names, rule, thresholds, hist_ranges,
                                     window_size, keep_events, summaries, topk, hist_bins, dev,
                                     output, spatial, progress, attention_mask, mods, stream)
        results = {name: recs[name].result(recs[name].count.shape[0]) for name in names}
        events = (_event_coords(results, recs, names, *seen, stream=stream) if keep_events
                  else (None, None, None))
        ds = _assemble(results, recs, names, rule, window_size, network, module, spatial,
                       events, n_approx, summaries, mods)
        if stream is not None:
            return open_dataset(stream.finish(ds), lazy=True)
    if target is not None:
        return open_dataset(save(ds, target))
    return gather_and_merge(ds) if distributed else ds


def _check_store(store: Any, distributed: bool) -> Path | None:
    """The checked target of ``store=`` (before any recording), or None."""
    if store is None:
        return None
    if not isinstance(store, str | os.PathLike):
        raise TypeError(f"store: expected a path to a '.zarr' store, got {store!r}")
    path = Path(store)
    if path.suffix.lower() != ".zarr":
        raise ValueError(f"store: expected a '.zarr' path, got {str(path)!r}")
    if distributed:
        raise ValueError("store: not supported under torch.distributed; record without store= "
                         "(every rank gets the merged dataset) and save it from one rank")
    return check_save_path(path)


def _check_window_size(window_size: Any) -> int | None:
    if window_size is not None:
        if isinstance(window_size, bool) or not isinstance(window_size, (int, np.integer)):
            raise TypeError(f"window_size: expected an integer, got {window_size!r}")
        if window_size < 1:
            raise ValueError(f"window_size: must be >= 1, got {window_size}")
        window_size = int(window_size)
    return window_size


def _check_hist_range(hist_range: Any) -> tuple[float, float] | None:
    if hist_range is None:
        return None
    try:
        lo, hi = (float(v) for v in hist_range)
    except (TypeError, ValueError):
        raise ValueError(f"hist_range: expected two numbers (low, high), got {hist_range!r}"
                         ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"hist_range: expected finite low < high, got {hist_range!r}")
    return lo, hi


def _check_summary_options(topk: Any, hist_bins: Any) -> None:
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 0:
        raise ValueError(f"topk: must be a non-negative integer, got {topk!r}")
    if isinstance(hist_bins, bool) or not isinstance(hist_bins, int) or hist_bins < 2 \
            or hist_bins % 2:
        raise ValueError(f"hist_bins: must be an even integer >= 2, got {hist_bins!r}")


def _network_name(module: torch.nn.Module, network: str | None) -> str:
    network = default_network_name(module) if network is None else str(network)
    if not network or "/" in network:
        raise ValueError(f"network: must be a non-empty name without '/', got {network!r}")
    return network


def _layer_names(module: torch.nn.Module, layers: str | Sequence[str],
                 mods: dict[str, torch.nn.Module] | None = None) -> list[str]:
    names = resolve_layers(module, layers, mods)
    bad_names = [n for n in names if "/" in n]
    if bad_names:
        raise ValueError(f"layers: names {bad_names} contain '/', which unit ids cannot hold")
    return names


def _check_reiterable(rule: ThresholdRule, batches: Batches) -> None:
    if not isinstance(rule, Fixed) and not batches.reiterable:
        raise ValueError(f"inputs: the threshold rule {rule!r} needs a calibration pass over the "
                         f"inputs, but a one-shot iterator or generator can be read only once; "
                         f"pass a tensor, an array, a list or a DataLoader")


def _calibrate(module: torch.nn.Module, batches: Batches, names: list[str], rule: ThresholdRule,
               dev: torch.device, output: Any, spatial: str, progress: bool,
               mask_key: str | None = "attention_mask", distributed: bool = False,
               global_range: bool = False) -> tuple[dict[str, torch.Tensor | None], dict[str, tuple[float, float] | None], int]:
    """The calibration passes a rule needs: per-layer thresholds, histogram ranges, approximations.

    With ``distributed`` (a torch.distributed process group) the calibration statistics are
    reduced over the ranks (:mod:`bayesactiv.recording.distributed`); with
    ``global_range`` the min/max pass also runs for a Fixed rule, so that every rank's
    histograms get the same edges."""
    thresholds: dict[str, torch.Tensor | None] = dict.fromkeys(names)
    hist_ranges: dict[str, tuple[float, float] | None] = dict.fromkeys(names)
    n_approx = 0
    if isinstance(rule, Fixed) and not global_range:
        return thresholds, hist_ranges, n_approx
    cals = {name: Calibration() for name in names}

    def calibrate(name: str, a: torch.Tensor, kind: str, per_input: int) -> None:
        cals[name].update(a)

    run_pass(module, batches, names, dev, calibrate, output, spatial, progress,
             "calibrating (min/max)", mask_key=mask_key)
    if distributed:
        for cal in cals.values():
            cal.lo, cal.hi = reduce_extremes(cal.lo, cal.hi)
            cal.n = reduce_count(cal.n)
    for name, cal in cals.items():
        _check_finite(name, cal.lo, cal.hi)
        hist_ranges[name] = (float(cal.lo.min()), float(cal.hi.max()))
    if isinstance(rule, Fixed):
        return thresholds, hist_ranges, n_approx
    if isinstance(rule, FractionOfMax):
        for name, cal in cals.items():
            # A unit whose maximum is <= 0 never exceeds a fraction of it: it never fires
            # (for ReLU, a unit that is 0 on every input). Only a layer where this holds for
            # every unit is outside the rule's reach.
            if bool((cal.hi <= 0).all()):
                raise ValueError(
                    f"threshold: {rule!r} does not apply to layer {name!r}: every unit has "
                    f"maximum <= 0 over the recorded inputs, so a fraction of it is no firing "
                    f"threshold; use a Fixed or Quantile rule")
            thresholds[name] = rule.fraction * cal.hi.double()
    elif rule.q in (0.0, 1.0):
        for name, cal in cals.items():
            thresholds[name] = (cal.lo if rule.q == 0 else cal.hi).double()
    else:
        for cal in cals.values():
            cal.start_hist(histogram_bins(cal.lo.shape[0]))
        run_pass(module, batches, names, dev, calibrate, output, spatial, progress,
                 "calibrating (histogram)", mask_key=mask_key)
        for cal in cals.values():
            if distributed:
                reduce_histogram(cal)
            quantile_plan(cal, rule.q)
        run_pass(module, batches, names, dev, calibrate, output, spatial, progress,
                 "calibrating (quantile)", mask_key=mask_key)
        if distributed:
            for cal in cals.values():
                reduce_quantile_buffer(cal)
        for name, cal in cals.items():
            thresholds[name], approx = quantile_finish(cal)
            n_approx += approx
    return thresholds, hist_ranges, n_approx


def _recording_pass(module: torch.nn.Module, batches: Batches, names: list[str],
                    rule: ThresholdRule, thresholds: dict[str, torch.Tensor | None],
                    hist_ranges: dict[str, tuple[float, float] | None], window_size: int | None,
                    keep_events: bool, summaries: bool, topk: int, hist_bins: int,
                    dev: torch.device, output: Any, spatial: str, progress: bool,
                    mask_key: str | None = "attention_mask",
                    mods: dict[str, torch.nn.Module] | None = None,
                    stream: EventStream | None = None
                    ) -> tuple[dict[str, LayerReducer], tuple[list, list]]:
    """The recording pass: a reducer per layer, and the inputs and labels of every batch
    (``stream``: where the kept events go batch by batch, instead of staying in the reducers)."""
    fixed = rule.value if isinstance(rule, Fixed) else None
    recs = {name: LayerReducer(thresholds[name], window_size, keep_events, summaries, topk,
                               hist_bins, hist_ranges[name]) for name in names}
    inputs_seen: list[np.ndarray] = []
    labels_seen: list[np.ndarray | None] = []
    offset = {"inputs": 0}

    def handle(name: str, a: torch.Tensor, kind: str, per_input: int) -> None:
        rec = recs[name]
        if rec.thr is None:
            rec.first(a, fixed)
            rec.kind, rec.per_input = kind, per_input
        if a.shape[1] != rec.count.shape[0]:
            raise ValueError(f"layer {name!r}: {a.shape[1]} units in this batch, "
                             f"{rec.count.shape[0]} before")
        if keep_events:
            rec.events_per_batch.append(per_input if isinstance(per_input, int)
                                        else per_input.cpu().numpy())
        rec.update(a, per_input)

    def on_batch(x: Any, y: np.ndarray | None) -> None:
        size = batch_length(x)
        if stream is not None:  # the events of the batches before, complete by now
            _stream_events(stream, recs, names)
        if keep_events:
            labels_seen.append(None if y is None else np.asarray(y))
            inputs_seen.append(np.arange(offset["inputs"], offset["inputs"] + size))
        offset["inputs"] += size

    run_pass(module, batches, names, dev, handle, output, spatial, progress, "recording",
             on_batch, mask_key, mods)
    if stream is not None:
        _stream_events(stream, recs, names)
    for name, rec in recs.items():
        _check_finite(name, *rec.finite())
    return recs, (inputs_seen, labels_seen)


def _stream_events(stream: EventStream, recs: dict[str, LayerReducer], names: list[str]) -> None:
    """Move the events the layers' reducers hold to ``stream``, batch by batch, layers side by side."""
    pending = [recs[name].fired for name in names]
    for blocks in zip(*pending, strict=False):
        blocks = [b if isinstance(b, np.ndarray) else b.numpy() for b in blocks]
        _check_event_sizes({name: b.shape[0] for name, b in zip(names, blocks, strict=True)})
        stream.append(blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1))
    taken = min(len(p) for p in pending)
    if any(len(p) != taken for p in pending):  # a layer ran more often than another
        _check_event_sizes({name: recs[name].n for name in names})
    for p in pending:
        del p[:taken]


def _check_event_sizes(sizes: dict[str, int]) -> None:
    if len(set(sizes.values())) > 1:
        raise ValueError(f"keep_events: the layers see different numbers of events {sizes}; "
                         f"the fired matrix needs one event axis; record them separately, or "
                         f"pass spatial='any' (one event per input for convolutions)")


def _event_coords(results: dict[str, dict[str, Any]], recs: dict[str, LayerReducer],
                  names: list[str], inputs_seen: list[np.ndarray],
                  labels_seen: list[np.ndarray | None], stream: EventStream | None = None
                  ) -> tuple[Any, np.ndarray | None, np.ndarray]:
    """The kept ``fired`` events of every layer side by side (read lazily from ``stream`` when
    they were streamed there), their labels and inputs."""
    label = None
    _check_event_sizes({name: results[name]["n"] for name in names})
    if stream is not None:
        fired = stream.events(sum(results[name]["count"].shape[0] for name in names))
    else:
        fired = np.concatenate([results[name]["fired"] for name in names], axis=1)
    per_batch = [recs[name].events_per_batch for name in names]
    if any(len(p) != len(per_batch[0]) or not all(np.array_equal(a, b) for a, b in
                                                  zip(p, per_batch[0], strict=True))
           for p in per_batch):
        raise ValueError("keep_events: the layers' events do not line up (events per input "
                         "differ between layers); record them separately")
    reps = per_batch[0]
    input_coord = np.concatenate([np.repeat(ix, r) for ix, r in zip(inputs_seen, reps,
                                                                     strict=True)])
    if all(y is not None for y in labels_seen):
        parts = []
        for y, ix, r in zip(labels_seen, inputs_seen, reps, strict=True):
            y = np.asarray(y)
            if y.ndim != 1 or y.shape[0] != ix.shape[0]:
                raise ValueError(f"labels: expected one label per input, got shape {y.shape} "
                                 f"for a batch of {ix.shape[0]} inputs")
            parts.append(np.repeat(y, r))
        label = np.concatenate(parts)
    return fired, label, input_coord


def _assemble(results: dict[str, dict[str, Any]], recs: dict[str, LayerReducer], names: list[str],
              rule: ThresholdRule, window_size: int | None, network: str, module: torch.nn.Module,
              spatial: str, events: tuple, n_approx: int, summaries: bool,
              mods: dict[str, torch.nn.Module] | None = None) -> xr.Dataset:
    """The activation dataset of the layers' results, built (and validated) once."""
    units = [results[name]["count"].shape[0] for name in names]
    count = np.concatenate([results[name]["count"] for name in names]).astype(np.int64)
    n = np.concatenate([np.full(u, results[name]["n"], dtype=np.int64)
                        for name, u in zip(names, units, strict=True)])

    window_count = None
    if window_size is not None:
        n_win = min(results[name]["window_count"].shape[0] for name in names)
        window_count = np.concatenate([results[name]["window_count"][:n_win] for name in names],
                                      axis=1).astype(np.int64)
    fired, label, input_coord = events
    attrs = _attrs(recs, names, rule, network, module, spatial, n_approx, mods)
    data_vars, coords, attrs = unit_dataset_parts(
        count, n, _unit_coords(network, names, units), window_count=window_count,
        window_size=window_size, fired=fired, label=label, threshold_rule=rule.describe(),
        threshold_params=rule.params(), attrs=attrs)
    if input_coord is not None and attrs["spatial"] in ("per_position", "token", "mixed"):
        coords["input"] = ("sample", input_coord.astype(np.int64))
    per_unit = ["threshold", "act_min", "act_max"]
    if summaries:
        per_unit += ["act_mean", "act_var", "act_skewness", "act_kurtosis", "act_zero"]
    for var in per_unit:
        data_vars[var] = ("unit", _joined(results, names, var))
    if any("cluster_n" in results[name] for name in names):
        parts = [results[name] if "cluster_n" in results[name] else
                 dense_cluster_stats(results[name]["count"],
                                     np.full(u, results[name]["n"], dtype=np.int64))
                 for name, u in zip(names, units, strict=True)]
        for var in CLUSTER_VARS:
            data_vars[var] = ("unit", np.concatenate(
                [np.broadcast_to(p[var], (u,)) for p, u in zip(parts, units, strict=True)]
            ).astype(np.int64))
        for var in LAYER_CLUSTER_VARS:  # -1: not streamed (a dense layer)
            data_vars[var] = ("unit", np.concatenate(
                [p[var] if var in p else np.full(u, -1) for p, u in zip(parts, units, strict=True)]
            ).astype(np.int64))
    if summaries:
        data_vars["topk_sample"] = (("unit", "rank"), _joined(results, names, "topk_sample"))
        data_vars["topk_value"] = (("unit", "rank"), _joined(results, names, "topk_value"))
        data_vars["hist_count"] = (("hist_group", "hist_bin"),
                                   np.stack([results[name]["hist_count"] for name in names]))
        data_vars["hist_edges"] = (("hist_group", "hist_edge"),
                                   np.stack([results[name]["hist_edges"] for name in names]))
        groups = np.array([f"{network}/{name}" for name in names], dtype=object)
        coords["hist_group"] = _strings("hist_group", groups)
    return validate(_dataset(data_vars, coords, attrs))


def _unit_coords(network: str, names: list[str], units: list[int]) -> dict[str, Any]:
    """The coordinates on ``unit`` of the layers' units, as :func:`bayesactiv.data.contract.make_dataset` builds them
    (names as an array of str holds them: without trailing NUL characters); the ids of a
    layer's units are built once for all calls (:func:`layer_unit_ids`)."""
    net = network.rstrip("\x00")
    layers = [name.rstrip("\x00") for name in names]
    ids = np.concatenate([layer_unit_ids(net, layer, u)
                          for layer, u in zip(layers, units, strict=True)])
    k = ids.shape[0]
    return {
        "unit": _strings("unit", ids),
        "network": _strings("unit", np.full(k, net, dtype=object)),
        "layer": _strings("unit", np.repeat(np.array(layers, dtype=object), units)),
        "index": ("unit", np.concatenate([np.arange(u, dtype=np.int64) for u in units])),
    }


def _strings(dims: str, values: np.ndarray) -> xr.Variable:
    """A variable of an object array of str, as it is: xarray would otherwise pass it through
    pandas to look for dates and times, which costs more than building the whole dataset."""
    return xr.Variable(dims, values, fastpath=True)


def _dataset(data_vars: dict[str, Any], coords: dict[str, Any],
             attrs: dict[str, Any]) -> xr.Dataset:
    """``xr.Dataset(data_vars, coords=coords, attrs=attrs)``, the same dataset, built directly.

    Every coordinate on a dimension of its name gets its default (pandas) index as in the
    constructor; what the constructor does besides (aligning the variables on those
    indexes, merging duplicates) has nothing to do for the parts :func:`_assemble` builds:
    no variable is given twice and the data variables carry no indexes of their own."""
    variables = {name: _variable(v) for name, v in data_vars.items()}
    indexes: dict[str, PandasIndex] = {}
    for name, v in coords.items():
        var = _variable(v)
        if var.dims == (name,):
            if var.dtype == object:
                # the pandas index xarray makes of str objects (dtype object), made here
                # with its name (xarray copies it to set that) and its dtype named by type
                # (pandas looks the string "object" up among its extension dtypes)
                index = PandasIndex(pd.Index(var.values, dtype=_OBJECT, name=name), name,
                                    coord_dtype=_OBJECT)
            else:
                var = var.to_index_variable()
                index = PandasIndex.from_variables({name: var}, options={})
            index_vars = index.create_variables({name: var})
            indexes.update(dict.fromkeys(index_vars, index))
            variables.update(index_vars)
        else:
            variables[name] = var.to_base_variable()
    return xr.Dataset._construct_direct(variables, set(coords), attrs=dict(attrs) or None,
                                        indexes=indexes)


_OBJECT = np.dtype(object)


def _variable(v: tuple | xr.Variable) -> xr.Variable:
    """The variable ``xr.Dataset`` makes of ``(dims, data)``: a plain numpy array of numbers
    or booleans it takes as it is, so it is wrapped so (the constructor's type checks cost
    more than the rest of a small dataset); anything else goes through them."""
    if isinstance(v, xr.Variable):
        return v
    dims, data = v
    if type(data) is np.ndarray and data.dtype.kind in "biuf":
        return xr.Variable(dims, data, fastpath=True)
    return xr.Variable(dims, data)


def _host(values: torch.Tensor | np.ndarray) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else values.cpu().numpy()


def _joined(results: dict[str, dict[str, Any]], names: list[str], var: str) -> np.ndarray:
    """A variable of every layer, the layers' units one after the other."""
    return np.concatenate([results[name][var] for name in names])


def _attrs(recs: dict[str, LayerReducer], names: list[str], rule: ThresholdRule, network: str,
           module: torch.nn.Module, spatial: str, n_approx: int,
           mods: dict[str, torch.nn.Module] | None = None) -> dict[str, Any]:
    """The dataset's attributes: the layers' event kinds, the modules, provenance."""
    from bayesactiv.version import __version__
    kinds = {name: recs[name].kind for name in names}
    layer_spatial = {name: (spatial if k in ("any", "per_position") else
                            "token" if k == "token" else "none") for name, k in kinds.items()}
    distinct = sorted(set(layer_spatial.values()) - {"none"})
    spatial_attr = "none" if not distinct else distinct[0] if len(distinct) == 1 else "mixed"
    if mods is None:
        mods = dict(module.named_modules())
    attrs = {
        "spatial": spatial_attr,
        "layer_spatial": json.dumps(layer_spatial),
        "source": type(module).__name__,
        "network": network,
        "layer_modules": json.dumps({name: type(mods[name]).__name__ for name in names}),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "bayesactiv_version": __version__,
    }
    if isinstance(rule, Quantile):
        attrs["threshold_approximate_units"] = int(n_approx)
    return attrs


def capture(
    module: torch.nn.Module,
    inputs: Any,
    layer: str,
    *,
    units: Sequence[int] | None = None,
    spatial: str = "per_position",
    output: int | str | Callable[[Any], torch.Tensor] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    attention_mask: str | None = "attention_mask",
) -> np.ndarray:
    """The raw activations of one layer, event by event, exactly as :func:`record` sees them.

    The same hook, output selection, event rules (see the module notes: a feature
    per input, a feature per token of a ``[batch, sequence, features]`` output, a
    convolution channel per input or per position) and mode handling as
    :func:`record`: the network runs under :func:`torch.no_grad` in eval mode, and
    the training mode of every submodule is restored and the hook removed
    afterwards. Unlike :func:`record`, the result holds every activation, so its
    memory is O(events x units); choose ``units`` to keep a few.

    Parameters
    ----------
    module : torch.nn.Module
        Any network.
    inputs : torch.Tensor, numpy.ndarray or iterable
        As for :func:`record`.
    layer : str
        One module name as in ``module.named_modules()``.
    units : sequence of int, optional
        Unit indices within the layer (features, or channels of a convolution);
        default all.
    spatial, output, batch_size, device, progress, attention_mask
        As for :func:`record` (masked tokens are left out).

    Returns
    -------
    numpy.ndarray
        Shape ``(events, units)``, events in input order (input-major for tokens and
        positions); float32 or float64 as the layer computes (half precision upcast).

    Raises
    ------
    ValueError
        Unknown layer, a unit index outside the layer, empty inputs, a module on the
        ``meta`` device.

    Examples
    --------
    >>> import torch
    >>> from bayesactiv.recording.recorder import capture
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    >>> capture(net, torch.ones(5, 3), "1").shape
    (5, 4)
    >>> tokens = torch.ones(5, 7, 3)  # [batch, sequence, features]: a token is an event
    >>> capture(net, tokens, "1", units=[2]).shape
    (35, 1)
    """
    dev = check_module(module, device)
    check_spatial(spatial)
    if not isinstance(layer, str):
        raise TypeError(f"layer: expected one module name (str), got {layer!r}")
    names = resolve_layers(module, layer)
    if len(names) != 1:
        raise ValueError(f"layer: {layer!r} matches {len(names)} modules {names}; name one")
    columns = None if units is None else unit_indices(units)
    batches = Batches(inputs, batch_size, None, module_dtype(module))
    parts: list[torch.Tensor] = []

    def keep(name: str, a: torch.Tensor, kind: str, per_input: int) -> None:
        width = a.shape[1]
        if parts and width != parts[0].shape[1] and columns is None:
            raise ValueError(f"layer {name!r}: {width} units in this batch, "
                             f"{parts[0].shape[1]} before")
        if columns is None:
            parts.append(a.to("cpu", copy=True))
            return
        outside = [i for i in columns if i >= width]
        if outside:
            raise ValueError(f"units: layer {name!r} has {width} units, so index {outside[0]} "
                             f"is outside 0..{width - 1}")
        parts.append(a[:, columns].cpu())
    with inference(module):
        run_pass(module, batches, names, dev, keep, output, spatial, progress, "capturing",
                 mask_key=attention_mask)
    return torch.cat(parts).numpy()
