"""Bayesian hierarchical models of how hidden units fire, fitted with PyMC + nutpie.

This module gathers the public names of the room (it is ``ba.models``); the models and their
priors are written out in :mod:`bayesactiv.bayes.specs`. The stages of a fit, in order:

* :mod:`~bayesactiv.bayes.specs` - the five models, their priors, group parameters
* :mod:`~bayesactiv.bayes.sufficient` - the units' groups and sufficient statistics
* :mod:`~bayesactiv.bayes.likelihood` - tail-sum and quadrature terms, pointwise log-likelihood
* :mod:`~bayesactiv.bayes.native` - the marginal models' log densities as numba callbacks
  cached on disk, handed to nutpie
* :mod:`~bayesactiv.bayes.sampling` - the PyMC model, the compiled-model cache, nutpie/PyMC
* :mod:`~bayesactiv.bayes.quantiles` - per-unit mixture moments, CDFs and quantiles
* :mod:`~bayesactiv.bayes.diagnostics`, :mod:`~bayesactiv.bayes.summaries`,
  :mod:`~bayesactiv.bayes.arviz_groups`, :mod:`~bayesactiv.bayes.result` - the fit object
* :mod:`~bayesactiv.bayes.fitting` - :func:`fit`; :mod:`~bayesactiv.bayes.ranking` -
  :func:`compare_models`

Examples
--------
>>> from bayesactiv.bayes import models
>>> models.MODELS
('beta_binomial', 'clustered_beta_binomial', 'gamma_poisson', 'negative_binomial', 'binomial_window')
"""

from bayesactiv.bayes.diagnostics import ConvergenceWarning
from bayesactiv.bayes.fitting import fit
from bayesactiv.bayes.ranking import compare_models
from bayesactiv.bayes.result import FiringFit
from bayesactiv.bayes.sampling import COMPILE_COUNT
from bayesactiv.bayes.specs import MODELS

__all__ = ["COMPILE_COUNT", "MODELS", "ConvergenceWarning", "FiringFit", "compare_models", "fit"]
