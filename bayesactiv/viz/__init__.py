"""Every figure of the package. A figure takes precomputed numbers or result objects and
returns a :class:`matplotlib.figure.Figure` that the user can restyle; nothing here fits
or resamples.
"""

from bayesactiv.viz.coactivation import coactivation_heatmap
from bayesactiv.viz.forest import comparison_forest
from bayesactiv.viz.plots import (
    plot_cdf,
    plot_coactivation,
    plot_dead_saturated,
    plot_histograms,
    plot_mc_curve,
)
from bayesactiv.viz.unit import unit_view

__all__ = ["coactivation_heatmap", "comparison_forest", "plot_cdf", "plot_coactivation",
           "plot_dead_saturated", "plot_histograms", "plot_mc_curve", "unit_view"]
