"""Bayesian inference: the hierarchical firing models, fitting, the fit object, ranking, calibration.

``ba.models`` is kept as the public alias of :mod:`bayesactiv.bayes.models`, which gathers the
public names of the modules below (one per stage of a fit).
"""

from bayesactiv.bayes.diagnostics import ConvergenceWarning
from bayesactiv.bayes.fitting import ClusteredEventsWarning, fit
from bayesactiv.bayes.ranking import compare_models
from bayesactiv.bayes.result import FiringFit
from bayesactiv.bayes.specs import MODELS

__all__ = ["MODELS", "ClusteredEventsWarning", "ConvergenceWarning", "FiringFit", "compare_models", "fit"]
