"""The unit view under its former name: :func:`unit_view` and the numbers it uses.

The drawing lives in :mod:`bayesactiv.viz.unit`, :func:`default_intervals`,
:func:`pick_unit` and :func:`threshold_value` in :mod:`bayesactiv.stats.units`, and
:func:`unit_activations` (which re-runs a torch network) in
:mod:`bayesactiv.recording.unit`; this module re-exports them, importing torch only
when :func:`unit_activations` is first asked for.

Examples
--------
>>> import bayesactiv as ba
>>> from bayesactiv.viz.unitview import unit_view
>>> fig = unit_view(ba.make_dataset([3, 7], 10, network="net", layer="fc"), "net/fc/1")
>>> len(fig.axes) >= 2
True
>>> import matplotlib.pyplot as plt
>>> plt.close(fig)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bayesactiv.stats.units import default_intervals, pick_unit, threshold_value
from bayesactiv.viz.unit import ImageSource, unit_view  # noqa: F401  (ImageSource: former home)

if TYPE_CHECKING:  # imported on first use: it brings torch
    from bayesactiv.recording.unit import unit_activations

__all__ = ["default_intervals", "pick_unit", "threshold_value", "unit_activations", "unit_view"]


def __getattr__(name: str) -> Any:
    if name == "unit_activations":
        from bayesactiv.recording.unit import unit_activations

        return unit_activations
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
