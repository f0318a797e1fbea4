"""TensorBoard scalars of a network's firing, per layer and epoch (an optional extra).

:func:`write_scalars` writes the plug-in summaries of :func:`bayesactiv.monitor.firing_scalars`
(``mfr``, ``frac_silent``, ``frac_saturated``, ``units`` and, with windows, ``mf``) to a
:class:`torch.utils.tensorboard.SummaryWriter`, one scalar per network, layer and quantity at
the epoch as the global step, under tags ``{prefix}/{network}/{layer}/{quantity}``. It needs
the ``tensorboard`` package (``pip install 'bayesactiv[monitor]'``).
"""

from __future__ import annotations

import math
from typing import Any

import xarray as xr

from bayesactiv.monitor.monitor import firing_scalars

try:
    from torch.utils.tensorboard import SummaryWriter
except ImportError as err:  # pragma: no cover - the extra is installed with the test suite
    raise ImportError("bayesactiv.monitor.tensorboard needs the tensorboard package: "
                      "pip install 'bayesactiv[monitor]' (or pip install tensorboard)") from err

__all__ = ["QUANTITIES", "SummaryWriter", "write_scalars"]

#: The quantities written, in this order (``mf`` only for datasets with ``window_count``).
QUANTITIES = ("mfr", "frac_silent", "frac_saturated", "mf", "units")


def write_scalars(writer: Any, ds: xr.Dataset, *, prefix: str = "firing",
                  step: int | None = None) -> int:
    """Write the per-layer firing summaries of ``ds`` as TensorBoard scalars.

    Parameters
    ----------
    writer : torch.utils.tensorboard.SummaryWriter
        Where to write (a Lightning ``TensorBoardLogger``'s ``experiment`` is one).
    ds : xarray.Dataset
        An activation dataset, e.g. what :meth:`bayesactiv.monitor.FiringMonitor.observe`
        returns or the monitor's whole history.
    prefix : str
        The first part of every tag.
    step : int, optional
        The global step of every scalar; default each unit's ``epoch`` (0 without one).

    Returns
    -------
    int
        The number of scalars written.

    Examples
    --------
    >>> import tempfile, bayesactiv as ba
    >>> from bayesactiv.monitor.tensorboard import SummaryWriter, write_scalars
    >>> ds = ba.make_dataset([0, 4], 8, network="mlp", layer="relu1", epoch=3)
    >>> with SummaryWriter(tempfile.mkdtemp()) as writer:
    ...     write_scalars(writer, ds)
    4
    """
    if not hasattr(writer, "add_scalar"):
        raise TypeError(f"writer: expected a torch.utils.tensorboard.SummaryWriter, got "
                        f"{type(writer).__name__}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix: expected a non-empty str, got {prefix!r}")
    frame = firing_scalars(ds)
    written = 0
    for row in frame.itertuples(index=False):
        at = int(step) if step is not None else max(int(row.epoch), 0)
        for quantity in QUANTITIES:
            value = getattr(row, quantity, None)
            if value is None or math.isnan(value):  # (absent, or NaN: no unit fired)
                continue
            writer.add_scalar(f"{prefix}/{row.network}/{row.layer}/{quantity}", float(value),
                              global_step=at)
            written += 1
    return written
