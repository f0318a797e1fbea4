"""The streaming reducer of one layer: the recording pass's state, batch after batch.

:class:`LayerReducer` keeps, per unit, the fired count, the window counts, the raw
``fired`` events (when kept), the minimum and maximum and the streamed summaries
(:mod:`bayesactiv.recording.summaries`), and for clustered events (tokens, per-position
convolution events) the per-input (cluster) sums. On CPU a batch is reduced by the fused
kernel of :mod:`bayesactiv.recording.kernels`, the cluster sums included; elsewhere by
torch reductions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bayesactiv.data.contract import CLUSTER_VARS, LAYER_CLUSTER_VARS
from bayesactiv.recording import kernels
from bayesactiv.recording.rules import round_down, round_down_array
from bayesactiv.recording.summaries import (
    bin_edges,
    first_range,
    grow_histogram,
    histogram,
    merge_moments,
    merge_topk,
    moments_from_sums,
    shape_statistics,
)

__all__ = ["LayerReducer"]


class LayerReducer:
    """The recording pass for one layer: counts, windows, events and raw-activation summaries.

    Parameters
    ----------
    rule_thr : torch.Tensor, optional
        The per-unit threshold (float64) from calibration; None for a Fixed rule,
        whose value :meth:`first` receives.
    window_size, keep_events, summaries, topk, hist_bins
        As for :func:`bayesactiv.record`.
    hist_range : (float, float), optional
        Histogram edges from calibration; None: from the first batch, grown as needed.

    Examples
    --------
    >>> import torch
    >>> from bayesactiv.recording.reducer import LayerReducer
    >>> rec = LayerReducer(None, None, False, True, 2, 4, None)
    >>> a = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    >>> rec.first(a, 0.5)
    >>> rec.update(a)
    >>> rec.result(2)["count"].tolist()
    [1, 1]
    >>> tokens = LayerReducer(None, None, False, False, 0, 2, None)
    >>> a = torch.tensor([[1.0], [1.0], [0.0], [1.0], [0.0], [0.0]])  # 3 inputs x 2 tokens
    >>> tokens.first(a, 0.0)
    >>> tokens.kind = "token"
    >>> tokens.update(a, 2)
    >>> {k: v.tolist() for k, v in tokens.result(1).items() if k.startswith("cluster_")}
    {'cluster_n': [3], 'cluster_fired': [2], 'cluster_count_sq': [5], 'cluster_count_n': [6], 'cluster_n_sq': [12]}
    """

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
        # per-input (cluster) sums and the layer's, from the first batch of a token or
        # per-position layer on (None: one event per input)
        self.cluster: dict[str, torch.Tensor | np.ndarray] | None = None
        self.layer_sums: torch.Tensor | np.ndarray | None = None
        self._fixed_inputs: tuple[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None = None

    def first(self, a: torch.Tensor, fixed: float | None) -> None:
        """Set up the state from the first batch ``a`` (``fixed``: the Fixed rule's value)."""
        u, dev, dt = a.shape[1], a.device, a.dtype
        self.fast = kernels.fast_path(a)
        if self.fast:
            self._first_fast(a, fixed)
        else:
            if self.thr_src is None:
                self.thr_src = torch.full((u,), float(fixed), dtype=torch.float64, device=dev)
            self.thr = round_down(self.thr_src.to(dev), dt)
            zeros = torch.zeros(u, dtype=torch.int64, device=dev)
            self.count = zeros.clone()
            self.zero = zeros.clone()
            self.partial = zeros.clone()
            self.lo = torch.full((u,), math.inf, dtype=dt, device=dev)
            self.hi = torch.full((u,), -math.inf, dtype=dt, device=dev)
            f64 = torch.zeros(u, dtype=torch.float64, device=dev)
            self.mean, self.m2, self.m3, self.m4 = (f64.clone(), f64.clone(), f64.clone(),
                                                    f64.clone())
            self.top_v = torch.empty(0, u, dtype=dt, device=dev)
            self.top_i = torch.empty(0, u, dtype=torch.int64, device=dev)
            self.hist = torch.zeros(self.bins, dtype=torch.float64, device=dev)
        self._first_range(a)

    def _first_fast(self, a: torch.Tensor, fixed: float | None) -> None:
        """The numpy state that the fused kernel updates in place (see :meth:`_update_fast`).

        Every statistic is a numpy array (on the CPU, where this path runs, numpy's calls
        cost less than torch's on a layer's few hundred values), so a batch costs no
        conversions; the kernel's outputs for the batch minimum, maximum and per-block
        histograms are allocated once."""
        x = a.numpy()
        u, dt = x.shape[1], x.dtype
        if self.thr_src is None:  # one value for every unit: rounded once
            thr_src = np.full(u, float(fixed), np.float64)
            thr = np.full(u, round_down_array(thr_src[:1], dt)[0], dt)
        else:
            thr_src = self.thr_src.double().cpu().numpy()
            thr = round_down_array(thr_src, dt)
        self.thr_src = thr_src
        self.thr = torch.from_numpy(thr)  # (for the per-input sums when torch does them)
        self.count, self.zero, self.partial, self.bad = np.zeros((4, u), dtype=np.int64)
        self.lo = np.full(u, np.inf, dt)
        self.hi = np.full(u, -np.inf, dt)
        self.sums = np.zeros((4, u), dtype=np.float64)  # power sums of a - shift
        # the shift only centres the power sums: the mean of the first events will do
        shift = np.mean(x[:256], axis=0, dtype=np.float64)
        self.shift = np.where(np.isfinite(shift), shift, 0.0)
        k = self.k if self.summaries else 0
        self.top_v = np.full((k, u), -np.inf, dt)
        self.top_i = np.full((k, u), -1, np.int64)
        self.hist = np.zeros(self.bins, dtype=np.int64)
        # units per block of the threaded and of the serial kernel (a batch takes either)
        self.blocks = (kernels.block_size(u), kernels.block_size(u, parallel=False))
        nblocks = -(-u // min(self.blocks))
        self.views = (thr, self.bad, self.zero, self.sums, self.shift, self.top_v, self.top_i)
        self.scratch = (np.empty(u, dtype=dt), np.empty(u, dtype=dt),
                        np.zeros((nblocks, self.bins), dtype=np.int64),
                        np.zeros(nblocks, dtype=np.int64))
        self.no_fired = np.empty((0, 0), dtype=np.bool_)

    def _first_range(self, a: torch.Tensor) -> None:
        """The histogram edges: given, from the first batch (``dynamic``), or none."""
        if self.hist_range is None and not self.summaries:
            self.hist_range = (0.0, 1.0)  # no histogram
            self.dynamic = False
        elif self.hist_range is None:
            x = a.numpy() if self.fast else a  # numpy's reductions are the faster on CPU
            lo, hi = float(x.min()), float(x.max())
            if math.isfinite(lo) and math.isfinite(hi):
                self.hist_range = first_range(lo, hi)
            else:
                self.hist_range = (0.0, 1.0)
            self.dynamic = True
        else:
            self.dynamic = False
            lo, hi = self.hist_range
            if not hi > lo:
                self.hist_range = (lo - 0.5, lo + 0.5)

    def update(self, a: torch.Tensor, per_input: int | torch.Tensor = 1) -> None:
        """Reduce one batch ``a`` of shape ``[events, units]``.

        ``per_input``: events of each input of the batch (an int when all inputs have as
        many, else an int64 tensor, one value per input, summing to ``a.shape[0]``); when an
        input can hold more than one event the per-input (cluster) sums are updated too.
        """
        clustered = self.kind in ("token", "per_position")
        inputs = self._inputs(a.shape[0], per_input) if self.fast and clustered else None
        if self.fast:
            self._update_fast(a, inputs)
        else:
            self._update_torch(a)
        if clustered and inputs is None:
            self._update_clusters(a, per_input)

    def _inputs(self, e: int,
                per_input: int | torch.Tensor) -> tuple[np.ndarray, np.ndarray] | None:
        """The batch's inputs that have events, for the fused kernel's per-input sums: the row
        after each one's last event and its events, int64 (None: left to
        :meth:`_update_clusters`, which also reports a ``per_input`` that does not fit)."""
        if isinstance(per_input, int):
            if per_input < 1 or e % per_input:
                return None
            key = (e, per_input)
            if self._fixed_inputs is None or self._fixed_inputs[0] != key:  # (built once)
                ends = np.arange(per_input, e + 1, per_input, dtype=np.int64)
                self._fixed_inputs = (key, (ends, np.full(e // per_input, per_input, np.int64)))
            inputs = self._fixed_inputs[1]
        else:
            t = per_input.cpu().numpy().astype(np.int64, copy=False)
            if t.ndim != 1 or (t.size and t.min() < 0) or int(t.sum()) != e:
                return None
            ends = np.cumsum(t)
            has = t > 0
            inputs = (ends, t) if has.all() else (ends[has], t[has])
        t = inputs[1]
        if t.size and t.max() >= 2**31:  # (the kernel counts an input's events in int32)
            return None
        return inputs

    def _update_clusters(self, a: torch.Tensor, per_input: int | torch.Tensor) -> None:
        """Add the batch's inputs to the sums over inputs of c_i**2, c_i t_i and t_i**2 (and
        count them, and the inputs where each unit fired), c_i being a unit's fired events in
        input i and t_i the input's events; inputs without events are left out."""
        e, u = a.shape
        fired = a > self.thr
        if isinstance(per_input, int):
            c = fired.view(e // max(per_input, 1), per_input, u).sum(1)
            t = torch.full((c.shape[0],), per_input, dtype=torch.int64, device=a.device)
        else:
            t = per_input.to(device=a.device, dtype=torch.int64)
            owner = torch.repeat_interleave(torch.arange(t.shape[0], device=a.device), t)
            c = torch.zeros(t.shape[0], u, dtype=torch.int64, device=a.device)
            c.index_add_(0, owner, fired.to(torch.int64))
        if self.cluster is None and self.fast:  # the state the fused kernel adds to
            self.cluster = {name: np.zeros(u, dtype=np.int64) for name in CLUSTER_VARS}
            self.layer_sums = np.zeros(3, dtype=np.int64)
        elif self.cluster is None:
            zeros = torch.zeros(u, dtype=torch.int64, device=a.device)
            self.cluster = {name: zeros.clone() for name in CLUSTER_VARS}
            self.layer_sums = torch.zeros(3, dtype=torch.int64, device=a.device)
        has = t > 0
        if not bool(has.all()):
            c, t = c[has], t[has]
        total = c.sum(1)  # the layer's fired events per input: units move together
        sums = {"cluster_fired": (c > 0).sum(0), "cluster_count_sq": (c * c).sum(0),
                "cluster_count_n": (c * t[:, None]).sum(0)}
        layer = torch.stack([(total * total).sum(), (total * t).sum(), total.sum()])
        cl = self.cluster
        if self.fast:  # numpy state
            sums = {name: v.numpy() for name, v in sums.items()}
            layer = layer.numpy()
        cl["cluster_n"] += t.shape[0]
        for name, v in sums.items():
            cl[name] += v
        cl["cluster_n_sq"] += int((t * t).sum())
        self.layer_sums += layer

    def _update_fast(self, a: torch.Tensor,
                     inputs: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """One fused pass of the numba kernel over the batch (CPU, float32/float64); with
        ``inputs`` (see :meth:`_inputs`) the same pass adds the per-input (cluster) sums."""
        x = a.contiguous().numpy()
        e, u = x.shape
        w = self.window_size
        fill, span = (0, max(e, 1)) if w is None else (self.fill, w)
        touched = (fill + e - 1) // span + 1
        wc = np.zeros((touched, u), dtype=np.int64)
        thr, bad, zero, sums, shift, top_v, top_i = self.views
        block = self.blocks[0] if e * u >= kernels.PARALLEL_MIN else self.blocks[1]
        nblocks = -(-u // block)
        lo, hi, hist, nout = self.scratch
        hist = hist[: nblocks if self.summaries else 1]  # (one row per block of units)
        nout = nout[:nblocks]
        fired = np.empty((e, u), dtype=np.bool_) if self.keep_events else self.no_fired
        if self.summaries:
            hist.fill(0)
        hlo, hhi = self.hist_range
        kern = kernels.fused_kernel(e * u)
        args = (x, thr, fill, span, wc, lo, hi, bad, self.keep_events, fired, self.summaries,
                zero, sums, shift, top_v, top_i, self.n, hist, hlo, hhi,
                self.bins / (hhi - hlo), nout, block)
        if inputs is None:
            kern(*args)
        else:
            ends, t = inputs
            if self.cluster is None:
                self.cluster = {name: np.zeros(u, dtype=np.int64) for name in CLUSTER_VARS}
                self.layer_sums = np.zeros(3, dtype=np.int64)
            cl = self.cluster
            per_unit = np.zeros((3, u), dtype=np.int64)  # fired, count_sq, count_n
            ct = np.zeros((nblocks, t.shape[0]), dtype=np.int64)
            kern(*args, ends, t, per_unit, ct)
            cl["cluster_n"] += t.shape[0]
            cl["cluster_fired"] += per_unit[0]
            cl["cluster_count_sq"] += per_unit[1]
            cl["cluster_count_n"] += per_unit[2]
            cl["cluster_n_sq"] += int((t * t).sum())
            total = ct[0] if nblocks == 1 else ct.sum(0)  # the layer's fired events per input
            self.layer_sums += np.array([(total * total).sum(), (total * t).sum(), total.sum()],
                                        dtype=np.int64)
        count = self.count
        if touched == 1:
            count += wc[0]
        else:
            count += wc.sum(0)
        if w is not None:
            self._close_windows(wc, fill, e, touched)
        if self.keep_events:
            self.fired.append(fired)
        np.minimum(self.lo, lo, out=self.lo)
        np.maximum(self.hi, hi, out=self.hi)
        if self.summaries:
            if self.dynamic and nout.any():
                amin, amax = float(lo.min()), float(hi.max())
                if math.isfinite(amin) and math.isfinite(amax):  # else: reported at the end
                    grown, self.hist_range = grow_histogram(torch.from_numpy(self.hist),
                                                            self.hist_range, amin, amax)
                    self.hist = grown.numpy()
                    hlo, hhi = self.hist_range
                    hist[:] = 0
                    kernels.compiled()["hist"](x, hlo, hhi, self.bins / (hhi - hlo), hist,
                                               block)
            total = self.hist
            total += hist[0] if hist.shape[0] == 1 else hist.sum(0)
        self.n += e

    def _close_windows(self, wc: np.ndarray, fill: int, e: int, touched: int) -> None:
        """Keep the windows the kernel completed (``wc``: counts of the windows it touched)."""
        w = self.window_size
        u = wc.shape[1]
        wc[0] += self.partial
        done = (fill + e) // w
        if done:  # (a copy when the open window's row would otherwise stay alive)
            self.windows.append(wc if done == touched else wc[:done].copy())
        self.partial = wc[done].copy() if done < touched else np.zeros(u, dtype=np.int64)
        self.fill = (fill + e) % w

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
            self.mean, self.m2, self.m3, self.m4 = merge_moments(self.n, self.mean, self.m2,
                                                                 self.m3, self.m4, a)
            self.zero += (a == 0).to(fired_f.dtype).sum(0).long()
            if self.k:
                self.top_v, self.top_i = merge_topk(self.top_v, self.top_i, a, b_hi, self.n, self.k)
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

    def _histogram(self, a: torch.Tensor, b_lo: torch.Tensor, b_hi: torch.Tensor) -> None:
        if self.dynamic:
            amin, amax = float(b_lo.min()), float(b_hi.max())
            if not (math.isfinite(amin) and math.isfinite(amax)):
                return  # reported as non-finite activations at the end of the pass
            self.hist, self.hist_range = grow_histogram(self.hist, self.hist_range, amin, amax)
        self.hist += histogram(a, self.bins, self.hist_range)

    def finite(self) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
        """Per-unit minimum and maximum, NaN where a unit saw a NaN or infinite value (numpy
        arrays on the fused kernel's path, tensors on torch's)."""
        if not self.fast:
            return self.lo, self.hi
        bad = self.bad > 0
        if not bad.any():
            return self.lo, self.hi
        nan = self.lo.dtype.type(math.nan)
        return np.where(bad, nan, self.lo), np.where(bad, nan, self.hi)

    def result(self, units: int) -> dict[str, Any]:
        """The layer's variables of the activation dataset, as numpy arrays (``n``: an int)."""
        if self.fast:  # numpy state
            out: dict[str, Any] = {"count": self.count, "n": self.n,
                                   "act_min": self.lo.astype(np.float64),
                                   "act_max": self.hi.astype(np.float64),
                                   "threshold": self.thr_src}
        else:
            out = {"count": self.count.cpu().numpy(), "n": self.n,
                   "act_min": self.lo.double().cpu().numpy(),
                   "act_max": self.hi.double().cpu().numpy(),
                   "threshold": self.thr_src.double().cpu().numpy()}
        if self.window_size is not None:
            if self.windows:
                out["window_count"] = np.concatenate([_host(wc) for wc in self.windows])
            else:
                out["window_count"] = np.zeros((0, units), dtype=np.int64)
        if self.keep_events and self.fired:  # (none left when the events were streamed to a store)
            out["fired"] = (np.concatenate(self.fired, 0) if self.fast
                            else torch.cat(self.fired, 0).numpy())
        if self.cluster is not None:
            out.update({name: _host(v) for name, v in self.cluster.items()})
            sums = _host(self.layer_sums)
            out.update({name: np.full(units, sums[j], dtype=np.int64)
                        for j, name in enumerate(LAYER_CLUSTER_VARS)})
        if self.summaries:
            out.update(self._summaries(units))
        return out

    def _summaries(self, units: int) -> dict[str, np.ndarray]:
        if self.fast:
            mean, m2, m3, m4 = moments_from_sums(self.shift, self.sums, self.n)
        else:
            mean, m2, m3, m4 = (t.cpu().numpy() for t in (self.mean, self.m2, self.m3, self.m4))
        var = m2 / max(self.n, 1)
        skew, kurt = shape_statistics(m2, m3, m4, self.n)
        tv = np.full((units, self.k), np.nan, np.float64)
        ti = np.full((units, self.k), -1, np.int64)
        got = self.top_v.shape[0]
        tv[:, :got] = _host(self.top_v).T  # (float64 from the activation dtype, exactly)
        ti[:, :got] = _host(self.top_i).T
        missing = ti < 0
        if missing.any():
            tv[missing] = np.nan  # fewer events than k
        return {
            "act_mean": mean,
            "act_var": np.maximum(var, 0.0),
            "act_skewness": skew,
            "act_kurtosis": kurt,
            "act_zero": _host(self.zero).astype(np.int64),
            "topk_value": tv,
            "topk_sample": ti,
            "hist_count": np.rint(_host(self.hist)).astype(np.int64),
            "hist_edges": bin_edges(self.hist_range[0], self.hist_range[1], self.bins),
        }


def _host(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A numpy array of a state's values (as it is when numpy holds them already)."""
    return values if isinstance(values, np.ndarray) else values.cpu().numpy()
