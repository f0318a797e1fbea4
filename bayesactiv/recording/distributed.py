"""``record`` under torch.distributed: each rank records its shard, the ranks agree on what
needs the whole recording, and every rank returns the dataset of all the inputs.

What is reduced where:

* before recording, when a threshold rule or the histogram needs statistics of the whole
  recording, each rank runs the min/max calibration pass over its shard and the per-unit
  minima and maxima are all-reduced (``MIN``, ``MAX``); ``FractionOfMax`` then takes its
  fraction of the global maximum and every layer's histogram the global range, so all ranks
  record with the same thresholds and bin edges;
* after recording, the ranks' datasets are all-gathered (``all_gather_object``) and merged in
  rank order by :func:`bayesactiv.merge`: counts and ``n`` exactly, moments to float
  rounding, windows, kept events and top-k event numbers rank-major (rank 0's inputs first).

``Quantile`` thresholds stay exact: after the min/max pass the event counts are summed; after
the histogram pass the per-unit bin counts (and the counts at the minimum) are summed, so every
rank locates the same bin of the order statistic; after the refinement pass each rank's
smallest candidates inside that bin are all-gathered and the smallest of their union kept, and
the next value above the bin is reduced with ``MIN``: the same values a single process keeps.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["gather_and_merge", "process_group", "reduce_count", "reduce_extremes",
           "reduce_histogram", "reduce_quantile_buffer"]


def process_group() -> tuple[int, int] | None:
    """``(rank, world_size)`` when a torch.distributed process group is initialized and has
    more than one rank, else None.

    Examples
    --------
    >>> process_group() is None  # a plain process
    True
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return dist.get_rank(), dist.get_world_size()


def reduce_extremes(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-unit minima and maxima over all ranks (in place on copies)."""
    dist = torch.distributed
    lo, hi = lo.clone(), hi.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return lo, hi


def gather_and_merge(ds: Any) -> Any:
    """Every rank's dataset, gathered on every rank and merged in rank order."""
    from bayesactiv.data import merge

    parts: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, ds)
    return merge(parts)


def reduce_histogram(cal: Any) -> None:
    """Sum a :class:`~bayesactiv.recording.rules.Calibration`'s histogram pass over the ranks."""
    dist = torch.distributed
    dist.all_reduce(cal.hist, op=dist.ReduceOp.SUM)
    dist.all_reduce(cal.at_min, op=dist.ReduceOp.SUM)


def reduce_count(n: int) -> int:
    """The events seen by all ranks."""
    total = torch.tensor([n], dtype=torch.int64)
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
    return int(total.item())


def reduce_quantile_buffer(cal: Any) -> None:
    """Keep the smallest candidates of all ranks (each rank's buffer has the same shape) and
    the smallest value above the target bin."""
    dist = torch.distributed
    parts = [torch.empty_like(cal.buffer) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, cal.buffer.contiguous())
    both = torch.cat(parts, 0)
    cal.buffer = torch.topk(both, cal.buffer.shape[0], dim=0, largest=False).values
    dist.all_reduce(cal.next_min, op=dist.ReduceOp.MIN)
