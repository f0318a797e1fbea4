"""Frequentist baselines: Monte Carlo estimates, intervals and spike-train statistics.

These are the estimates the Bayesian models of :mod:`bayesactiv.bayes.models` are judged
against. Every function reads an activation dataset (see :mod:`bayesactiv.data`),
validates it first, and returns an :class:`xarray.Dataset` indexed by ``unit``;
aggregates are indexed by a ``group`` dimension. The groups are those of
:func:`bayesactiv.data.grouping.group_units`, the grouping ``fit`` uses: every
aggregate takes ``group_by`` (default ``("network", "layer")``: coordinate
``group`` reads ``"network/layer"``, one row per layer, then ``"network/*"``, all
layers of a network), with coordinates ``group_network`` and ``group_layer``
(``"*"`` for the pooled rows; the names differ from the ``network``/``layer``
coordinates on ``unit``) and ``group_epoch`` when ``"epoch"`` is a key (see
:func:`group_layout`).

Nothing here loops in Python over samples or units: estimates are closed forms
over ``count`` and ``n``, the bootstrap multiplies a matrix of resample counts by
the firing matrix, and the permutation test bins spike positions with ``bincount``.

Edge cases are reported as each method really gives them: a unit that never (or
always) fired gets a zero-width Wald interval, and its bootstrap estimates are all
equal, so every bootstrap interval, BCa included, is that single value (e.g.
[0, 0]); a Fano factor with zero mean is NaN. Spike-train statistics follow the
definitions of Elephant (``elephant.statistics``: ``isi``, ``cv``, ``cv2``,
``lv``, ``fanofactor``).

This module gathers the public names of the modules that hold them:
:mod:`bayesactiv.stats.groups` (the group layout), :mod:`bayesactiv.stats.intervals`
(Monte Carlo estimates and intervals), :mod:`bayesactiv.stats.resampling` (the
bootstrap and its resampling engine) and :mod:`bayesactiv.stats.spikes`
(spike-train statistics).
"""

from bayesactiv.stats.groups import group_layout, unit_frame
from bayesactiv.stats.intervals import (
    cluster_sums,
    design_effect,
    intervals,
    monte_carlo,
    monte_carlo_curve,
)
from bayesactiv.stats.resampling import bootstrap
from bayesactiv.stats.spikes import (
    cluster_fano,
    fano,
    fano_factor,
    fano_null,
    firing_rate,
    isi_cv,
    order_permutation_test,
    spike_stats,
)

__all__ = [
    "bootstrap",
    "cluster_fano",
    "cluster_sums",
    "design_effect",
    "fano",
    "fano_factor",
    "fano_null",
    "firing_rate",
    "group_layout",
    "intervals",
    "isi_cv",
    "monte_carlo",
    "monte_carlo_curve",
    "order_permutation_test",
    "spike_stats",
    "unit_frame",
]
