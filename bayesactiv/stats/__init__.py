"""Frequentist statistics: rates and intervals, the bootstrap, spike-train statistics, descriptives.

Statistics never draw; :mod:`bayesactiv.viz` draws them. ``ba.baselines`` is the
public name of :mod:`bayesactiv.stats.baselines` and ``ba.descriptive`` of
:mod:`bayesactiv.stats.descriptive`.

Modules: :mod:`~bayesactiv.stats.groups` (group layout and frames),
:mod:`~bayesactiv.stats.intervals` (Monte Carlo estimates, intervals),
:mod:`~bayesactiv.stats.resampling` (the one resampling engine: bootstrap weights and
the statistics over them, and :func:`~bayesactiv.stats.resampling.bootstrap`),
:mod:`~bayesactiv.stats.spikes` (spike-train statistics), and
:mod:`~bayesactiv.stats.baselines`, which gathers the public names of the first four.
"""
