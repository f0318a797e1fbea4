"""Bayesian inference: the hierarchical firing models, fitting, the fit object, ranking, calibration.

``ba.models`` is kept as the public alias of :mod:`bayesactiv.bayes.models`.
"""

from bayesactiv.bayes.models import MODELS, ConvergenceWarning, FiringFit, compare_models, fit

__all__ = ["MODELS", "ConvergenceWarning", "FiringFit", "compare_models", "fit"]
