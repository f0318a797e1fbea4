"""Frequentist statistics: rates and intervals, the bootstrap, spike-train statistics, descriptives.

Statistics never draw; :mod:`bayesactiv.viz` draws them. ``ba.baselines`` is the
public name of :mod:`bayesactiv.stats.baselines` and ``ba.descriptive`` of
:mod:`bayesactiv.stats.descriptive`.
"""
