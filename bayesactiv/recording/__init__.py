"""Recording: from a torch network and its inputs to an activation dataset.

Threshold rules, the forward hooks (registered in this room only), the calibration
passes, the streaming reducer and its compiled kernels. The room is named
``recording`` rather than ``record`` so that importing it never shadows the
function :func:`bayesactiv.record`.
"""

from bayesactiv.recording.recorder import capture, default_network_name, record
from bayesactiv.recording.rules import Fixed, FractionOfMax, Quantile, ThresholdRule

__all__ = ["Fixed", "FractionOfMax", "Quantile", "ThresholdRule", "capture", "default_network_name",
           "record"]
