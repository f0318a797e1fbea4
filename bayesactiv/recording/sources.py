"""Networks and inputs named on the command line: files, callables, local model folders.

A network is named by a ``torch.export`` file (``.pt2``, unflattened so that its layers keep
their module names), by ``package.module:callable`` that builds it (with an optional
``state_dict`` file of weights), or by a local Hugging Face model folder (when
``transformers`` is installed; nothing is downloaded). TorchScript files are refused with the
reason: a ScriptModule does not run forward hooks, so its layers cannot be recorded.

Inputs are named by a ``.pt`` file (a tensor, or a ``(inputs, labels)`` pair), a ``.npy`` file,
or ``package.module:callable`` returning a tensor, an array or a DataLoader.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ACTIVATIONS", "activation_layers", "load_inputs", "load_network"]

# module classes taken as the hidden layers of a network named without --layers
ACTIVATIONS = ("ReLU", "ReLU6", "LeakyReLU", "GELU", "GELUActivation", "NewGELUActivation",
               "SiLU", "Mish", "ELU", "SELU", "Tanh", "Sigmoid", "Softplus")


def _callable(spec: str, what: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{what}: cannot import {module_name!r} from {spec!r} ({err})") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ValueError(f"{what}: {module_name!r} has no {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{what}: {spec!r} is not callable")  # noqa: TRY004 - a bad argument
    return obj()


def load_network(spec: str, weights: str | None = None) -> torch.nn.Module:
    """The network a command-line name stands for (not a reference network's name).

    Parameters
    ----------
    spec : str
        A ``.pt2`` file of ``torch.export.save``, ``package.module:callable`` returning an
        ``nn.Module``, or a local Hugging Face model folder (with a ``config.json``).
    weights : str, optional
        A ``state_dict`` file (``torch.save``) loaded into the built network (callables only).

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ValueError
        Naming what was wrong: a missing file, a TorchScript file, an import that failed,
        a callable that did not return a module, weights that do not fit.

    Examples
    --------
    >>> net = load_network("torch.nn:Identity")
    >>> type(net).__name__
    'Identity'
    """
    path = Path(spec)
    if ":" in spec and not path.exists():
        net = _callable(spec, "network")
        if not isinstance(net, torch.nn.Module):
            raise ValueError(f"network: {spec!r} returned {type(net).__name__}, not a "
                             "torch.nn.Module")
        if weights is not None:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            try:
                net.load_state_dict(state)
            except RuntimeError as err:
                raise ValueError(f"--weights: {weights!r} does not fit {spec!r}: "
                                 f"{str(err).splitlines()[0]}") from None
        return net
    if weights is not None:
        raise ValueError("--weights: only for a network built by package.module:callable")
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ValueError(f"network: folder {spec!r} has no config.json (a Hugging Face "
                             "model folder is expected)")
        try:
            from transformers import AutoModel
        except ImportError:
            raise ValueError("network: a model folder needs the 'transformers' package "
                             "(pip install 'bayesactiv[transformer]')") from None
        return AutoModel.from_pretrained(str(path), local_files_only=True)
    if not path.exists():
        raise ValueError(f"network: {spec!r} is not a reference network, a file, a folder or "
                         "package.module:callable")
    if path.suffix == ".pt2":
        return torch.export.unflatten(torch.export.load(str(path)))
    try:
        with warnings.catch_warnings():  # (torch.jit is deprecated: only a probe here)
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError):
        pass
    else:
        raise ValueError(f"network: {spec!r} is a TorchScript file; a ScriptModule does not "
                         "run forward hooks, so its layers cannot be recorded: save the "
                         "network with torch.export.save (a .pt2 file) instead")
    raise ValueError(f"network: {spec!r} is not a torch.export file (.pt2)")


def load_inputs(spec: str) -> tuple[Any, Any]:
    """The inputs (and labels, if the source has them) a command-line name stands for.

    Parameters
    ----------
    spec : str
        A ``.pt`` file (a tensor, or an ``(inputs, labels)`` pair), a ``.npy`` file, or
        ``package.module:callable`` returning a tensor, an array or a DataLoader.

    Returns
    -------
    (inputs, labels or None)

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.zeros((3, 2)))
    >>> x, y = load_inputs(path)
    >>> x.shape, y
    ((3, 2), None)
    """
    path = Path(spec)
    if ":" in spec and not path.exists():
        got = _callable(spec, "inputs")
    elif not path.exists():
        raise ValueError(f"--inputs: no file {spec!r}")
    elif path.suffix == ".npy":
        got = np.load(path, allow_pickle=False)
    elif path.suffix == ".pt":
        got = torch.load(path, map_location="cpu", weights_only=True)
    else:
        raise ValueError(f"--inputs: expected a .pt or .npy file or package.module:callable, "
                         f"got {spec!r}")
    if isinstance(got, tuple | list) and len(got) == 2 and not isinstance(got[0], dict):
        return got[0], got[1]
    return got, None


def activation_layers(net: torch.nn.Module) -> list[str]:
    """Names of the modules of ``net`` that are activation functions (:data:`ACTIVATIONS`).

    Examples
    --------
    >>> from torch import nn
    >>> activation_layers(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    ['1']
    """
    return [name for name, m in net.named_modules()
            if name and type(m).__name__ in ACTIVATIONS]
