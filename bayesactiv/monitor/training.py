"""Counting firing on the training batches themselves, with no extra forward pass.

:class:`TrainingBatchCounter` hooks the chosen layers of a network while a block of
training runs (:meth:`bayesactiv.monitor.FiringMonitor.training_batches` opens one
around an epoch's loop). On every forward pass made while the network is in train mode,
each hook compares the layer's output, detached, with the threshold and sums the firing
events per unit on the layer's own device: one comparison and one sum per layer and
batch (and, for convolution positions and tokens, the per-input sums of the clustered
events), added to counts that stay on that device. The number of events comes from the
output's shape, so no batch waits for the device (no host synchronisation); the counts
are copied to the host once, when the block ends.

The hooks return nothing, so the outputs, the losses and the gradients are those of the
network without them; forward passes in eval mode (a validation loop, :func:`bayesactiv.record`
inside the block) are not counted. Events are those of :func:`bayesactiv.record`: a
feature per input of a ``[batch, features]`` output, a feature per token of a
``[batch, sequence, features]`` output (every position: the hooks see no attention mask),
a channel per position (``spatial="per_position"``) or per input (``spatial="any"``) of a
convolution. NaN activations count as not fired (they are not checked: that would wait
for the device at every batch).

Only a fixed threshold applies: the rules that need a statistic of a whole recording
(:class:`~bayesactiv.recording.rules.FractionOfMax`, :class:`~bayesactiv.recording.rules.Quantile`)
have no such pass here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import xarray as xr

from bayesactiv.data.contract import (
    CLUSTER_VARS,
    LAYER_CLUSTER_VARS,
    dense_cluster_stats,
    make_dataset,
    validate,
)
from bayesactiv.recording.hooks import select_output
from bayesactiv.recording.rules import Fixed, round_down

__all__ = ["TRAINING_SOURCE", "LayerCounter", "TrainingBatchCounter", "training_network"]

#: ``attrs["monitor_source"]`` of the counts of training batches (``"probe"`` for observe's).
TRAINING_SOURCE = "training_batches"


def training_network(network: str) -> str:
    """The ``network`` name under which the training-batch counts of ``network`` are stored.

    ``network + ":train"``, so that their unit ids (``mlp:train/relu1/0@3``) never collide
    with those of the probe's records (``mlp/relu1/0@3``) when both are combined.

    Examples
    --------
    >>> training_network("mlp")
    'mlp:train'
    """
    return f"{network}:train"


# ---------------------------------------------------------------- CPU kernels
# On the CPU, torch takes a comparison and a sum as two passes with a temporary between them
# (and its per-call costs dominate on a small layer); these compiled loops take one pass.


def _count_dense(x: np.ndarray, thr: float, count: np.ndarray) -> None:  # pragma: no cover
    """``count[u] += sum_i [x[i, u] > thr]`` over a ``[batch, units]`` array."""
    for i in range(x.shape[0]):
        for u in range(x.shape[1]):
            if x[i, u] > thr:
                count[u] += 1


def _count_any(x: np.ndarray, thr: float, count: np.ndarray) -> None:  # pragma: no cover
    """``count[c] += sum_i [any_p x[i, c, p] > thr]`` over a ``[batch, channels, positions]`` array."""
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            for p in range(x.shape[2]):
                if x[i, c, p] > thr:
                    count[c] += 1
                    break


def _count_clustered(x: np.ndarray, thr: float, units_last: bool, per_input: np.ndarray,
                     stats: np.ndarray, layer: np.ndarray) -> None:  # pragma: no cover
    """The sums of clustered events of a batch, ``x`` ``[batch, units, events]`` (or
    ``[batch, events, units]`` with ``units_last``): per unit (rows of ``stats``) the fired
    count, the inputs where it fired, ``sum_i c_i**2`` and ``sum_i c_i t_i``; for the layer
    ``sum_i C_i**2``, ``sum_i C_i t_i`` and ``sum_i C_i``."""
    units = x.shape[2] if units_last else x.shape[1]
    events = x.shape[1] if units_last else x.shape[2]
    for i in range(x.shape[0]):
        if units_last:
            for u in range(units):
                per_input[u] = 0
            for p in range(events):
                for u in range(units):
                    if x[i, p, u] > thr:
                        per_input[u] += 1
        else:
            for u in range(units):
                fired = 0
                for p in range(events):
                    if x[i, u, p] > thr:
                        fired += 1
                per_input[u] = fired
        total = 0
        for u in range(units):
            c = per_input[u]
            stats[0, u] += c
            if c > 0:
                stats[1, u] += 1
            stats[2, u] += c * c
            stats[3, u] += c * events
            total += c
        layer[0] += total * total
        layer[1] += total * events
        layer[2] += total


_KERNELS: dict[str, Any] = {}


def cpu_kernels() -> dict[str, Any] | None:
    """The compiled counting loops (numba, cached on disk where it can), or None without numba.

    Examples
    --------
    >>> import numpy as np
    >>> count = np.zeros(2, dtype=np.int64)
    >>> cpu_kernels()["dense"](np.array([[1.0, -1.0], [2.0, 0.5]]), 0.0, count)
    >>> count.tolist()
    [2, 1]
    """
    if "dense" not in _KERNELS:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba comes with pymc
            _KERNELS["dense"] = None
            return None

        def jit(fn: Callable) -> Callable:
            try:
                return numba.njit(cache=True, nogil=True)(fn)
            except (RuntimeError, OSError):  # pragma: no cover - no writable cache location
                return numba.njit(cache=False, nogil=True)(fn)

        _KERNELS.update(dense=jit(_count_dense), any=jit(_count_any),
                        clustered=jit(_count_clustered))
    return _KERNELS if _KERNELS["dense"] is not None else None


class LayerCounter:
    """The firing counts of one layer over training batches, kept on the layer's device.

    Parameters
    ----------
    name : str
        The layer's module name (for messages).
    threshold : float
        Fired means ``activation > threshold``.
    spatial : {"per_position", "any"}
        Events of a convolution channel, as for :func:`bayesactiv.record`.

    Examples
    --------
    >>> import torch
    >>> counter = LayerCounter("relu", 0.0, "per_position")
    >>> counter.update(torch.tensor([[1.0, -1.0], [2.0, 0.0]]))
    >>> counter.update(torch.tensor([[0.5, 3.0]]))
    >>> counter.result()["count"].tolist(), counter.n
    ([3, 1], 3)
    """

    def __init__(self, name: str, threshold: float, spatial: str):
        self.name = name
        self.threshold = float(threshold)
        self.spatial = spatial
        self.kind = ""
        self.n = 0  # events seen per unit (a Python int: known from the shapes)
        self.inputs = 0
        self.n_sq = 0  # sum over inputs of t_i**2
        self.count: torch.Tensor | np.ndarray | None = None
        self.kernels: dict[str, Any] | None = None
        self._thr: dict[torch.dtype, float] = {}

    def _threshold(self, dtype: torch.dtype) -> float:
        """The threshold rounded down to ``dtype``: ``a > it`` in ``dtype`` iff ``a > threshold``."""
        thr = self._thr.get(dtype)
        if thr is None:
            full = torch.tensor([self.threshold], dtype=torch.float64)
            thr = self._thr[dtype] = float(round_down(full, dtype)[0])
        return thr

    def _start(self, t: torch.Tensor, kind: str, units: int) -> None:
        self.kind = kind
        # on the CPU, float32/float64: the compiled loops on numpy views of the outputs
        self.kernels = (cpu_kernels() if t.device.type == "cpu"
                        and t.dtype in (torch.float32, torch.float64) else None)
        if self.kernels is not None:
            self.count = np.zeros(units, dtype=np.int64)
            if kind in ("per_position", "token"):
                self.stats = np.zeros((4, units), dtype=np.int64)
                self.layer_sums = np.zeros(3, dtype=np.int64)
                self.per_input = np.zeros(units, dtype=np.int64)
                self.count = self.stats[0]
            return
        zeros = torch.zeros(units, dtype=torch.int64, device=t.device)
        self.count = zeros
        if kind in ("per_position", "token"):
            self.stats = torch.zeros(4, units, dtype=torch.int64, device=t.device)
            self.layer_sums = torch.zeros(3, dtype=torch.int64, device=t.device)
            self.count = self.stats[0]

    def update(self, t: torch.Tensor) -> None:
        """Add the events of one layer output ``t`` (detached) to the counts."""
        if t.ndim < 2:
            raise ValueError(f"layer {self.name!r}: output of shape {tuple(t.shape)}; expected "
                             f"[batch, features], [batch, sequence, features] or "
                             f"[batch, channels, ...]")
        if not t.is_floating_point():
            raise TypeError(f"layer {self.name!r}: output dtype {t.dtype} is not floating point")
        if t.ndim == 2:
            kind, units = "dense", t.shape[1]
        elif t.ndim == 3:
            kind, units = "token", t.shape[2]
        else:
            kind, units = self.spatial, t.shape[1]
        if self.count is None:
            self._start(t, kind, units)
        elif units != self.count.shape[0] or kind != self.kind:
            raise ValueError(f"layer {self.name!r}: {units} units ({kind}) in this batch, "
                             f"{self.count.shape[0]} ({self.kind}) before")
        batch = t.shape[0]
        kernels = self.kernels
        if kernels is not None and t.device.type == "cpu" and t.dtype in (torch.float32,
                                                                           torch.float64):
            self._update_cpu(t, kind, batch, kernels)
            return
        if kernels is not None:
            raise ValueError(f"layer {self.name!r}: a {t.dtype} output on {t.device} after "
                             f"float CPU outputs; the layer's device or dtype changed inside "
                             f"the block")
        thr = self._threshold(t.dtype)
        if kind == "dense":
            self.count += (t > thr).sum(0)
            self.n += batch
            self.inputs += batch
            return
        if kind == "any":
            self.count += (t.flatten(2).amax(2) > thr).sum(0)
            self.n += batch
            self.inputs += batch
            return
        if kind == "token":
            per_input = t.shape[1]
            c = (t > thr).sum(1)  # [batch, units]: fired tokens per input
        else:
            flat = t.flatten(2)
            per_input = flat.shape[2]
            c = (flat > thr).sum(2)  # [batch, channels]: fired positions per input
        if per_input == 0:
            return
        layer_total = c.sum(1)  # [batch]: the layer's fired events per input
        self.stats += torch.stack([c.sum(0), (c > 0).sum(0), (c * c).sum(0),
                                   c.sum(0) * per_input])
        layer_sum = layer_total.sum()
        self.layer_sums += torch.stack([(layer_total * layer_total).sum(), layer_sum * per_input,
                                        layer_sum])
        self._count_events(batch, per_input)

    def _update_cpu(self, t: torch.Tensor, kind: str, batch: int, kernels: dict[str, Any]
                    ) -> None:
        thr = self._threshold(t.dtype)
        x = t.numpy()
        if kind == "dense":
            kernels["dense"](x, thr, self.count)
            self.n += batch
            self.inputs += batch
            return
        if kind == "token":
            per_input = x.shape[1]
            if per_input:
                kernels["clustered"](x, thr, True, self.per_input, self.stats, self.layer_sums)
        else:
            x = x.reshape(batch, x.shape[1], -1)
            if kind == "any":
                kernels["any"](x, thr, self.count)
                self.n += batch
                self.inputs += batch
                return
            per_input = x.shape[2]
            if per_input:
                kernels["clustered"](x, thr, False, self.per_input, self.stats, self.layer_sums)
        if per_input:
            self._count_events(batch, per_input)

    def _count_events(self, batch: int, per_input: int) -> None:
        self.n += batch * per_input
        self.inputs += batch
        self.n_sq += batch * per_input * per_input

    @property
    def clustered(self) -> bool:
        """Whether the layer's events come in clusters (tokens, convolution positions)."""
        return self.kind in ("per_position", "token")

    def result(self) -> dict[str, np.ndarray]:
        """The counts on the host: ``count`` and, for clustered events, the cluster sums."""
        if self.count is None:
            raise RuntimeError(f"layer {self.name!r}: no batch counted")

        def host(values: Any) -> np.ndarray:
            return values.copy() if isinstance(values, np.ndarray) else values.cpu().numpy()

        if not self.clustered:
            return {"count": host(self.count)}
        stats, layer = host(self.stats), host(self.layer_sums)
        units = stats.shape[1]
        return {
            "count": stats[0],
            "cluster_n": np.full(units, self.inputs, dtype=np.int64),
            "cluster_fired": stats[1],
            "cluster_count_sq": stats[2],
            "cluster_count_n": stats[3],
            "cluster_n_sq": np.full(units, self.n_sq, dtype=np.int64),
            "layer_count_sq": np.full(units, layer[0], dtype=np.int64),
            "layer_count_n": np.full(units, layer[1], dtype=np.int64),
            "layer_count": np.full(units, layer[2], dtype=np.int64),
        }


class TrainingBatchCounter:
    """Forward hooks that count firing on training batches while they are registered.

    Made by :meth:`bayesactiv.monitor.FiringMonitor.training_batches`, which registers the
    hooks when its block starts (:meth:`attach`) and removes them when it ends
    (:meth:`detach`); :attr:`dataset` holds the block's counts after a block that ended
    without an exception.

    Parameters
    ----------
    net : torch.nn.Module
        The network; a forward pass is counted while ``net.training`` is True.
    modules : dict of str to torch.nn.Module
        The layers to count, by name.
    threshold : Fixed
        The firing rule.
    spatial : {"per_position", "any"}
    output : int, str or callable, optional
        Which tensor of a layer's output to count, as for :func:`bayesactiv.record`.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    >>> counter = TrainingBatchCounter(net, {"1": net[1]}, Fixed(0.0), "per_position")
    >>> counter.attach()
    >>> _ = net(torch.ones(5, 3))
    >>> counter.detach()
    >>> counter.batches, counter.counters["1"].n
    (1, 5)
    """

    def __init__(self, net: torch.nn.Module, modules: dict[str, torch.nn.Module], threshold: Fixed,
                 spatial: str, output: Any = None):
        self.net = net
        self.modules = modules
        self.rule = threshold
        self.spatial = spatial
        self.output = output
        self.counters = {name: LayerCounter(name, threshold.value, spatial) for name in modules}
        self.batches = 0  # forward passes counted (by the first layer's hook)
        self.dataset: xr.Dataset | None = None
        self._handles: list[Any] = []

    def _hook(self, name: str, first: bool) -> Callable:
        counter = self.counters[name]
        net, output = self.net, self.output

        def hook(module: torch.nn.Module, inputs: Any, out: Any) -> None:
            if not net.training:
                return
            if first:
                self.batches += 1
            counter.update(select_output(out, output, name).detach())

        return hook

    def attach(self) -> None:
        """Register the hooks (once)."""
        if self._handles:
            raise RuntimeError("training_batches: the hooks are registered already")
        for i, (name, module) in enumerate(self.modules.items()):
            self._handles.append(module.register_forward_hook(self._hook(name, i == 0)))

    def detach(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def build(self, network: str, attrs: dict[str, Any]) -> xr.Dataset:
        """The activation dataset of the counts, named ``network`` (without an epoch)."""
        names = list(self.modules)
        silent = [name for name in names if self.counters[name].count is None]
        if silent:
            raise ValueError(f"training_batches: layers {silent} ran in no forward pass in train "
                             f"mode inside the block; nothing was counted (call net.train() "
                             f"before the training loop, and run the loop inside the block)")
        results = {name: self.counters[name].result() for name in names}
        units = [results[name]["count"].shape[0] for name in names]
        count = np.concatenate([results[name]["count"] for name in names]).astype(np.int64)
        n = np.concatenate([np.full(u, self.counters[name].n, dtype=np.int64)
                            for name, u in zip(names, units, strict=True)])
        layer = np.repeat(np.array(names, dtype=object), units)
        kinds = {name: self.counters[name].kind for name in names}
        layer_spatial = {name: (kind if kind in ("any", "per_position", "token") else "none")
                         for name, kind in kinds.items()}
        distinct = sorted(set(layer_spatial.values()) - {"none"})
        spatial = "none" if not distinct else distinct[0] if len(distinct) == 1 else "mixed"
        all_attrs = {
            "spatial": spatial,
            "layer_spatial": json.dumps(layer_spatial),
            "source": type(self.net).__name__,
            "network": network,
            "layer_modules": json.dumps({name: type(m).__name__
                                         for name, m in self.modules.items()}),
            "training_batches": self.batches,
            **attrs,
        }
        ds = make_dataset(count, n, network=network, layer=layer,
                          threshold_rule=self.rule.describe(),
                          threshold_params=self.rule.params(), attrs=all_attrs)
        ds["threshold"] = ("unit", np.full(count.shape[0], self.rule.value, dtype=np.float64))
        if any(self.counters[name].clustered for name in names):
            parts = [results[name] if self.counters[name].clustered else
                     {**dense_cluster_stats(results[name]["count"],
                                            np.full(u, self.counters[name].n, dtype=np.int64)),
                      **{var: np.full(u, -1, dtype=np.int64) for var in LAYER_CLUSTER_VARS}}
                     for name, u in zip(names, units, strict=True)]
            for var in (*CLUSTER_VARS, *LAYER_CLUSTER_VARS):
                ds[var] = ("unit", np.concatenate([p[var] for p in parts]).astype(np.int64))
        return validate(ds)
