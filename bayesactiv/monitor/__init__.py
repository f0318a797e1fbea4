"""Watching a network while it trains: :class:`FiringMonitor` records a probe's firing
epoch after epoch (:meth:`FiringMonitor.observe`) and counts firing on the training
batches themselves (:meth:`FiringMonitor.training_batches`), keeping the history as an
activation dataset with an ``epoch`` coordinate, saved atomically to a zarr store.

The optional extras live in their own modules, imported only when used:
:mod:`bayesactiv.monitor.lightning` (a PyTorch Lightning callback) and
:mod:`bayesactiv.monitor.tensorboard` (TensorBoard scalars).
"""

from bayesactiv.monitor.monitor import PROBE_SOURCE, FiringMonitor, firing_scalars
from bayesactiv.monitor.training import TRAINING_SOURCE, TrainingBatchCounter, training_network

__all__ = ["PROBE_SOURCE", "TRAINING_SOURCE", "FiringMonitor", "TrainingBatchCounter",
           "firing_scalars", "training_network"]
