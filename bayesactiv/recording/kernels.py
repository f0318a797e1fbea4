"""The compiled CPU kernels of the recording pass, and their dispatch.

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

On CPU the recording pass reduces each batch with one compiled numba kernel per layer: one
read of the [events, units] activations gives, per unit, the fired and window counts, the
batch minimum and maximum, the count of non-finite values, and with summaries the exact-zero
count, the power sums of ``a - shift`` (shift: the unit's mean over the first batch, fixed),
the top-k events (kept sorted in place) and the layer histogram (a private one per block of
units, summed afterwards); for clustered events (inputs of consecutive rows), each unit's
fired events per input, summed over the inputs as the cluster sums, and each block's fired
events per input, from which the layer's sums follow. Units are split in blocks that run in parallel (``prange``).
CUDA tensors, or a machine without numba, take the torch path
(:meth:`bayesactiv.recording.reducer.LayerReducer.update`).

Threads
-------
Below ``PARALLEL_MIN`` activations a batch is reduced on the calling thread. numba's
thread pool is a second OpenMP runtime beside torch's, and torch's workers keep spinning
for milliseconds after each operation (about 4 ms of CPU per ``relu`` of a 500 x 2048
batch on a 2-core machine): a parallel kernel right after the layer's forward pass
competes with them for the cores, and its own idle workers then compete with the next
layer's matrix product; hence the high threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["PARALLEL_MIN", "block_size", "compiled", "fast_path", "fused_kernel", "spatial_max"]

_prange = range  # replaced by numba.prange before compilation
_KERNELS: dict[str, Any] = {}
PARALLEL_MIN = 2**20  # activations in a batch from which the kernel runs on several threads
_HIST_LANES = 8  # sub-histograms per block, so that increments of one bin do not wait on each other
_FLUSH = 2**30 - 1  # the fused kernel's int32 counts go into the int64 outputs at least this often


# One function on purpose: the kernel reads every activation once, and splitting it into
# numba functions per statistic would either read the batch several times or rely on
# inlining across calls inside the hot loop; both cost speed.
def _fused_kernel(a, thr, fill, w, wc, lo, hi, bad, keep, fired, summaries, zero, s, shift,
                  top_v, top_i, n0, hist, hlo, hhi, hscale, nout, block, ends=None, tlen=None,
                  cl=None, ct=None):  # pragma: no cover
    # Blocks of units run in parallel. Inside a block the events are read row by row, and the
    # per-unit accumulators are small local 1-d arrays (the counts int32, flushed into the
    # int64 outputs at the end of each window or of the batch and every 2**30 events, so they
    # cannot overflow): the inner loops over units vectorise. The non-vectorisable work runs on few
    # values: the top k only for units whose maximum over a chunk of events beats their k-th
    # best, the histogram as a scatter of precomputed bins.
    # With ``ends`` (the batch's inputs that have events: the row after each one's last event,
    # ``tlen`` its events) the same read counts each unit's fired events c in each input and
    # adds, per unit, [c > 0, c * c, c * t] into ``cl`` and the block's sum of c into
    # ``ct[block, input]`` (None: the branches are compiled out).
    e, u = a.shape
    k = top_v.shape[0]
    bins = hist.shape[1]
    nblocks = (u + block - 1) // block
    for b in _prange(nblocks):
        c0 = b * block
        m = min(u, c0 + block) - c0
        t = thr[c0 : c0 + m].copy()
        sh = shift[c0 : c0 + m].copy()
        nf = np.zeros(m, dtype=np.int32)  # fired in the window (flushed at its end)
        nb = np.zeros(m, dtype=np.int32)  # non-finite
        nz = np.zeros(m, dtype=np.int32)  # exact zeros
        s0 = np.zeros(m, dtype=np.float64)  # power sums of a - shift
        s1 = np.zeros(m, dtype=np.float64)
        s2 = np.zeros(m, dtype=np.float64)
        s3 = np.zeros(m, dtype=np.float64)
        mn = np.full(m, np.inf, dtype=a.dtype)
        mx = np.full(m, -np.inf, dtype=a.dtype)
        cm = np.full(m, -np.inf, dtype=a.dtype)  # maximum over the current chunk of events
        kth = np.full(m, np.inf, dtype=a.dtype)
        if k > 0:
            kth[:] = top_v[k - 1, c0 : c0 + m]
        bi = np.zeros(m, dtype=np.intp)
        hl = np.zeros((_HIST_LANES, bins), dtype=np.int64)
        out = 0
        chunk0 = 0
        hmax = bins - 1.0
        if ends is not None:
            ci = np.zeros(m, dtype=np.int32)  # fired in the current input
            cf = np.zeros(m, dtype=np.int64)  # inputs where the unit fired
            cq = np.zeros(m, dtype=np.int64)  # sum of c * c
            cn = np.zeros(m, dtype=np.int64)  # sum of c * t
            inp = 0  # the current input
        for r in range(e):
            row = a[r, c0 : c0 + m]
            for j in range(m):
                x = row[j]
                f = np.int32(x > t[j])
                nf[j] += f
                if ends is not None:
                    ci[j] += f
                mn[j] = x if x < mn[j] else mn[j]  # noqa: FURB136 (a select vectorises)
                mx[j] = x if x > mx[j] else mx[j]  # noqa: FURB136
                nb[j] += np.int32(x - x != 0)  # NaN or infinite
            if keep:
                for j in range(m):
                    fired[r, c0 + j] = row[j] > t[j]
            if summaries:
                for j in range(m):
                    x = row[j]
                    nz[j] += np.int32(x == 0)
                    d = np.float64(x) - sh[j]
                    d2 = d * d
                    s0[j] += d
                    s1[j] += d2
                    s2[j] += d2 * d
                    s3[j] += d2 * d2
                    cm[j] = x if x > cm[j] else cm[j]  # noqa: FURB136
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
                j = 0  # consecutive units go to consecutive lanes
                while j + _HIST_LANES <= m:
                    for q in range(_HIST_LANES):
                        hl[q, bi[j + q]] += 1
                    j += _HIST_LANES
                for q in range(m - j):
                    hl[q, bi[j + q]] += 1
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
            if ends is not None:  # noqa: SIM102 (numba compiles out a bare None test)
                if r + 1 == ends[inp]:  # the last event of the input
                    tp = tlen[inp]
                    tot = 0
                    for j in range(m):
                        cc = np.int64(ci[j])
                        cf[j] += cc > 0
                        cq[j] += cc * cc
                        cn[j] += cc * tp
                        tot += cc
                        ci[j] = 0
                    ct[b, inp] = tot
                    inp += 1
            due = (r & _FLUSH) == _FLUSH  # the int32 counts are due a flush
            if r == e - 1 or (fill + r + 1) % w == 0 or due:  # the window of event r ends here
                wi = (fill + r) // w
                for j in range(m):
                    wc[wi, c0 + j] += nf[j]
                    nf[j] = 0
            if r == e - 1 or due:
                for j in range(m):
                    bad[c0 + j] += nb[j]
                    nb[j] = 0
                    zero[c0 + j] += nz[j]
                    nz[j] = 0
        for j in range(m):
            lo[c0 + j] = mn[j]
            hi[c0 + j] = mx[j]
        if ends is not None:
            for j in range(m):
                cl[0, c0 + j] += cf[j]
                cl[1, c0 + j] += cq[j]
                cl[2, c0 + j] += cn[j]
        if summaries:
            for j in range(m):
                s[0, c0 + j] += s0[j]
                s[1, c0 + j] += s1[j]
                s[2, c0 + j] += s2[j]
                s[3, c0 + j] += s3[j]
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


def spatial_max(flat: torch.Tensor) -> torch.Tensor:
    """``flat.amax(2)``; on CPU one compiled pass (torch's reduction over a short axis is slow)."""
    if not (fast_path(flat) and flat.shape[2] > 0):
        return flat.amax(2)
    x = flat.contiguous().numpy()
    out = np.empty(x.shape[:2], dtype=x.dtype)
    kern = _KERNELS["max"] if x.size >= 4 * PARALLEL_MIN else _KERNELS["max_serial"]
    kern(x, out)
    return torch.from_numpy(out)


def compiled() -> dict[str, Any] | None:
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
        # starting numba's thread pool (its OpenMP layer) resets the OpenMP thread count that
        # torch's intra-op threads follow: keep the user's torch.set_num_threads
        torch_threads = torch.get_num_threads()
        _KERNELS["threads"] = numba.get_num_threads()
        torch.set_num_threads(torch_threads)
    return _KERNELS if _KERNELS["fused"] is not None else None


def block_size(units: int, parallel: bool = True) -> int:
    """Units per block: for the threaded kernel at least two blocks per thread, 16 to 256
    units each; for the serial one 256 (the most whose accumulators stay in the L1 cache:
    smaller blocks only add loop overhead per event)."""
    if not parallel:
        return 256
    threads = _KERNELS.get("threads", 1) or 1
    per = -(-units // (2 * threads))
    return int(min(256, max(16, -(-per // 16) * 16)))


def fast_path(a: torch.Tensor) -> bool:
    """Whether the fused numba kernel can reduce this batch (CPU float32/float64, numba here)."""
    return (a.device.type == "cpu" and a.dtype in (torch.float32, torch.float64)
            and compiled() is not None)



def fused_kernel(size: int) -> Callable:
    """The compiled fused kernel for a batch of ``size`` activations: threaded from PARALLEL_MIN."""
    kernels = _KERNELS
    return kernels["fused"] if size >= PARALLEL_MIN else kernels["fused_serial"]
