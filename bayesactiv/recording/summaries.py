"""The streamed summaries of raw activations: moments, top-k events and the layer histogram.

Functions on the running state of :class:`bayesactiv.recording.reducer.LayerReducer`
(its torch path merges batches with them; the fused CPU kernel of
:mod:`bayesactiv.recording.kernels` gathers the same statistics in one pass).

Histogram edges
---------------
With a calibration pass, each layer's histogram spans exactly its minimum to
maximum. Without one, the edges come from the first batch with 10% headroom on
each side (a side at exactly 0 stays at 0, the bound of a ReLU), and when a later
value falls outside, the range doubles towards it, merging pairs of bins, as
often as needed. The counts stay exact for the final edges; the price is a
coarser resolution when the first batch was unrepresentative, and one small
device-to-host copy per batch and layer to check the range.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bayesactiv.data.merge import combine_moments, shape_statistics

__all__ = ["HEADROOM", "bin_edges", "first_range", "grow_histogram", "histogram", "merge_moments",
           "merge_topk", "moments_from_sums", "shape_statistics"]

HEADROOM = 0.1  # of the first batch's range, added on each side of the histogram


def first_range(lo: float, hi: float) -> tuple[float, float]:
    """Histogram edges from the first batch's range ``[lo, hi]`` (finite), with headroom."""
    width = hi - lo if hi > lo else max(abs(lo), 1.0)
    lo_e = lo if lo == 0 else lo - HEADROOM * width
    hi_e = hi if (hi == 0 and lo < 0) else hi + HEADROOM * width
    if hi_e <= lo_e:
        hi_e = lo_e + 1.0
    return lo_e, hi_e


def bin_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    """The ``bins + 1`` edges of equal bins over ``[lo, hi]``: ``np.linspace(lo, hi, bins + 1)``.

    Examples
    --------
    >>> from bayesactiv.recording.summaries import bin_edges
    >>> bin_edges(0.0, 1.0, 4).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    return np.linspace(float(lo), float(hi), bins + 1)


def grow_histogram(hist: torch.Tensor, hist_range: tuple[float, float], amin: float,
                   amax: float) -> tuple[torch.Tensor, tuple[float, float]]:
    """Double the histogram range towards [amin, amax] (merging pairs of bins) until it fits."""
    lo, hi = hist_range
    while amin < lo or amax > hi:
        width = hi - lo
        half = hist.view(-1, 2).sum(1)
        if amax > hi:
            hist = torch.cat([half, torch.zeros_like(half)])
            hi = lo + 2 * width
        else:
            hist = torch.cat([torch.zeros_like(half), half])
            lo = hi - 2 * width
    return hist, (lo, hi)


def histogram(a: torch.Tensor, bins: int, hist_range: tuple[float, float]) -> torch.Tensor:
    """Counts (float64) of ``a`` in ``bins`` equal bins over ``hist_range``, edges clamped."""
    lo, hi = hist_range
    if a.device.type == "cpu":
        # same binning as torch.histc (bin = floor((x - lo) * bins / (hi - lo)), the top
        # edge in the last bin), cheaper on CPU
        scale = bins / (hi - lo)
        idx = torch.mul(a, scale).sub_(lo * scale).clamp_(0, bins - 1).to(torch.int32)
        return torch.bincount(idx.view(-1), minlength=bins).double()
    return torch.histc(a, bins, lo, hi).double()


def merge_moments(na: int, mean: torch.Tensor, m2: torch.Tensor, m3: torch.Tensor, m4: torch.Tensor,
                  a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean and centred power sums of ``na`` events merged with the batch ``a`` (Pebay 2008).

    The batch's own power sums are taken in the activation dtype, the merge in float64.
    """
    nb = a.shape[0]
    mb = a.mean(0)
    d = a - mb
    d2 = d * d
    m2b = d2.sum(0).double()
    m3b = (d2 * d).sum(0).double()
    m4b = (d2 * d2).sum(0).double()
    mb = mb.double()
    if na == 0:
        return mb, m2b, m3b, m4b
    return combine_moments(na, (mean, m2, m3, m4), nb, (mb, m2b, m3b, m4b))


def moments_from_sums(shift: np.ndarray, sums: np.ndarray, n_events: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and centred power sums (times n) from the power sums of ``a - shift`` (float64).

    The operations, in their order, of the same formulas on float64 tensors, taken in
    numpy (cheaper on the few hundred values of a layer) with the same results bit for bit:
    torch's ``d ** 3`` is ``d * d * d``, and ``d ** 4`` is left to torch, whose power differs
    from numpy's in the last bit."""
    n = max(n_events, 1)
    s1, s2, s3, s4 = sums / n  # (one division of the four rows)
    d = s1  # mean - shift
    mean = shift + d
    m2 = (s2 - d * d) * n
    m3 = (s3 - 3 * d * s2 + 2 * (d * d * d)) * n
    d4 = torch.from_numpy(d).pow(4).numpy()
    m4 = (s4 - 4 * d * s3 + 6 * d * d * s2 - 3 * d4) * n
    return mean, m2, m3, m4


def merge_topk(top_v: torch.Tensor, top_i: torch.Tensor, a: torch.Tensor, b_hi: torch.Tensor,
               n0: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each unit's ``k`` largest activations (and event numbers) after the batch ``a``.

    ``a``'s events are numbered from ``n0``; ``b_hi`` is its per-unit maximum. Ties keep
    the earlier event. On CPU, once full, ``top_v`` and ``top_i`` are updated in place.
    """
    e, u = a.shape
    if a.device.type != "cpu" or top_v.shape[0] < k:
        # merge the batch whole: torch.topk over the stacked candidates
        vals = torch.cat([top_v, a], 0)
        ids = torch.cat([top_i, torch.arange(n0, n0 + e, device=a.device)[:, None].expand(e, u)])
        top = torch.topk(vals, min(k, vals.shape[0]), dim=0)
        return top.values, ids.gather(0, top.indices)
    # on CPU, once full: only units whose batch maximum beats their k-th best need work,
    # and only their events above it (ties keep the earlier event)
    kth = top_v[-1]
    if not bool((b_hi > kth).any()):
        return top_v, top_i
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
    cand_i[rank[keep], cu[keep]] = ev[keep] + n0
    both_v = torch.cat([top_v[:, cols], cand_v], 0)
    both_i = torch.cat([top_i[:, cols], cand_i], 0)
    top = torch.topk(both_v, k, dim=0)
    top_v[:, cols] = top.values
    top_i[:, cols] = both_i.gather(0, top.indices)
    return top_v, top_i
