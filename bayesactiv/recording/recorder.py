"""Record how the hidden units of any PyTorch network fire, streaming O(units) statistics.

:func:`record` hooks modules of a :class:`torch.nn.Module`, runs the inputs through
it batch by batch under :func:`torch.no_grad` and eval mode, and reduces every batch
on the device to the sufficient statistics of the activation-dataset contract
(:mod:`bayesactiv.data.dataset`): ``count``, ``n``, ``window_count``, optional raw ``fired``
events, and streamed per-unit summaries of the raw activations (min, max, moments,
zeros, top-k events) plus a per-layer histogram. Memory is O(units), not
O(events x units), unless ``keep_events=True``. :func:`capture` returns the raw
activations of one layer, event by event, through the same hook, event rules and
mode handling (the unit view re-runs a network with it).

What is an event
----------------
* ``[batch, features]`` output: a unit is a feature, an event is an input.
* ``[batch, channels, *positions]`` output (rank >= 4, e.g. a 2-d convolution): a unit
  is a channel. With ``spatial="any"`` (default) an event is an input and its
  activation is the channel's maximum over positions, so the channel fired for an
  input when it fired at any position. With ``spatial="per_position"`` every
  (input, position) pair is an event, input-major.
* ``[batch, sequence, features]`` output (rank 3): a unit is a feature and an event
  is a token (input-major). A 1-d convolution's ``[batch, channels, length]`` is
  therefore read as tokens; pass ``output=lambda t: t.unsqueeze(-1)`` to read it as
  channels over positions instead.

Threshold rules
---------------
A plain number ``t`` means :class:`Fixed` (fired = activation > t).
:class:`FractionOfMax` and :class:`Quantile` need a statistic of the whole recording
and get it from calibration passes over the inputs before the recording pass, so
their inputs must be re-iterable (a tensor, an array, a list or a DataLoader).

*Quantile precision.* Pass 1 finds each unit's minimum and maximum; pass 2 builds a
per-unit histogram of up to 2,048 equal bins between them (and counts events equal
to the minimum exactly, so the ties of a ReLU unit that is 0 on most inputs are
exact); pass 3 keeps, per unit, the smallest values inside the bin holding the
wanted order statistic (up to 512 of them) and the smallest value above that bin.
The q-quantile is numpy's default (linear interpolation between order statistics
``floor(h)`` and ``floor(h) + 1`` with ``h = q (N - 1)``) and is exact, except for
units whose bin holds more than 512 values below the wanted rank: for those the
order statistic is interpolated linearly inside its bin, an error of at most one
bin width ``(max - min) / bins``; their number is stored in the attribute
``threshold_approximate_units``. The per-unit thresholds are stored in the
variable ``threshold``.

Histogram edges
---------------
With a calibration pass, each layer's histogram spans exactly its minimum to
maximum. Without one, the edges come from the first batch with 10% headroom on
each side (a side at exactly 0 stays at 0, the bound of a ReLU), and when a later
value falls outside, the range doubles towards it, merging pairs of bins, as
often as needed. The counts stay exact for the final edges; the price is a
coarser resolution when the first batch was unrepresentative, and one small
device-to-host copy per batch and layer to check the range.

Speed
-----
On CPU (float32 or float64 activations; half precision is upcast once) every batch
and layer is reduced by one compiled numba kernel that reads the activations once
and updates all the streamed statistics in place, with blocks of units on parallel
threads for large batches (``benchmarks/record.py`` measures the cost against the
bare forward pass). Moments come from float64 power sums of ``activation - shift``,
``shift`` being each unit's mean over the first events, so values far from zero
with a small spread (1e4 + noise) keep their precision. A value outside the current
histogram range makes the kernel's batch histogram be redone after the range grows
(rare: the range doubles each time). The kernels are compiled on the first call on a
machine (several seconds) and cached by numba next to this file (or in numba's user
cache directory when that is not writable; without any, they are compiled once per
process). On CUDA, or without numba, the same statistics come from torch reductions.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
import xarray as xr

from bayesactiv.data.checks import check_int
from bayesactiv.data.dataset import make_dataset, validate

__all__ = ["Fixed", "FractionOfMax", "Quantile", "ThresholdRule", "capture",
           "default_network_name", "record"]

_QUANTILE_BINS = 2048
_QUANTILE_BUFFER = 512
_HEADROOM = 0.1


# ---------------------------------------------------------------- threshold rules


@dataclass(frozen=True)
class Fixed:
    """Fired when the activation exceeds a fixed value: ``activation > value``.

    Examples
    --------
    >>> from bayesactiv.recording.recorder import Fixed
    >>> Fixed(0.5).describe()
    'activation > 0.5'
    """

    value: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise TypeError(f"Fixed.value: expected a number, got {type(self.value).__name__}")
        if not math.isfinite(self.value):
            raise ValueError(f"Fixed.value: must be finite, got {self.value}")

    def describe(self) -> str:
        """The rule in words."""
        return f"activation > {self.value:g}"

    def params(self) -> dict[str, Any]:
        """The rule's parameters (JSON-serialisable)."""
        return {"rule": "Fixed", **asdict(self)}


@dataclass(frozen=True)
class FractionOfMax:
    """Fired when the activation exceeds a fraction of the unit's maximum over the recording.

    Seed 002's "50% of the maximum". The maximum is taken over all events of the
    recording (a calibration pass). A unit whose maximum is <= 0 (a ReLU unit that is 0
    on every input) never fires under this rule; a layer where every unit is so is refused.

    Examples
    --------
    >>> from bayesactiv.recording.recorder import FractionOfMax
    >>> FractionOfMax(0.5).describe()
    "activation > 0.5 x the unit's maximum over the recorded inputs"
    """

    fraction: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float)):
            raise TypeError(f"FractionOfMax.fraction: expected a number, got {self.fraction!r}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"FractionOfMax.fraction: must be in [0, 1], got {self.fraction}")

    def describe(self) -> str:
        """The rule in words."""
        return f"activation > {self.fraction:g} x the unit's maximum over the recorded inputs"

    def params(self) -> dict[str, Any]:
        """The rule's parameters (JSON-serialisable)."""
        return {"rule": "FractionOfMax", **asdict(self)}


@dataclass(frozen=True)
class Quantile:
    """Fired when the activation exceeds the unit's q-quantile over the recording.

    The quantile is numpy's default (linear) definition over all events of the
    recording, found by calibration passes (see the module notes on precision).
    Ties are honest: a ReLU unit that is 0 on 95% of events has its 0.9-quantile
    at 0 and fires on the other 5%.

    Examples
    --------
    >>> from bayesactiv.recording.recorder import Quantile
    >>> Quantile(0.9).params()
    {'rule': 'Quantile', 'q': 0.9}
    """

    q: float = 0.9

    def __post_init__(self) -> None:
        if isinstance(self.q, bool) or not isinstance(self.q, (int, float)):
            raise TypeError(f"Quantile.q: expected a number, got {self.q!r}")
        if not 0.0 <= self.q <= 1.0:
            raise ValueError(f"Quantile.q: must be in [0, 1], got {self.q}")

    def describe(self) -> str:
        """The rule in words."""
        return f"activation > the unit's {self.q:g}-quantile over the recorded inputs"

    def params(self) -> dict[str, Any]:
        """The rule's parameters (JSON-serialisable)."""
        return {"rule": "Quantile", **asdict(self)}


ThresholdRule = Fixed | FractionOfMax | Quantile


def _as_rule(threshold: Any) -> ThresholdRule:
    if isinstance(threshold, (Fixed, FractionOfMax, Quantile)):
        return threshold
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        return Fixed(float(threshold))
    raise TypeError(
        f"threshold: expected a number or a rule (Fixed, FractionOfMax, Quantile), "
        f"got {type(threshold).__name__}"
    )


def _round_down(thr: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Largest ``dtype`` values <= ``thr`` (float64), so that ``a > result`` iff ``a > thr``."""
    low = thr.to(dtype)
    above = low.double() > thr
    if bool(above.any()):
        low = torch.where(above, torch.nextafter(low, torch.full_like(low, -math.inf)), low)
    return low


# ---------------------------------------------------------------- inputs


class _Batches:
    """Re-iterable view of the inputs as ``(x, labels or None)`` batches."""

    def __init__(self, inputs: Any, batch_size: int | None, labels: Any, dtype: torch.dtype):
        self.dtype = dtype
        self.labels = None if labels is None else np.asarray(labels)
        if isinstance(inputs, np.ndarray):
            inputs = torch.from_numpy(inputs)
            if inputs.is_floating_point():
                inputs = inputs.to(dtype)
        if isinstance(inputs, torch.Tensor):
            if inputs.is_floating_point() and inputs.dtype != dtype:
                inputs = inputs.to(dtype)
            if inputs.ndim == 0 or inputs.shape[0] == 0:
                raise ValueError(f"inputs: empty (shape {tuple(inputs.shape)}); nothing to record")
            if batch_size is None:
                batch_size = 256
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
            if self.labels is not None and self.labels.shape[0] != inputs.shape[0]:
                raise ValueError(
                    f"labels: {self.labels.shape[0]} labels for {inputs.shape[0]} inputs"
                )
            self.tensor: torch.Tensor | None = inputs
            self.iterable = None
            self.batch_size = batch_size
            self.reiterable = True
            self.n_batches: int | None = -(-inputs.shape[0] // batch_size)
        elif isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, dict)):
            if batch_size is not None:
                raise ValueError(
                    "batch_size: applies to a tensor or array; an iterable of batches "
                    "brings its own batch size"
                )
            self.tensor = None
            self.iterable = inputs
            self.reiterable = iter(inputs) is not inputs
            try:
                self.n_batches = len(inputs)  # type: ignore[arg-type]
            except TypeError:
                self.n_batches = None
        else:
            raise TypeError(
                f"inputs: expected a tensor, a numpy array or an iterable of batches, "
                f"got {type(inputs).__name__}"
            )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
        offset = 0
        if self.tensor is not None:
            for start in range(0, self.tensor.shape[0], self.batch_size):
                x = self.tensor[start : start + self.batch_size]
                y = None if self.labels is None else self.labels[start : start + len(x)]
                yield x, y
            return
        for item in self.iterable:  # type: ignore[union-attr]
            y = None
            if isinstance(item, (tuple, list)):
                if len(item) == 0:
                    raise ValueError("inputs: an iterable yielded an empty tuple")
                x = item[0]
                if len(item) > 1:
                    y = _to_numpy(item[1])
            else:
                x = item
            if isinstance(x, np.ndarray):
                x = torch.from_numpy(x)
            if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != self.dtype:
                x = x.to(self.dtype)
            if not isinstance(x, torch.Tensor):
                raise TypeError(
                    f"inputs: a batch must be a tensor, an array or an (x, y) tuple, "
                    f"got {type(x).__name__}"
                )
            if x.ndim == 0:
                raise ValueError("inputs: a batch is a 0-d tensor; expected [batch, ...]")
            if self.labels is not None:
                y = self.labels[offset : offset + x.shape[0]]
            offset += x.shape[0]
            yield x, y


def _to_numpy(y: Any) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        return y.detach().cpu().numpy()
    return np.asarray(y)


# ---------------------------------------------------------------- layers and outputs


def _resolve_layers(module: torch.nn.Module, layers: str | Sequence[str]) -> list[str]:
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("layers: no layer given; name modules as in module.named_modules()")
    names = [name for name, _ in module.named_modules() if name]
    chosen: list[str] = []
    for pattern in layers:
        if not isinstance(pattern, str):
            raise TypeError(f"layers: expected module names (str), got {pattern!r}")
        if any(c in pattern for c in "*?["):
            hits = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
            if not hits:
                raise ValueError(
                    f"layers: the pattern {pattern!r} matches no module; modules are {names[:30]}"
                )
        elif pattern in names:
            hits = [pattern]
        else:
            close = difflib.get_close_matches(pattern, names, n=5, cutoff=0.5)
            hint = f"; did you mean {close}?" if close else f"; modules are {names[:30]}"
            raise ValueError(f"layers: no module named {pattern!r} in {type(module).__name__}{hint}")
        chosen += [name for name in hits if name not in chosen]
    return chosen


def _select_output(out: Any, output: Any, layer: str) -> torch.Tensor:
    if callable(output):
        out = output(out)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"output: the callable returned {type(out).__name__} for layer "
                            f"{layer!r}; expected a tensor")
        return out
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        if output is not None:
            if output not in out:
                raise ValueError(f"output: key {output!r} not in the outputs of layer {layer!r} "
                                 f"(keys {list(out)})")
            return _check_tensor(out[output], layer, output)
        tensors = [k for k, v in out.items() if isinstance(v, torch.Tensor)]
        if len(tensors) == 1:
            return out[tensors[0]]
        raise ValueError(f"output: layer {layer!r} returns a dict with tensor entries {tensors}; "
                         f"choose one with output='key' or output=callable")
    if isinstance(out, (tuple, list)):
        if output is not None:
            if not isinstance(output, int) or not -len(out) <= output < len(out):
                raise ValueError(f"output: index {output!r} is not valid for the {len(out)} "
                                 f"outputs of layer {layer!r}")
            return _check_tensor(out[output], layer, output)
        tensors = [i for i, v in enumerate(out) if isinstance(v, torch.Tensor)]
        if len(tensors) == 1:
            return out[tensors[0]]
        raise ValueError(f"output: layer {layer!r} returns a {type(out).__name__} with tensors at "
                         f"positions {tensors}; choose one with output=index or output=callable")
    raise TypeError(f"output: layer {layer!r} returns {type(out).__name__}, not a tensor")


def _check_tensor(value: Any, layer: str, key: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"output: entry {key!r} of layer {layer!r} is {type(value).__name__}, "
                        f"not a tensor")
    return value


def _events(t: torch.Tensor, spatial: str, layer: str, batch: int) -> tuple[torch.Tensor, str, int]:
    """Reshape a layer output to ``[events, units]``; return it, its kind and events per input."""
    if t.ndim < 2:
        raise ValueError(f"layer {layer!r}: output of shape {tuple(t.shape)}; expected "
                         f"[batch, features], [batch, sequence, features] or [batch, channels, ...]")
    if t.shape[0] != batch:
        raise ValueError(f"layer {layer!r}: output has {t.shape[0]} rows for a batch of {batch} "
                         f"inputs; the first dimension must be the batch")
    if not t.is_floating_point():
        raise TypeError(f"layer {layer!r}: output dtype {t.dtype} is not floating point")
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if t.ndim == 2:
        return t, "dense", 1
    if t.ndim == 3:
        return t.reshape(-1, t.shape[2]), "token", t.shape[1]
    flat = t.flatten(2)
    if spatial == "any":
        return _spatial_max(flat), "any", 1
    return flat.transpose(1, 2).reshape(-1, flat.shape[1]), "per_position", flat.shape[2]


# ---------------------------------------------------------------- streaming state


class _Calibration:
    """Calibration passes: per-unit min/max, then histogram, then refinement of a quantile."""

    def __init__(self) -> None:
        self.stage = "minmax"
        self.n = 0
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None
        self.kind = ""

    def update(self, a: torch.Tensor) -> None:
        if self.stage == "minmax":
            lo, hi = a.amin(0), a.amax(0)
            if self.lo is None:
                self.lo, self.hi = lo, hi
            else:
                self.lo = torch.minimum(self.lo, lo)
                self.hi = torch.maximum(self.hi, hi)
            self.n += a.shape[0]
        elif self.stage == "hist":
            idx = self._bin(a)
            u = a.shape[1]
            flat = (idx + self.offsets).reshape(-1)
            self.hist += torch.bincount(flat, minlength=u * self.bins).view(u, self.bins)
            self.at_min += (a == self.lo).sum(0)
        else:
            idx = self._bin(a)
            inside = (idx == self.target) & (a != self.lo)
            inf = torch.tensor(math.inf, dtype=a.dtype, device=a.device)
            vals = torch.where(inside, a, inf)
            k = min(self.buffer_k, a.shape[0] + self.buffer.shape[0])
            both = torch.cat([self.buffer, vals], 0)
            self.buffer = torch.topk(both, k, dim=0, largest=False).values
            if self.buffer.shape[0] < self.buffer_k:
                pad = inf.expand(self.buffer_k - self.buffer.shape[0], a.shape[1])
                self.buffer = torch.cat([self.buffer, pad], 0)
            above = torch.where(idx > self.target, a, inf).amin(0)
            self.next_min = torch.minimum(self.next_min, above)

    def _bin(self, a: torch.Tensor) -> torch.Tensor:
        scaled = ((a - self.lo) * self.scale).floor_()
        return scaled.clamp_(0, self.bins - 1).long()

    def start_hist(self, bins: int) -> None:
        assert self.lo is not None and self.hi is not None
        u = self.lo.shape[0]
        self.bins = bins
        width = self.hi - self.lo
        self.scale = torch.where(width > 0, bins / width, torch.zeros_like(width))
        self.offsets = torch.arange(u, device=self.lo.device) * bins
        self.hist = torch.zeros(u, bins, dtype=torch.int64, device=self.lo.device)
        self.at_min = torch.zeros(u, dtype=torch.int64, device=self.lo.device)
        self.stage = "hist"


def _quantile_plan(cal: _Calibration, q: float) -> None:
    """After the histogram pass: locate the bins of order statistics floor(h) and floor(h)+1."""
    n = cal.n
    h = q * (n - 1)
    k = math.floor(h)
    cal.h, cal.k = h, k
    hist = cal.hist.clone()
    hist[:, 0] -= cal.at_min
    cum = hist.cumsum(1)  # events above the minimum, up to and including each bin
    rank = torch.full_like(cal.at_min, k) - cal.at_min  # rank among events above the minimum
    rank_c = rank.clamp(min=0)
    target = torch.searchsorted(cum, rank_c[:, None], right=True)[:, 0].clamp(max=cal.bins - 1)
    before = torch.where(target > 0, cum.gather(1, (target - 1).clamp(min=0)[:, None])[:, 0],
                         torch.zeros_like(target))
    cal.target = target
    cal.rank_in_bin = rank_c - before
    cal.in_bin = hist.gather(1, target[:, None])[:, 0]
    cal.below_min = rank < 0  # order statistic k is the minimum itself
    need = torch.where(cal.below_min, torch.zeros_like(rank), cal.rank_in_bin + 2)
    cal.buffer_k = int(min(max(int(need.max()), 1), _QUANTILE_BUFFER))
    u = cal.lo.shape[0]
    dtype = cal.lo.dtype
    cal.buffer = torch.empty(0, u, dtype=dtype, device=cal.lo.device)
    cal.next_min = torch.full((u,), math.inf, dtype=dtype, device=cal.lo.device)
    cal.stage = "refine"


def _quantile_finish(cal: _Calibration) -> tuple[torch.Tensor, int]:
    """Per-unit q-quantile (float64) and the number of units whose value is approximate."""
    lo, hi = cal.lo.double(), cal.hi.double()
    width = (hi - lo) / cal.bins
    buf = cal.buffer.double()
    bk = buf.shape[0]
    r = cal.rank_in_bin
    exact = r + 1 < bk
    r0 = r.clamp(max=bk - 1)
    r1 = (r + 1).clamp(max=bk - 1)
    s_k = buf.gather(0, r0[None, :])[0]
    s_k1 = torch.where(r + 1 < cal.in_bin, buf.gather(0, r1[None, :])[0], cal.next_min.double())
    # approximate units: interpolate inside the bin (ranks uniform over the bin)
    bin_lo = lo + cal.target.double() * width
    frac = (r.double() + 0.5) / cal.in_bin.clamp(min=1).double()
    approx_k = bin_lo + frac * width
    approx_k1 = torch.where(r + 1 < cal.in_bin,
                            bin_lo + (r.double() + 1.5) / cal.in_bin.clamp(min=1).double() * width,
                            cal.next_min.double())
    s_k = torch.where(exact, s_k, approx_k)
    s_k1 = torch.where(exact | (r + 1 >= cal.in_bin), s_k1, approx_k1)
    # order statistics at the minimum (ties at the minimum are counted exactly)
    s_k = torch.where(cal.below_min, lo, s_k)
    k1_at_min = (cal.k + 1) < cal.at_min
    first_above = torch.where(cal.in_bin > 0, buf[0], cal.next_min.double())
    s_k1 = torch.where(k1_at_min, lo, torch.where(cal.below_min, first_above, s_k1))
    if cal.k + 1 >= cal.n:
        s_k1 = s_k
    s_k1 = torch.where(torch.isfinite(s_k1), s_k1, s_k)
    frac_h = cal.h - cal.k
    quant = s_k + frac_h * (s_k1 - s_k) if frac_h > 0 else s_k
    n_approx = int((~exact & ~cal.below_min).sum())
    return quant, n_approx


# ---------------------------------------------------------------- fused CPU kernel
#
# On CPU the recording pass reduces each batch with one compiled numba kernel per layer: one
# read of the [events, units] activations gives, per unit, the fired and window counts, the
# batch minimum and maximum, the count of non-finite values, and with summaries the exact-zero
# count, the power sums of ``a - shift`` (shift: the unit's mean over the first batch, fixed),
# the top-k events (kept sorted in place) and the layer histogram (a private one per block of
# units, summed afterwards). Units are split in blocks that run in parallel (``prange``).
# CUDA tensors, or a machine without numba, take the torch path (``_Recorder._update_torch``).

_prange = range  # replaced by numba.prange before compilation
_KERNELS: dict[str, Any] = {}
_PARALLEL_MIN = 2**20  # activations in a batch from which the kernel runs on several threads
_HIST_LANES = 8  # sub-histograms per block, so that increments of one bin do not wait on each other


def _fused_kernel(a, thr, fill, w, wc, lo, hi, bad, keep, fired, summaries, zero, s, shift,
                  top_v, top_i, n0, hist, hlo, hhi, hscale, nout, block):  # pragma: no cover
    # Blocks of units run in parallel. Inside a block the events are read row by row, and the
    # per-unit accumulators are small local arrays: the inner loops over units vectorise. The
    # non-vectorisable work runs on few values: the top k only for units whose maximum over a
    # chunk of events beats their k-th best, the histogram as a scatter of precomputed bins.
    e, u = a.shape
    k = top_v.shape[0]
    bins = hist.shape[1]
    nblocks = (u + block - 1) // block
    for b in _prange(nblocks):
        c0 = b * block
        m = min(u, c0 + block) - c0
        t = thr[c0 : c0 + m].copy()
        sh = shift[c0 : c0 + m].copy()
        ia = np.zeros((3, m), dtype=np.int64)  # fired in the window, non-finite, exact zeros
        fa = np.zeros((4, m), dtype=np.float64)  # power sums of a - shift
        mn = np.full(m, np.inf, dtype=a.dtype)
        mx = np.full(m, -np.inf, dtype=a.dtype)
        cm = np.full(m, -np.inf, dtype=a.dtype)  # maximum over the current chunk of events
        kth = np.full(m, np.inf, dtype=a.dtype)
        if k > 0:
            kth[:] = top_v[k - 1, c0 : c0 + m]
        bi = np.zeros(m, dtype=np.int64)
        hl = np.zeros((_HIST_LANES, bins), dtype=np.int64)
        out = 0
        chunk0 = 0
        hmax = bins - 1.0
        for r in range(e):
            row = a[r, c0 : c0 + m]
            for j in range(m):
                x = row[j]
                ia[0, j] += x > t[j]
                mn[j] = min(mn[j], x)
                mx[j] = max(mx[j], x)
                ia[1, j] += x - x != 0  # NaN or infinite
            if keep:
                for j in range(m):
                    fired[r, c0 + j] = row[j] > t[j]
            if summaries:
                for j in range(m):
                    x = row[j]
                    ia[2, j] += x == 0
                    d = np.float64(x) - sh[j]
                    d2 = d * d
                    fa[0, j] += d
                    fa[1, j] += d2
                    fa[2, j] += d2 * d
                    fa[3, j] += d2 * d2
                    cm[j] = max(cm[j], x)
                # bin = floor((x - lo) * bins / (hi - lo)), the top edge in the last bin;
                # values outside are clamped to the edge bins and counted in nout
                o = 0
                for j in range(m):
                    x = np.float64(row[j])
                    o += (x < hlo) | (x > hhi)
                    v = (x - hlo) * hscale
                    v = v if v >= 0.0 else 0.0  # noqa: FURB136 (NaN -> 0, unlike max)
                    v = v if v < hmax else hmax  # noqa: FURB136
                    bi[j] = int(v)
                out += o
                for j in range(m):
                    hl[j % _HIST_LANES, bi[j]] += 1
                if k > 0 and (r - chunk0 == 63 or r == e - 1):
                    for j in range(m):
                        if cm[j] > kth[j]:
                            c = c0 + j
                            for rr in range(chunk0, r + 1):
                                x = a[rr, c]
                                if x > kth[j]:
                                    # insert; an equal earlier event stays ahead
                                    p = k - 1
                                    while p > 0 and top_v[p - 1, c] < x:
                                        top_v[p, c] = top_v[p - 1, c]
                                        top_i[p, c] = top_i[p - 1, c]
                                        p -= 1
                                    top_v[p, c] = x
                                    top_i[p, c] = n0 + rr
                                    kth[j] = top_v[k - 1, c]
                        cm[j] = -np.inf
                    chunk0 = r + 1
            if r == e - 1 or (fill + r + 1) % w == 0:  # the window of event r ends here
                wi = (fill + r) // w
                for j in range(m):
                    wc[wi, c0 + j] += ia[0, j]
                    ia[0, j] = 0
        for j in range(m):
            lo[c0 + j] = mn[j]
            hi[c0 + j] = mx[j]
            bad[c0 + j] += ia[1, j]
        if summaries:
            for j in range(m):
                zero[c0 + j] += ia[2, j]
                for q in range(4):
                    s[q, c0 + j] += fa[q, j]
            for q in range(_HIST_LANES):
                for i in range(bins):
                    hist[b, i] += hl[q, i]
        nout[b] = out


def _hist_kernel(a, hlo, hhi, hscale, hist, block):  # pragma: no cover
    e, u = a.shape
    bins = hist.shape[1]
    nblocks = (u + block - 1) // block
    hmax = bins - 1.0
    for b in _prange(nblocks):
        c0 = b * block
        for r in range(e):
            for c in range(c0, min(u, c0 + block)):
                v = (np.float64(a[r, c]) - hlo) * hscale
                if not math.isnan(v):
                    hist[b, int(min(max(v, 0.0), hmax))] += 1


def _max_kernel(x, out):  # pragma: no cover
    # maximum over the last axis of [batch, channels, positions]; NaN wins, as in torch.amax
    nb, nc, npos = x.shape
    for i in _prange(nb):
        for c in range(nc):
            m = x[i, c, 0]
            nan = 0
            for p in range(npos):  # branch-free, so that it vectorises
                v = x[i, c, p]
                m = max(m, v)
                nan += math.isnan(v)
            out[i, c] = m if nan == 0 else np.nan


def _spatial_max(flat: torch.Tensor) -> torch.Tensor:
    """``flat.amax(2)``; on CPU one compiled pass (torch's reduction over a short axis is slow)."""
    if not (_fast_path(flat) and flat.shape[2] > 0):
        return flat.amax(2)
    x = flat.contiguous().numpy()
    out = np.empty(x.shape[:2], dtype=x.dtype)
    kern = _KERNELS["max"] if x.size >= 4 * _PARALLEL_MIN else _KERNELS["max_serial"]
    kern(x, out)
    return torch.from_numpy(out)


def _kernels() -> dict[str, Any] | None:
    """The compiled kernels, or None without numba. Compiled once, cached on disk if possible."""
    if "fused" not in _KERNELS:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba comes with pymc
            _KERNELS["fused"] = None
            return None
        globals()["_prange"] = numba.prange

        def jit(fn: Callable, parallel: bool = True) -> Callable:
            try:
                return numba.njit(parallel=parallel, cache=True, nogil=True)(fn)
            except (RuntimeError, OSError):  # pragma: no cover - no writable cache location
                return numba.njit(parallel=parallel, cache=False, nogil=True)(fn)

        _KERNELS["fused"] = jit(_fused_kernel)
        # small batches: waking threads costs more than the work (and far more on a busy machine)
        _KERNELS["fused_serial"] = jit(_fused_kernel, parallel=False)
        _KERNELS["hist"] = jit(_hist_kernel)
        _KERNELS["max"] = jit(_max_kernel)
        _KERNELS["max_serial"] = jit(_max_kernel, parallel=False)
        _KERNELS["threads"] = numba.get_num_threads()
    return _KERNELS if _KERNELS["fused"] is not None else None


def _block(units: int) -> int:
    """Units per parallel block: at least two blocks per thread, 16 to 256 units each."""
    threads = _KERNELS.get("threads", 1) or 1
    per = -(-units // (2 * threads))
    return int(min(256, max(16, -(-per // 16) * 16)))


def _fast_path(a: torch.Tensor) -> bool:
    """Whether the fused numba kernel can reduce this batch (CPU float32/float64, numba here)."""
    return (a.device.type == "cpu" and a.dtype in (torch.float32, torch.float64)
            and _kernels() is not None)


class _Recorder:
    """The recording pass for one layer: counts, windows, events and raw-activation summaries."""

    def __init__(self, rule_thr: torch.Tensor | None, window_size: int | None, keep_events: bool,
                 summaries: bool, topk: int, hist_bins: int, hist_range: tuple[float, float] | None):
        self.thr_src = rule_thr  # float64 per unit, or None for Fixed (set on first batch)
        self.thr: torch.Tensor | None = None
        self.window_size = window_size
        self.keep_events = keep_events
        self.summaries = summaries
        self.k = topk
        self.bins = hist_bins
        self.hist_range = hist_range
        self.n = 0
        self.windows: list[torch.Tensor] = []
        self.fired: list[torch.Tensor] = []
        self.fill = 0
        self.kind = ""
        self.per_input = 0
        self.events_per_batch: list[int] = []

    def first(self, a: torch.Tensor, fixed: float | None) -> None:
        u, dev, dt = a.shape[1], a.device, a.dtype
        if self.thr_src is None:
            self.thr_src = torch.full((u,), float(fixed), dtype=torch.float64, device=dev)
        self.thr = _round_down(self.thr_src.to(dev), dt)
        zeros = torch.zeros(u, dtype=torch.int64, device=dev)
        self.count = zeros.clone()
        self.zero = zeros.clone()
        self.partial = zeros.clone()
        self.lo = torch.full((u,), math.inf, dtype=dt, device=dev)
        self.hi = torch.full((u,), -math.inf, dtype=dt, device=dev)
        f64 = torch.zeros(u, dtype=torch.float64, device=dev)
        self.mean, self.m2, self.m3, self.m4 = f64.clone(), f64.clone(), f64.clone(), f64.clone()
        self.top_v = torch.empty(0, u, dtype=dt, device=dev)
        self.top_i = torch.empty(0, u, dtype=torch.int64, device=dev)
        self.hist = torch.zeros(self.bins, dtype=torch.float64, device=dev)
        self.fast = _fast_path(a)
        if self.fast:
            # numpy state updated in place by the fused kernel (see _update_fast)
            self.bad = torch.zeros(u, dtype=torch.int64)
            self.sums = torch.zeros(4, u, dtype=torch.float64)  # power sums of a - shift
            # the shift only centres the power sums: the mean of the first events will do
            shift = np.mean(a[:256].numpy(), axis=0, dtype=np.float64)
            self.shift = torch.from_numpy(np.where(np.isfinite(shift), shift, 0.0))
            k = self.k if self.summaries else 0
            self.top_v = torch.full((k, u), -math.inf, dtype=dt)
            self.top_i = torch.full((k, u), -1, dtype=torch.int64)
            self.hist = torch.zeros(self.bins, dtype=torch.int64)
        if self.hist_range is None and not self.summaries:
            self.hist_range = (0.0, 1.0)  # no histogram
            self.dynamic = False
        elif self.hist_range is None:
            x = a.numpy() if self.fast else a  # numpy's reductions are the faster on CPU
            lo, hi = float(x.min()), float(x.max())
            if math.isfinite(lo) and math.isfinite(hi):
                width = hi - lo if hi > lo else max(abs(lo), 1.0)
                lo_e = lo if lo == 0 else lo - _HEADROOM * width
                hi_e = hi if (hi == 0 and lo < 0) else hi + _HEADROOM * width
                if hi_e <= lo_e:
                    hi_e = lo_e + 1.0
                self.hist_range = (lo_e, hi_e)
                self.dynamic = True
            else:
                self.hist_range = (0.0, 1.0)
                self.dynamic = True
        else:
            self.dynamic = False
            lo, hi = self.hist_range
            if not hi > lo:
                self.hist_range = (lo - 0.5, lo + 0.5)

    def update(self, a: torch.Tensor) -> None:
        if self.fast:
            self._update_fast(a)
        else:
            self._update_torch(a)

    def _update_fast(self, a: torch.Tensor) -> None:
        """One fused pass of the numba kernel over the batch (CPU, float32/float64)."""
        kern = _KERNELS
        x = a.contiguous().numpy()
        e, u = x.shape
        w = self.window_size
        fill, span = (0, max(e, 1)) if w is None else (self.fill, w)
        touched = (fill + e - 1) // span + 1
        wc = np.zeros((touched, u), dtype=np.int64)
        lo = np.empty(u, dtype=x.dtype)
        hi = np.empty(u, dtype=x.dtype)
        fired = np.empty((e, u) if self.keep_events else (0, 0), dtype=np.bool_)
        block = _block(u)
        nblocks = -(-u // block)
        hist = np.zeros((nblocks if self.summaries else 1, self.bins), dtype=np.int64)
        nout = np.zeros(nblocks, dtype=np.int64)
        hlo, hhi = self.hist_range
        fused = kern["fused"] if e * u >= _PARALLEL_MIN else kern["fused_serial"]
        fused(x, self.thr.numpy(), fill, span, wc, lo, hi, self.bad.numpy(), self.keep_events,
              fired, self.summaries, self.zero.numpy(), self.sums.numpy(), self.shift.numpy(),
              self.top_v.numpy(), self.top_i.numpy(), self.n, hist, hlo, hhi,
              self.bins / (hhi - hlo), nout, block)
        counts = wc.sum(0)
        np.add(self.count.numpy(), counts, out=self.count.numpy())
        if w is not None:
            wc[0] += self.partial.numpy()
            done = (fill + e) // w
            if done:  # (a copy when the open window's row would otherwise stay alive)
                self.windows.append(torch.from_numpy(wc if done == touched else wc[:done].copy()))
            self.partial = torch.from_numpy(wc[done].copy()) if done < touched \
                else torch.zeros(u, dtype=torch.int64)
            self.fill = (fill + e) % w
        if self.keep_events:
            self.fired.append(torch.from_numpy(fired))
        np.minimum(self.lo.numpy(), lo, out=self.lo.numpy())
        np.maximum(self.hi.numpy(), hi, out=self.hi.numpy())
        if self.summaries:
            if self.dynamic and nout.any():
                amin, amax = float(lo.min()), float(hi.max())
                if math.isfinite(amin) and math.isfinite(amax):  # else: reported at the end
                    self._grow(amin, amax)
                    hlo, hhi = self.hist_range
                    hist[:] = 0
                    kern["hist"](x, hlo, hhi, self.bins / (hhi - hlo), hist, block)
            self.hist += torch.from_numpy(hist.sum(0))
        self.n += e

    def _grow(self, amin: float, amax: float) -> None:
        """Double the histogram range towards [amin, amax] (merging pairs of bins) until it fits."""
        lo, hi = self.hist_range
        while amin < lo or amax > hi:
            width = hi - lo
            half = self.hist.view(-1, 2).sum(1)
            if amax > hi:
                self.hist = torch.cat([half, torch.zeros_like(half)])
                hi = lo + 2 * width
            else:
                self.hist = torch.cat([torch.zeros_like(half), half])
                lo = hi - 2 * width
        self.hist_range = (lo, hi)

    def _update_torch(self, a: torch.Tensor) -> None:
        e = a.shape[0]
        fired = a > self.thr
        # sums of a float copy are cheaper than sums of bools (which go through int64)
        fired_f = fired.to(a.dtype) if a.dtype != torch.float64 else fired.float()
        if self.window_size is not None:
            self.count += self._windows(fired_f)
        else:
            self.count += fired_f.sum(0).long()
        if self.keep_events:
            self.fired.append(fired.cpu())
        b_lo, b_hi = a.amin(0), a.amax(0)
        self.lo = torch.minimum(self.lo, b_lo)
        self.hi = torch.maximum(self.hi, b_hi)
        if self.summaries:
            self._moments(a)
            self.zero += (a == 0).to(fired_f.dtype).sum(0).long()
            self._topk(a, b_hi)
            self._histogram(a, b_lo, b_hi)
        self.n += e

    def _windows(self, fired: torch.Tensor) -> torch.Tensor:
        """Add complete windows; return the batch's fired count per unit."""
        w = self.window_size
        e = fired.shape[0]
        total = torch.zeros_like(self.partial)
        start = 0
        if self.fill:
            take = min(w - self.fill, e)
            head = fired[:take].sum(0).long()
            total += head
            self.partial += head
            self.fill += take
            start = take
            if self.fill == w:
                self.windows.append(self.partial[None])
                self.partial = torch.zeros_like(self.partial)
                self.fill = 0
        m = (e - start) // w
        if m:
            block = fired[start : start + m * w].view(m, w, -1).sum(1).long()
            self.windows.append(block)
            total += block.sum(0)
            start += m * w
        if start < e:
            tail = fired[start:].sum(0).long()
            total += tail
            self.partial += tail
            self.fill += e - start
        return total

    def _moments(self, a: torch.Tensor) -> None:
        # per-batch centred power sums in the activation dtype, merged in float64 (Pebay 2008)
        nb = a.shape[0]
        mb = a.mean(0)
        d = a - mb
        d2 = d * d
        m2b = d2.sum(0).double()
        m3b = (d2 * d).sum(0).double()
        m4b = (d2 * d2).sum(0).double()
        mb = mb.double()
        na = self.n
        if na == 0:
            self.mean, self.m2, self.m3, self.m4 = mb, m2b, m3b, m4b
            return
        n = na + nb
        delta = mb - self.mean
        dn = delta / n
        self.m4 = (self.m4 + m4b + delta * dn ** 3 * na * nb * (na * na - na * nb + nb * nb)
                   + 6 * dn ** 2 * (na * na * m2b + nb * nb * self.m2)
                   + 4 * dn * (na * m3b - nb * self.m3))
        self.m3 = (self.m3 + m3b + delta * dn ** 2 * na * nb * (na - nb)
                   + 3 * dn * (na * m2b - nb * self.m2))
        self.m2 = self.m2 + m2b + delta * dn * na * nb
        self.mean = self.mean + dn * nb

    def _topk(self, a: torch.Tensor, b_hi: torch.Tensor) -> None:
        k = self.k
        if k == 0:
            return
        e, u = a.shape
        if a.device.type != "cpu" or self.top_v.shape[0] < k:
            # merge the batch whole: torch.topk over the stacked candidates
            vals = torch.cat([self.top_v, a], 0)
            ids = torch.cat([self.top_i,
                             torch.arange(self.n, self.n + e, device=a.device)[:, None].expand(e, u)])
            top = torch.topk(vals, min(k, vals.shape[0]), dim=0)
            self.top_v, self.top_i = top.values, ids.gather(0, top.indices)
            return
        # on CPU, once full: only units whose batch maximum beats their k-th best need work,
        # and only their events above it (ties keep the earlier event)
        kth = self.top_v[-1]
        if not bool((b_hi > kth).any()):
            return
        ev, col = torch.nonzero(a > kth, as_tuple=True)
        vals = a[ev, col]
        cols, cu = torch.unique(col, return_inverse=True)
        order = torch.argsort(vals, descending=True, stable=True)
        order = order[torch.argsort(cu[order], stable=True)]
        cu, ev, vals = cu[order], ev[order], vals[order]
        counts = torch.bincount(cu, minlength=cols.numel())
        starts = counts.cumsum(0) - counts
        rank = torch.arange(cu.numel()) - starts[cu]
        keep = rank < k
        cand_v = torch.full((k, cols.numel()), -math.inf, dtype=a.dtype)
        cand_i = torch.full((k, cols.numel()), -1, dtype=torch.int64)
        cand_v[rank[keep], cu[keep]] = vals[keep]
        cand_i[rank[keep], cu[keep]] = ev[keep] + self.n
        both_v = torch.cat([self.top_v[:, cols], cand_v], 0)
        both_i = torch.cat([self.top_i[:, cols], cand_i], 0)
        top = torch.topk(both_v, k, dim=0)
        self.top_v[:, cols] = top.values
        self.top_i[:, cols] = both_i.gather(0, top.indices)

    def _histogram(self, a: torch.Tensor, b_lo: torch.Tensor, b_hi: torch.Tensor) -> None:
        if self.dynamic:
            amin, amax = float(b_lo.min()), float(b_hi.max())
            if not (math.isfinite(amin) and math.isfinite(amax)):
                return  # reported as non-finite activations at the end of the pass
            self._grow(amin, amax)
        lo, hi = self.hist_range
        if a.device.type == "cpu":
            # same binning as torch.histc (bin = floor((x - lo) * bins / (hi - lo)), the top
            # edge in the last bin), cheaper on CPU
            scale = self.bins / (hi - lo)
            idx = torch.mul(a, scale).sub_(lo * scale).clamp_(0, self.bins - 1).to(torch.int32)
            self.hist += torch.bincount(idx.view(-1), minlength=self.bins).double()
        else:
            self.hist += torch.histc(a, self.bins, lo, hi).double()

    def _moments_from_sums(self) -> None:
        """Mean and centred power sums (times n) from the shifted power sums of the fast path."""
        n = max(self.n, 1)
        s1, s2, s3, s4 = (self.sums[j] / n for j in range(4))
        d = s1  # mean - shift
        self.mean = self.shift + d
        self.m2 = (s2 - d * d) * n
        self.m3 = (s3 - 3 * d * s2 + 2 * d ** 3) * n
        self.m4 = (s4 - 4 * d * s3 + 6 * d * d * s2 - 3 * d ** 4) * n

    def finite(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-unit minimum and maximum, NaN where a unit saw a NaN or infinite value."""
        if not self.fast:
            return self.lo, self.hi
        bad = self.bad > 0
        nan = torch.tensor(math.nan, dtype=self.lo.dtype)
        return torch.where(bad, nan, self.lo), torch.where(bad, nan, self.hi)

    def result(self, units: int) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count.cpu().numpy(), "n": self.n}
        n = max(self.n, 1)
        out["act_min"] = self.lo.double().cpu().numpy()
        out["act_max"] = self.hi.double().cpu().numpy()
        out["threshold"] = self.thr_src.double().cpu().numpy()
        if self.window_size is not None:
            if self.windows:
                out["window_count"] = np.concatenate([wc.cpu().numpy() for wc in self.windows])
            else:
                out["window_count"] = np.zeros((0, units), dtype=np.int64)
        if self.keep_events:
            out["fired"] = torch.cat(self.fired, 0).numpy()
        if self.summaries and self.fast:
            self._moments_from_sums()
        if self.summaries:
            var = self.m2 / n
            with np.errstate(invalid="ignore", divide="ignore"):
                m2 = (self.m2 / n).cpu().numpy()
                m3 = (self.m3 / n).cpu().numpy()
                m4 = (self.m4 / n).cpu().numpy()
                positive = m2 > 0
                skew = np.where(positive, m3 / np.where(positive, m2, 1.0) ** 1.5, np.nan)
                kurt = np.where(positive, m4 / np.where(positive, m2, 1.0) ** 2 - 3.0, np.nan)
            out["act_mean"] = self.mean.cpu().numpy()
            out["act_var"] = np.maximum(var.cpu().numpy(), 0.0)
            out["act_skewness"] = skew
            out["act_kurtosis"] = kurt
            out["act_zero"] = self.zero.cpu().numpy().astype(np.int64)
            tv = np.full((units, self.k), np.nan)
            ti = np.full((units, self.k), -1, dtype=np.int64)
            got = self.top_v.shape[0]
            tv[:, :got] = self.top_v.double().cpu().numpy().T
            ti[:, :got] = self.top_i.cpu().numpy().T
            tv[ti < 0] = np.nan  # fewer events than k
            out["topk_value"], out["topk_sample"] = tv, ti
            out["hist_count"] = np.rint(self.hist.cpu().numpy()).astype(np.int64)
            out["hist_edges"] = np.linspace(self.hist_range[0], self.hist_range[1], self.bins + 1)
        return out


# ---------------------------------------------------------------- passes


def _module_device(module: torch.nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def _module_dtype(module: torch.nn.Module) -> torch.dtype:
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _check_module(module: Any, device: str | torch.device | None) -> torch.device:
    """Refuse what cannot be run; return the device where the inputs go and the reductions run."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    on_meta = [name for name, t in [*module.named_parameters(), *module.named_buffers()]
               if t.is_meta]
    if on_meta:
        raise ValueError(
            f"module: {len(on_meta)} parameters or buffers (e.g. {on_meta[0]!r}) are on the "
            f"'meta' device, which holds shapes but no values; load the weights first (e.g. "
            f"module.to_empty(device='cpu') then module.load_state_dict(...))")
    mdev = _module_device(module)
    dev = mdev if device is None else torch.device(device)
    if dev.type == "meta":
        raise ValueError("device: 'meta' holds shapes but no values; nothing can be recorded there")
    if mdev.type != dev.type or (mdev.index is not None and dev.index is not None
                                 and mdev.index != dev.index):
        raise ValueError(f"device: the module's parameters are on {mdev} but device={dev}; "
                         f"move the module with module.to({str(dev)!r})")
    return dev


def _check_spatial(spatial: Any) -> None:
    if spatial not in ("any", "per_position"):
        raise ValueError(f"spatial: expected 'any' or 'per_position', got {spatial!r}")


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


@contextmanager
def _inference(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no gradients; every submodule's training mode is restored on exit."""
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        with torch.no_grad():
            yield
    finally:
        for m, mode in modes.items():
            m.training = mode


def _run_pass(module: torch.nn.Module, batches: _Batches, layers: list[str], device: torch.device,
              handle: Callable[[str, torch.Tensor, str, int], None], output: Any, spatial: str,
              progress: bool, desc: str,
              on_batch: Callable[[torch.Tensor, np.ndarray | None], None] | None = None) -> int:
    """One pass over the inputs with hooks on ``layers``; returns the number of inputs."""
    from tqdm.auto import tqdm

    mods = dict(module.named_modules())
    calls = dict.fromkeys(layers, 0)
    state = {"batch": 0}

    def make_hook(name: str) -> Callable:
        def hook(mod: torch.nn.Module, inp: Any, out: Any) -> None:
            calls[name] += 1
            if calls[name] > 1:
                raise RuntimeError(
                    f"layer {name!r}: the module ran more than once in one forward pass (a module "
                    f"reused at several places); its units are ambiguous; give each place its own "
                    f"module")
            t = _select_output(out, output, name)
            a, kind, per_input = _events(t.detach(), spatial, name, state["batch"])
            handle(name, a, kind, per_input)

        return hook

    handles = []
    n_inputs = 0
    try:
        for name in layers:
            handles.append(mods[name].register_forward_hook(make_hook(name)))
        bar = tqdm(batches, total=batches.n_batches, desc=desc, disable=not progress,
                   unit="batch", leave=False)
        for x, y in bar:
            if x.shape[0] == 0:
                continue
            for name in layers:
                calls[name] = 0
            state["batch"] = x.shape[0]
            x = x.to(device, non_blocking=True)
            if on_batch is not None:
                on_batch(x, y)
            module(x)
            missing = [name for name in layers if calls[name] == 0]
            if missing:
                raise RuntimeError(f"layers: {missing} did not run in the forward pass; "
                                   f"hook modules that the network's forward() calls")
            n_inputs += x.shape[0]
    finally:
        for h in handles:
            h.remove()
    if n_inputs == 0:
        raise ValueError("inputs: empty; no input was seen, nothing to record")
    return n_inputs


def _check_finite(name: str, lo: torch.Tensor, hi: torch.Tensor) -> None:
    bad = ~(torch.isfinite(lo) & torch.isfinite(hi))
    if bool(bad.any()):
        units = torch.nonzero(bad).flatten().cpu().tolist()
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
    spatial: str = "any",
    output: int | str | Callable[[Any], torch.Tensor] | None = None,
    topk: int = 10,
    hist_bins: int = 64,
    labels: Any = None,
    summaries: bool = True,
) -> xr.Dataset:
    """Record how the units of chosen layers of a PyTorch network fire.

    Parameters
    ----------
    module : torch.nn.Module
        Any network. It runs under :func:`torch.no_grad` in eval mode; the training
        mode of every submodule is restored and every hook removed afterwards, also
        when an exception is raised.
    inputs : torch.Tensor, numpy.ndarray or iterable
        A tensor or array (split into batches of ``batch_size``), or an iterable of
        batches such as a DataLoader or a list; a batch may be ``(x, y)``, ``y``
        giving the ``label`` of its inputs.
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
    spatial : {"any", "per_position"}
        Events of a convolution channel (outputs of rank >= 4): ``"any"``, one event
        per input, fired when the channel fired at any position (its activation is
        the maximum over positions); ``"per_position"``, one event per input and position.
    output : int, str or callable, optional
        Which tensor to take from a layer returning a tuple (index) or dict (key);
        a callable maps every hooked output to a tensor.
    topk : int
        Keep each unit's ``topk`` most activating events (``topk_sample``, ``topk_value``).
    hist_bins : int
        Bins of the per-layer activation histogram (even).
    labels : array_like, optional
        A label per input, for a tensor or array input (or to override an iterable's).
    summaries : bool
        Stream moments, zero counts, top-k events and histograms (set False for a
        little more speed; ``act_min``/``act_max`` are always kept).

    Returns
    -------
    xarray.Dataset
        A validated activation dataset (see :mod:`bayesactiv.data.dataset`) with, besides
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
    dev = _check_module(module, device)
    rule = _as_rule(threshold)
    if window_size is not None:
        if isinstance(window_size, bool) or not isinstance(window_size, (int, np.integer)):
            raise TypeError(f"window_size: expected an integer, got {window_size!r}")
        if window_size < 1:
            raise ValueError(f"window_size: must be >= 1, got {window_size}")
        window_size = int(window_size)
    _check_spatial(spatial)
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 0:
        raise ValueError(f"topk: must be a non-negative integer, got {topk!r}")
    if isinstance(hist_bins, bool) or not isinstance(hist_bins, int) or hist_bins < 2 \
            or hist_bins % 2:
        raise ValueError(f"hist_bins: must be an even integer >= 2, got {hist_bins!r}")
    network = default_network_name(module) if network is None else str(network)
    if not network or "/" in network:
        raise ValueError(f"network: must be a non-empty name without '/', got {network!r}")
    names = _resolve_layers(module, layers)
    bad_names = [n for n in names if "/" in n]
    if bad_names:
        raise ValueError(f"layers: names {bad_names} contain '/', which unit ids cannot hold")
    batches = _Batches(inputs, batch_size, labels, _module_dtype(module))
    if not isinstance(rule, Fixed) and not batches.reiterable:
        raise ValueError(f"inputs: the threshold rule {rule!r} needs a calibration pass over the "
                         f"inputs, but a one-shot iterator or generator can be read only once; "
                         f"pass a tensor, an array, a list or a DataLoader")

    with _inference(module):
        return _record(module, batches, names, rule, window_size, keep_events, network, dev,
                       progress, spatial, output, topk, hist_bins, summaries)


def _record(module: torch.nn.Module, batches: _Batches, names: list[str], rule: ThresholdRule,
            window_size: int | None, keep_events: bool, network: str, dev: torch.device,
            progress: bool, spatial: str, output: Any, topk: int, hist_bins: int,
            summaries: bool) -> xr.Dataset:
    thresholds: dict[str, torch.Tensor | None] = dict.fromkeys(names)
    hist_ranges: dict[str, tuple[float, float] | None] = dict.fromkeys(names)
    n_approx = 0
    if not isinstance(rule, Fixed):
        cals = {name: _Calibration() for name in names}

        def calibrate(name: str, a: torch.Tensor, kind: str, per_input: int) -> None:
            cals[name].update(a)

        _run_pass(module, batches, names, dev, calibrate, output, spatial, progress,
                  "calibrating (min/max)")
        for name, cal in cals.items():
            _check_finite(name, cal.lo, cal.hi)
            hist_ranges[name] = (float(cal.lo.min()), float(cal.hi.max()))
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
            for name, cal in cals.items():
                bins = int(min(_QUANTILE_BINS, max(256, 2 ** 25 // max(cal.lo.shape[0], 1))))
                cal.start_hist(bins)
            _run_pass(module, batches, names, dev, calibrate, output, spatial, progress,
                      "calibrating (histogram)")
            for cal in cals.values():
                _quantile_plan(cal, rule.q)
            _run_pass(module, batches, names, dev, calibrate, output, spatial, progress,
                      "calibrating (quantile)")
            for name, cal in cals.items():
                thresholds[name], approx = _quantile_finish(cal)
                n_approx += approx
        del cals
    fixed = rule.value if isinstance(rule, Fixed) else None
    recs = {name: _Recorder(thresholds[name], window_size, keep_events, summaries, topk,
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
            rec.events_per_batch.append(per_input)
        rec.update(a)

    def on_batch(x: torch.Tensor, y: np.ndarray | None) -> None:
        if keep_events:
            labels_seen.append(None if y is None else np.asarray(y))
            inputs_seen.append(np.arange(offset["inputs"], offset["inputs"] + x.shape[0]))
        offset["inputs"] += x.shape[0]

    _run_pass(module, batches, names, dev, handle, output, spatial, progress, "recording",
              on_batch)
    for name, rec in recs.items():
        _check_finite(name, *rec.finite())
    return _assemble(recs, names, rule, window_size, keep_events, network, module, spatial,
                     inputs_seen, labels_seen, n_approx, summaries)


def _assemble(recs: dict[str, _Recorder], names: list[str], rule: ThresholdRule,
              window_size: int | None, keep_events: bool, network: str, module: torch.nn.Module,
              spatial: str, inputs_seen: list[np.ndarray], labels_seen: list[np.ndarray | None],
              n_approx: int, summaries: bool) -> xr.Dataset:
    from bayesactiv import __version__
    results = {name: recs[name].result(recs[name].count.shape[0]) for name in names}
    units = [results[name]["count"].shape[0] for name in names]
    layer_col = np.repeat(np.array(names, dtype=object), units)
    index_col = np.concatenate([np.arange(u, dtype=np.int64) for u in units])
    count = np.concatenate([results[name]["count"] for name in names]).astype(np.int64)
    n = np.concatenate([np.full(u, results[name]["n"], dtype=np.int64)
                        for name, u in zip(names, units, strict=True)])

    window_count = None
    if window_size is not None:
        n_win = min(results[name]["window_count"].shape[0] for name in names)
        window_count = np.concatenate([results[name]["window_count"][:n_win] for name in names],
                                      axis=1).astype(np.int64)

    fired = label = input_coord = None
    if keep_events:
        sizes = {name: results[name]["n"] for name in names}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"keep_events: the layers see different numbers of events {sizes}; "
                             f"the fired matrix needs one event axis; record them separately")
        fired = np.concatenate([results[name]["fired"] for name in names], axis=1)
        per_batch = [recs[name].events_per_batch for name in names]
        if any(p != per_batch[0] for p in per_batch):
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

    kinds = {name: recs[name].kind for name in names}
    layer_spatial = {name: (spatial if k in ("any", "per_position") else
                            "token" if k == "token" else "none") for name, k in kinds.items()}
    distinct = sorted(set(layer_spatial.values()) - {"none"})
    spatial_attr = "none" if not distinct else distinct[0] if len(distinct) == 1 else "mixed"
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
    ds = make_dataset(count, n, network=network, layer=layer_col, index=index_col,
                      window_count=window_count, window_size=window_size, fired=fired,
                      label=label, threshold_rule=rule.describe(),
                      threshold_params=rule.params(), attrs=attrs)
    if input_coord is not None and ds.attrs["spatial"] in ("per_position", "token", "mixed"):
        ds = ds.assign_coords(input=("sample", input_coord.astype(np.int64)))
    per_unit = ["threshold", "act_min", "act_max"]
    if summaries:
        per_unit += ["act_mean", "act_var", "act_skewness", "act_kurtosis", "act_zero"]
    for var in per_unit:
        ds[var] = ("unit", np.concatenate([results[name][var] for name in names]))
    if summaries:
        ds["topk_sample"] = (("unit", "rank"),
                             np.concatenate([results[name]["topk_sample"] for name in names]))
        ds["topk_value"] = (("unit", "rank"),
                            np.concatenate([results[name]["topk_value"] for name in names]))
        ds["hist_count"] = (("hist_group", "hist_bin"),
                            np.stack([results[name]["hist_count"] for name in names]))
        ds["hist_edges"] = (("hist_group", "hist_edge"),
                            np.stack([results[name]["hist_edges"] for name in names]))
        ds = ds.assign_coords(hist_group=("hist_group",
                                          np.array([f"{network}/{name}" for name in names],
                                                   dtype=object)))
    return validate(ds)


# ---------------------------------------------------------------- capture


def capture(
    module: torch.nn.Module,
    inputs: Any,
    layer: str,
    *,
    units: Sequence[int] | None = None,
    spatial: str = "any",
    output: int | str | Callable[[Any], torch.Tensor] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
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
    spatial, output, batch_size, device, progress
        As for :func:`record`.

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
    dev = _check_module(module, device)
    _check_spatial(spatial)
    if not isinstance(layer, str):
        raise TypeError(f"layer: expected one module name (str), got {layer!r}")
    names = _resolve_layers(module, layer)
    if len(names) != 1:
        raise ValueError(f"layer: {layer!r} matches {len(names)} modules {names}; name one")
    columns = None if units is None else _unit_indices(units)
    batches = _Batches(inputs, batch_size, None, _module_dtype(module))
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

    with _inference(module):
        _run_pass(module, batches, names, dev, keep, output, spatial, progress, "capturing")
    return torch.cat(parts).numpy()


def _unit_indices(units: Any) -> list[int]:
    if isinstance(units, (str, bytes)) or not isinstance(units, Iterable):
        raise TypeError(f"units: expected a sequence of unit indices, got {units!r}")
    indices = [check_int(i, "units", minimum=0) for i in units]
    if not indices:
        raise ValueError("units: no unit index given")
    return indices
