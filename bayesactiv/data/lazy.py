"""Events out of core: statistics over a dask-backed ``fired``, one block of whole inputs at a time.

A dataset opened lazily (:func:`bayesactiv.open_dataset` of a large store, or the store
``record(..., keep_events=True, store=...)`` writes) holds ``fired`` as a dask array
chunked along ``sample``; everything else is in memory. The statistics that read events
split the events into :class:`EventBlock` s of whole inputs (:func:`event_blocks`, the
boundaries of ``fired``'s chunks moved to the next input boundary, so that no input is
split between blocks) and compute a partial result per block with a plain numpy
function, which :func:`reduce_blocks` sums in a tree and :func:`map_blocks` returns in
order. The blocks are dask tasks: they run on dask's default scheduler, or on a
``dask.distributed`` cluster when a client is active, and never is more than a few
blocks' events in memory at once.

The per-event coordinates (``input``, ``label``) are read into memory (8 bytes an event,
against ``fired``'s one bit per event and unit).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data.contract import DatasetError

__all__ = ["EventBlock", "event_blocks", "input_starts", "is_lazy", "map_blocks",
           "reduce_blocks"]

#: Events x units per block when ``fired`` is not chunked (about 8 MiB of bool).
BLOCK_CELLS = 2**23


@dataclass(frozen=True)
class EventBlock:
    """A block of whole inputs: its events and, for clustered events, its inputs.

    Attributes
    ----------
    index : int
        Position of the block, 0 first.
    events : slice
        Its events: rows ``events.start .. events.stop - 1`` of ``fired`` (along ``sample``).
    inputs : slice or None
        Its inputs, numbered 0, 1, ... in order of first appearance (the codes of
        :func:`bayesactiv.stats.resampling.event_clusters`); None for unclustered events
        (one event per input: the events are the inputs).
    """

    index: int
    events: slice
    inputs: slice | None


def is_lazy(ds: xr.Dataset | xr.DataArray, var: str = "fired") -> bool:
    """Whether ``var`` of ``ds`` (or the DataArray itself) is a dask array, not loaded.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.zeros((6, 2), dtype=bool)
    >>> ds = ba.make_dataset(f.sum(0), 6, network="n", layer="l", fired=f)
    >>> is_lazy(ds), is_lazy(ds.chunk({"sample": 2}))
    (False, True)
    """
    array = ds if isinstance(ds, xr.DataArray) else ds.get(var)
    if array is None:
        return False
    return not isinstance(array.variable._data, np.ndarray) and hasattr(array.data, "dask")


def input_starts(ds: xr.Dataset, hint: str = "") -> np.ndarray | None:
    """The event where each input's events start (ascending, 0 first); None when unclustered.

    Unclustered: no ``input`` coordinate on ``sample``, no events, or one event per input.

    Raises
    ------
    DatasetError
        When the events of an input are not consecutive along ``sample`` (``hint`` is added
        to the message: what the caller's user can do).

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> ds = ba.make_dataset([2], 4, network="n", layer="l", fired=np.array([[1], [0], [1], [0]],
    ...                      dtype=bool)).assign_coords(input=("sample", [0, 0, 1, 1]))
    >>> input_starts(ds).tolist()
    [0, 2]
    >>> input_starts(ds.assign_coords(input=("sample", [0, 1, 0, 1])))
    Traceback (most recent call last):
    ...
    bayesactiv.data.contract.DatasetError: input: the events of an input are not consecutive along 'sample'; statistics over whole inputs need each input's events together
    """
    if "input" not in ds.coords or ds["input"].dims != ("sample",):
        return None
    values = np.asarray(ds["input"].values)
    if values.size == 0:
        return None
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    if pd.unique(values).size != starts.size:  # (before the shortcut: [0, 1, 0, 1] is split)
        raise DatasetError("input: the events of an input are not consecutive along 'sample'; "
                           "statistics over whole inputs need each input's events together"
                           + hint)
    if starts.size == values.size:
        return None  # one event per input: unclustered
    return starts


def event_blocks(ds: xr.Dataset, *, events_per_block: int | None = None) -> list[EventBlock]:
    """Split the events of ``ds`` into blocks of whole inputs, in order.

    The block boundaries are those of ``fired``'s chunks along ``sample`` (or every
    ``events_per_block`` events; default: blocks of about :data:`BLOCK_CELLS` events x
    units when ``fired`` is in memory), each moved forward to the start of the next
    input, so that every input lies in one block.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired``.
    events_per_block : int, optional
        Events per block before the boundaries move to whole inputs.

    Returns
    -------
    list of EventBlock
        Covering all events; none empty.

    Raises
    ------
    DatasetError
        Without ``fired``, or when an input's events are not consecutive.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.zeros((6, 1), dtype=bool)
    >>> ds = ba.make_dataset(f.sum(0), 6, network="n", layer="l", fired=f)
    >>> [b.events for b in event_blocks(ds, events_per_block=4)]
    [slice(0, 4, None), slice(4, 6, None)]
    >>> tokens = ds.assign_coords(input=("sample", [0, 0, 0, 1, 1, 2]))
    >>> [(b.events, b.inputs) for b in event_blocks(tokens, events_per_block=2)]
    [(slice(0, 3, None), slice(0, 1, None)), (slice(3, 5, None), slice(1, 2, None)), (slice(5, 6, None), slice(2, 3, None))]
    """
    if "fired" not in ds.data_vars:
        raise DatasetError("fired: missing variable (the events are needed)")
    fired = ds["fired"]
    n_events = fired.sizes["sample"]
    if events_per_block is not None:
        if isinstance(events_per_block, bool) or not isinstance(events_per_block, int | np.integer) \
                or events_per_block < 1:
            raise ValueError(f"events_per_block: expected a positive integer, got {events_per_block!r}")
        bounds = np.arange(0, n_events, int(events_per_block))
    elif is_lazy(fired):
        sizes = fired.chunks[fired.dims.index("sample")]
        bounds = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    else:
        per = max(1, BLOCK_CELLS // max(1, fired.sizes["unit"]))
        bounds = np.arange(0, n_events, per)
    starts = input_starts(ds, hint=" (load the dataset into memory with .load() to read its "
                                   "events whole instead)")
    if starts is not None:  # move every boundary to the next input start
        moved = starts[np.minimum(np.searchsorted(starts, bounds), starts.size - 1)]
        moved = np.where(bounds > starts[-1], n_events, moved)
        bounds = np.unique(moved)
    edges = np.r_[bounds[bounds < n_events], n_events].astype(np.int64)
    edges = np.unique(np.r_[0, edges]) if n_events else np.zeros(1, dtype=np.int64)
    blocks = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        inputs = None
        if starts is not None:
            inputs = slice(int(np.searchsorted(starts, lo)), int(np.searchsorted(starts, hi)))
        blocks.append(EventBlock(i, slice(int(lo), int(hi)), inputs))
    return blocks


BlockFunction = Callable[[EventBlock, np.ndarray], Any]


def _tasks(ds: xr.Dataset, func: BlockFunction, blocks: list[EventBlock] | None,
           var: str) -> list[Any]:
    import dask

    if blocks is None:
        blocks = event_blocks(ds)
    array = ds[var].transpose("sample", ...).data
    call = dask.delayed(func, pure=True)
    return [call(block, array[block.events]) for block in blocks]


def map_blocks(ds: xr.Dataset, func: BlockFunction, *, blocks: list[EventBlock] | None = None,
               var: str = "fired") -> list[Any]:
    """``func(block, events)`` for every block of whole inputs, in order.

    ``events`` is the block's rows of ``var`` (``fired`` by default) as a numpy array
    (sample-major). The calls are dask tasks (the default scheduler, or a
    ``dask.distributed`` cluster when a client is active), for an in-memory ``fired``
    too. Use it when the per-block results are small; :func:`reduce_blocks` sums them.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with ``fired``.
    func : callable
        ``func(block: EventBlock, events: numpy.ndarray) -> result``; picklable for a
        distributed cluster (a module-level function or :func:`functools.partial` of one).
    blocks : list of EventBlock, optional
        Default :func:`event_blocks` of ``ds``.
    var : str
        The variable read, along ``sample`` (``fired``).

    Returns
    -------
    list
        One result per block.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.eye(4, 2, dtype=bool)
    >>> ds = ba.make_dataset(f.sum(0), 4, network="n", layer="l", fired=f).chunk({"sample": 2})
    >>> map_blocks(ds, lambda block, events: events.sum(0).tolist())
    [[1, 1], [0, 0]]
    """
    import dask

    return list(dask.compute(*_tasks(ds, func, blocks, var)))


def reduce_blocks(ds: xr.Dataset, func: BlockFunction, *,
                  combine: Callable[[Any, Any], Any] = operator.add,
                  blocks: list[EventBlock] | None = None, var: str = "fired") -> Any:
    """``func(block, events)`` for every block of whole inputs, combined pairwise in a tree.

    As :func:`map_blocks`, but the results are combined with ``combine`` (``+`` by
    default) as they arrive, in a balanced tree of dask tasks, so that only a few
    partial results exist at once: the way to sum per-block arrays as large as the
    final one (resampled counts, co-activation matrices). ``combine`` must be
    associative; the order of the blocks is kept (left to right).

    Parameters
    ----------
    ds, func, blocks, var
        As :func:`map_blocks`.
    combine : callable
        ``combine(left, right) -> result``.

    Returns
    -------
    The combined result.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.eye(5, 2, dtype=bool)
    >>> ds = ba.make_dataset(f.sum(0), 5, network="n", layer="l", fired=f).chunk({"sample": 2})
    >>> reduce_blocks(ds, lambda block, events: events.sum(0)).tolist()
    [1, 1]
    """
    import dask

    level = _tasks(ds, func, blocks, var)
    if not level:
        raise DatasetError("fired: no events to reduce")
    join = dask.delayed(combine, pure=True)
    while len(level) > 1:
        pairs = [join(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return dask.compute(level[0])[0]
