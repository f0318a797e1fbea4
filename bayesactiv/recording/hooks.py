"""The forward hooks: the only place in bayesactiv where they are registered.

:func:`run_pass` hooks the chosen layers, runs every batch through the module,
selects each layer's output tensor (:func:`select_output`) and reshapes it to
``[events, units]`` (:func:`events`); :func:`inference` runs the module in eval mode
without gradients and restores every submodule's training mode afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bayesactiv.recording import kernels
from bayesactiv.recording.inputs import Batches, batch_length, to_device

__all__ = ["TokenMask", "batch_mask", "events", "inference", "run_pass", "select_output"]


def select_output(out: Any, output: Any, layer: str) -> torch.Tensor:
    """The tensor to record from a layer's output ``out`` (a tensor, tuple or dict), by ``output``."""
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


@dataclass(frozen=True)
class TokenMask:
    """The real tokens of a batch: ``mask`` ``[batch, sequence]`` (bool) and, when some token
    is masked, ``lengths`` (each input's real tokens; None when every token is real).
    Read once per batch by :func:`batch_mask`, shared by every hooked layer."""

    mask: torch.Tensor
    lengths: torch.Tensor | None


def events(t: torch.Tensor, spatial: str, layer: str, batch: int,
           mask: TokenMask | None = None) -> tuple[torch.Tensor, str, int | torch.Tensor]:
    """Reshape a layer output to ``[events, units]``; return it, its kind and events per input.

    Events per input is an int, or (a sequence output with a ``mask`` of real tokens that
    leaves some out) an int64 tensor of each input's real tokens; masked tokens are not
    events."""
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
        if mask is not None and mask.mask.shape[1] != t.shape[1]:
            raise _mask_error(layer, t, mask.mask)
        if mask is None or mask.lengths is None:
            return t.reshape(-1, t.shape[2]), "token", t.shape[1]
        return t[mask.mask], "token", mask.lengths
    flat = t.flatten(2)
    if spatial == "any":
        return kernels.spatial_max(flat), "any", 1
    return flat.transpose(1, 2).reshape(-1, flat.shape[1]), "per_position", flat.shape[2]



def _mask_error(layer: str, t: torch.Tensor, mask: torch.Tensor) -> ValueError:
    return ValueError(f"layer {layer!r}: output of shape {tuple(t.shape)} has {t.shape[1]} "
                      f"positions but the attention mask marks {mask.shape[1]} tokens; record "
                      f"layers whose outputs follow the tokens, or pass attention_mask=None to "
                      f"count every position as an event")


def batch_mask(x: Any, mask_key: str | None) -> TokenMask | None:
    """The real tokens of a mapping batch (its ``mask_key`` entry), or None."""
    if mask_key is None or not isinstance(x, dict) or mask_key not in x:
        return None
    mask = x[mask_key]
    if not isinstance(mask, torch.Tensor) or mask.ndim != 2:
        raise ValueError(f"attention_mask: the batch's {mask_key!r} must be a [batch, sequence] "
                         f"tensor, got {getattr(mask, 'shape', type(mask).__name__)}")
    if mask.dtype != torch.bool:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"attention_mask: {mask_key!r} must hold 0/1 or booleans")
        mask = mask != 0
    return TokenMask(mask, None if bool(mask.all()) else mask.sum(1))


@contextmanager
def inference(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no gradients; every submodule's training mode is restored on exit."""
    modes = [(m, m.training) for m in module.modules()]
    try:
        if any(mode for _, mode in modes) or not _plain_modes(module, modes):
            module.eval()
        # (else every module is in eval mode already and eval() would only set it again)
        with torch.no_grad():
            yield
    finally:
        for m, mode in modes:
            if m.training != mode:  # (setting a module's attribute is not free)
                m.training = mode


def _plain_modes(module: torch.nn.Module, modes: list[tuple[torch.nn.Module, bool]]) -> bool:
    """Whether ``module.eval()`` is torch's own, setting each module's mode and nothing else."""
    return type(module).eval is _EVAL and all(type(m).train is _TRAIN for m, _ in modes)


_EVAL, _TRAIN = torch.nn.Module.eval, torch.nn.Module.train


def run_pass(module: torch.nn.Module, batches: Batches, layers: list[str], device: torch.device,
              handle: Callable[[str, torch.Tensor, str, int], None], output: Any, spatial: str,
              progress: bool, desc: str,
              on_batch: Callable[[Any, np.ndarray | None], None] | None = None,
              mask_key: str | None = "attention_mask",
              modules: dict[str, torch.nn.Module] | None = None) -> int:
    """One pass over the inputs with hooks on ``layers``; returns the number of inputs.

    A mapping batch is passed as keyword arguments (``module(**x)``); its ``mask_key``
    entry, when there, marks the real tokens of sequence outputs (:func:`events`).
    ``modules``: ``dict(module.named_modules())`` when the caller has it already."""
    mods = dict(module.named_modules()) if modules is None else modules
    calls = dict.fromkeys(layers, 0)
    state: dict[str, Any] = {"batch": 0, "mask": None}

    def make_hook(name: str) -> Callable:
        def hook(mod: torch.nn.Module, inp: Any, out: Any) -> None:
            calls[name] += 1
            if calls[name] > 1:
                raise RuntimeError(
                    f"layer {name!r}: the module ran more than once in one forward pass (a module "
                    f"reused at several places); its units are ambiguous; give each place its own "
                    f"module")
            t = select_output(out, output, name)
            a, kind, per_input = events(t.detach(), spatial, name, state["batch"],
                                        state["mask"])
            handle(name, a, kind, per_input)

        return hook

    handles = []
    n_inputs = 0
    try:
        for name in layers:
            handles.append(mods[name].register_forward_hook(make_hook(name)))
        bar: Any = batches
        if progress:  # (a disabled bar would pass the batches through as they are)
            from tqdm.auto import tqdm

            bar = tqdm(batches, total=batches.n_batches, desc=desc, unit="batch", leave=False)
        for x, y in bar:
            size = batch_length(x)
            if size == 0:
                continue
            for name in layers:
                calls[name] = 0
            state["batch"] = size
            x = to_device(x, device)
            state["mask"] = batch_mask(x, mask_key)
            if on_batch is not None:
                on_batch(x, y)
            if isinstance(x, dict):
                module(**x)
            else:
                module(x)
            missing = [name for name in layers if calls[name] == 0]
            if missing:
                raise RuntimeError(f"layers: {missing} did not run in the forward pass; "
                                   f"hook modules that the network's forward() calls")
            n_inputs += size
    finally:
        for h in handles:
            h.remove()
    if n_inputs == 0:
        raise ValueError("inputs: empty; no input was seen, nothing to record")
    return n_inputs
