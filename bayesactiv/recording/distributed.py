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

``Quantile`` thresholds need an exact distributed quantile and are refused for now.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["gather_and_merge", "process_group", "reduce_extremes"]


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
