"""Contrasts between networks, layers and epochs: posterior differences and their bootstrap.

Named ``comparison`` rather than ``compare`` so that importing it never shadows the
function :func:`bayesactiv.compare`. :func:`~bayesactiv.comparison.contrasts.compare` is a
sequence of named steps: :mod:`~bayesactiv.comparison.levels` collects, checks and matches
the levels; :mod:`~bayesactiv.comparison.posterior` fits them jointly and takes the
posterior differences; :mod:`~bayesactiv.comparison.bootstrap` is the frequentist
counterpart (on the engine of :mod:`bayesactiv.stats.resampling`);
:mod:`~bayesactiv.comparison.contrasts` holds :func:`compare` and :class:`Comparison`.
"""

from bayesactiv.comparison.contrasts import QUANTITIES, Comparison, compare, threshold_mismatch

__all__ = ["QUANTITIES", "Comparison", "compare", "threshold_mismatch"]
