"""Contrasts between networks, layers and epochs: posterior differences and their bootstrap.

Named ``comparison`` rather than ``compare`` so that importing it never shadows the
function :func:`bayesactiv.compare`.
"""

from bayesactiv.comparison.contrasts import QUANTITIES, Comparison, compare, threshold_mismatch

__all__ = ["QUANTITIES", "Comparison", "compare", "threshold_mismatch"]
