"""What a recording reads: the inputs as batches, the layers by name, the module and its device."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from bayesactiv.data.checks import check_int

__all__ = ["Batches", "batch_length", "check_module", "check_spatial", "module_dtype",
           "resolve_layers", "to_device", "unit_indices"]


def _mapping_length(batch: Mapping, what: str) -> int:
    """The common leading size of the tensors and arrays of a mapping batch."""
    sizes = {k: int(v.shape[0]) for k, v in batch.items()
             if isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim > 0}
    if not sizes:
        raise TypeError(f"inputs: {what} is a mapping with no tensor or array values "
                        f"(keys {list(batch)}); expected e.g. a tokenizer's output")
    if len(set(sizes.values())) > 1:
        raise ValueError(f"inputs: the tensors of {what} disagree on the batch size {sizes}; "
                         f"the first dimension of each must be the batch")
    return next(iter(sizes.values()))


def batch_length(x: Any) -> int:
    """Inputs in a batch: a tensor's first dimension, or a mapping's common one."""
    return _mapping_length(x, "a batch") if isinstance(x, Mapping) else int(x.shape[0])


def to_device(x: Any, device: torch.device) -> Any:
    """A batch on ``device``: a tensor moved, or a mapping with its tensors moved."""
    if isinstance(x, Mapping):
        return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                for k, v in x.items()}
    return x.to(device, non_blocking=True)


def _mapping_batch(item: Mapping, dtype: torch.dtype, label_key: str | None
                   ) -> tuple[dict[str, Any], np.ndarray | None]:
    """A mapping batch as keyword arguments of the module (arrays as tensors, floating
    values in the module's dtype) and its labels, taken out of it when ``label_key`` names
    one of its keys."""
    batch = dict(item)
    y = None
    if label_key is not None:
        if label_key not in batch:
            raise ValueError(f"labels: the key {label_key!r} is not in the batch (keys "
                             f"{list(batch)})")
        y = _to_numpy(batch.pop(label_key))
    for k, v in batch.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(v)
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dtype != dtype:
            v = v.to(dtype)
        batch[k] = v
    _mapping_length(batch, "a batch")
    return batch, y


class Batches:
    """Re-iterable view of the inputs as ``(x, labels or None)`` batches.

    ``x`` is a tensor, or a dict of keyword arguments of the module for inputs that are
    mappings (a tokenizer's output; the module is called as ``module(**x)``). ``labels``
    is an array of one label per input, or the key of a mapping batch that holds them
    (taken out of the batch, not passed to the module).
    """

    def __init__(self, inputs: Any, batch_size: int | None, labels: Any, dtype: torch.dtype):
        self.dtype = dtype
        self.label_key = labels if isinstance(labels, str) else None
        self.labels = None if labels is None or self.label_key else np.asarray(labels)
        if isinstance(inputs, Mapping):
            self._init_mapping(inputs, batch_size)
            return
        self.mapping = None
        if self.label_key is not None and isinstance(inputs, (np.ndarray, torch.Tensor)):
            raise ValueError(f"labels: a key ({labels!r}) names labels inside mapping batches "
                             f"(e.g. a tokenizer's output); these inputs are not mappings")
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
        elif isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes)):
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
                f"inputs: expected a tensor, a numpy array, a mapping of tensors (a "
                f"tokenizer's output) or an iterable of batches, got {type(inputs).__name__}"
            )

    def _init_mapping(self, inputs: Mapping, batch_size: int | None) -> None:
        """One mapping of tensors over all inputs (a tokenizer's output), split in batches."""
        self.mapping, y = _mapping_batch(inputs, self.dtype, self.label_key)
        if y is not None:
            self.labels = y
        total = _mapping_length(self.mapping, "inputs")
        if total == 0:
            raise ValueError("inputs: empty (batch size 0); nothing to record")
        batch_size = 256 if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
        if self.labels is not None and self.labels.shape[0] != total:
            raise ValueError(f"labels: {self.labels.shape[0]} labels for {total} inputs")
        self.tensor = None
        self.iterable = None
        self.total = total
        self.batch_size = batch_size
        self.reiterable = True
        self.n_batches = -(-total // batch_size)

    def __iter__(self) -> Iterator[tuple[Any, np.ndarray | None]]:
        offset = 0
        if self.mapping is not None:
            for start in range(0, self.total, self.batch_size):
                stop = start + self.batch_size
                x = {k: v[start:stop] if isinstance(v, torch.Tensor) and v.ndim > 0 else v
                     for k, v in self.mapping.items()}
                y = None if self.labels is None else self.labels[start:stop]
                yield x, y
            return
        if self.tensor is not None:
            for start in range(0, self.tensor.shape[0], self.batch_size):
                x = self.tensor[start : start + self.batch_size]
                y = None if self.labels is None else self.labels[start : start + len(x)]
                yield x, y
            return
        for item in self.iterable:  # type: ignore[union-attr]
            y = None
            if isinstance(item, Mapping):
                x, y = _mapping_batch(item, self.dtype, self.label_key)
                if self.labels is not None:
                    n = batch_length(x)
                    y = self.labels[offset : offset + n]
                offset += batch_length(x)
                yield x, y
                continue
            if self.label_key is not None:
                raise ValueError(f"labels: a key ({self.label_key!r}) names labels inside "
                                 f"mapping batches, but a batch is {type(item).__name__}")
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
                    f"inputs: a batch must be a tensor, an array, an (x, y) tuple or a "
                    f"mapping of keyword arguments (a tokenizer's output), got "
                    f"{type(x).__name__}"
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


def resolve_layers(module: torch.nn.Module, layers: str | Sequence[str],
                   modules: Mapping[str, torch.nn.Module] | None = None) -> list[str]:
    """The module names ``layers`` chooses (names or glob patterns), in order, each once.

    ``modules``: ``dict(module.named_modules())`` when the caller has it already."""
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("layers: no layer given; name modules as in module.named_modules()")
    if modules is None:
        modules = dict(module.named_modules())
    names = [name for name in modules if name]
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


def _any_meta(module: torch.nn.Module) -> bool:
    """Whether a parameter or buffer of the module is on the ``meta`` device (one walk over
    the modules, the check of :func:`check_module` before it names them)."""
    for m in module.modules():
        for t in (*m._parameters.values(), *m._buffers.values()):
            if t is not None and t.is_meta:
                return True
    return False


def _module_device(module: torch.nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def module_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype of the first floating-point parameter (torch's default without one)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def check_module(module: Any, device: str | torch.device | None) -> torch.device:
    """Refuse what cannot be run; return the device where the inputs go and the reductions run."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    if _any_meta(module):
        on_meta = [name for name, t in [*module.named_parameters(), *module.named_buffers()]
                   if t.is_meta]
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


def check_spatial(spatial: Any) -> None:
    """Refuse a ``spatial`` that is neither ``"any"`` nor ``"per_position"``."""
    if spatial not in ("any", "per_position"):
        raise ValueError(f"spatial: expected 'any' or 'per_position', got {spatial!r}")


def unit_indices(units: Any) -> list[int]:
    """Check a sequence of unit indices (non-negative integers, at least one)."""
    if isinstance(units, (str, bytes)) or not isinstance(units, Iterable):
        raise TypeError(f"units: expected a sequence of unit indices, got {units!r}")
    indices = [check_int(i, "units", minimum=0) for i in units]
    if not indices:
        raise ValueError("units: no unit index given")
    return indices

