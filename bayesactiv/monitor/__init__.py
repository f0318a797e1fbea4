"""Watching a network while it trains: :class:`FiringMonitor` records a probe's firing
epoch after epoch (:meth:`FiringMonitor.observe`) and counts firing on the training
batches themselves (:meth:`FiringMonitor.training_batches`), keeping the history as an
activation dataset with an ``epoch`` coordinate, saved atomically to a zarr store.

The indicator (:mod:`bayesactiv.monitor.indicator`): per layer and epoch, posterior MFR,
fraction of dead units and MF (:func:`firing_trajectory`), the posterior change of MFR
against an early level (:func:`mfr_change`) and an alarm on it (:class:`FiringAlarm`).
Beside it, the Hamming-distance indicator of arXiv 2504.17160 (:func:`oui`), a baseline.

The optional extras live in their own modules, imported only when used:
:mod:`bayesactiv.monitor.lightning` (a PyTorch Lightning callback) and
:mod:`bayesactiv.monitor.tensorboard` (TensorBoard scalars).
"""

from bayesactiv.monitor.hamming import oui
from bayesactiv.monitor.indicator import AlarmResult, FiringAlarm, firing_trajectory, mfr_change
from bayesactiv.monitor.monitor import PROBE_SOURCE, FiringMonitor, firing_scalars
from bayesactiv.monitor.training import TRAINING_SOURCE, TrainingBatchCounter, training_network

__all__ = ["PROBE_SOURCE", "TRAINING_SOURCE", "AlarmResult", "FiringAlarm", "FiringMonitor",
           "TrainingBatchCounter", "firing_scalars", "firing_trajectory", "mfr_change", "oui",
           "training_network"]
