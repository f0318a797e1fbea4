"""The activations of one unit, re-run from the network (for :func:`bayesactiv.viz.unit.unit_view`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesactiv.data.checks import check_int
from bayesactiv.recording.recorder import capture

__all__ = ["unit_activations"]


def unit_activations(
    module: Any,
    inputs: Any,
    layer: str,
    index: int,
    *,
    spatial: str = "per_position",
    output: Any = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Re-run a torch network and return the activations of one unit, one value per event.

    The events are those of :func:`bayesactiv.record` (it uses
    :func:`bayesactiv.recording.capture`, the recording's own hook and event rules):
    an input for a ``[batch, features]`` output; a token for a ``[batch, sequence,
    features]`` output, ``index`` being the feature; for a convolution, ``index`` is
    the channel, and an event is an input (its maximum over positions) with
    ``spatial="any"`` or an (input, position) pair with ``spatial="per_position"``.
    The network runs in eval mode without gradients; every submodule's training
    mode is restored afterwards.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    inputs : torch.Tensor, numpy.ndarray or iterable
        Inputs as for :func:`bayesactiv.record`.
    layer : str
        Module name as in ``module.named_modules()``.
    index : int
        Unit index within the layer (the feature, or the channel of a convolution).
    spatial : {"any", "per_position"}
        Events of a convolution channel, as in :func:`bayesactiv.record`.
    output : int, str or callable, optional
        Which tensor of a layer returning a tuple or dict, as in :func:`bayesactiv.record`.
    batch_size : int, optional
        Inputs per forward pass for a tensor or array (default 256).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_events,)``, float64, events in input order (input-major).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    >>> unit_activations(net, torch.ones(4, 2), "1", 0).shape
    (4,)
    >>> unit_activations(net, torch.ones(4, 5, 2), "1", 2).shape  # 4 inputs x 5 tokens
    (20,)
    """
    index = check_int(index, "index", minimum=0)
    values = capture(module, inputs, layer, units=[index], spatial=spatial, output=output,
                     batch_size=batch_size)
    return values[:, 0].astype(np.float64)
