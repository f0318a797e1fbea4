"""Matplotlib figures of the descriptive statistics and baselines.

Every function returns the :class:`matplotlib.figure.Figure`; save it with
``fig.savefig(path)``. Importing this module leaves the matplotlib backend alone:
a notebook shows the figures inline, and without a display matplotlib draws with
its Agg backend by itself (set ``MPLBACKEND=Agg`` to force it).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from bayesactiv.data import validate
from bayesactiv.stats import descriptive
from bayesactiv.stats.baselines import monte_carlo_curve
from bayesactiv.viz.coactivation import coactivation_heatmap

__all__ = [
    "plot_cdf",
    "plot_coactivation",
    "plot_dead_saturated",
    "plot_histograms",
    "plot_mc_curve",
]


def _panels(k: int, width: float = 3.6, height: float = 3.0) -> tuple[Figure, np.ndarray]:
    cols = min(k, 4)
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[k:]:
        ax.remove()
    return fig, axes.ravel()[:k]


def plot_histograms(ds: xr.Dataset, *, log: bool = False, kde: bool = False) -> Figure:
    """Per-layer histograms of raw activations, one panel per layer (as in seed 001).

    Parameters
    ----------
    ds : xarray.Dataset
        Needs ``hist_count`` and ``hist_edges``.
    log : bool
        Logarithmic count axis (ReLU layers have a tall bar at 0).
    kde : bool
        Overlay the binned Gaussian KDE of :func:`bayesactiv.stats.descriptive.density`,
        scaled to counts.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> ds = ba.make_dataset([1], 4, network="n", layer="l")
    >>> ds["hist_count"] = (("hist_group", "hist_bin"), [[3, 1]])
    >>> ds["hist_edges"] = (("hist_group", "hist_edge"), [[0.0, 1.0, 2.0]])
    >>> fig = plot_histograms(ds.assign_coords(hist_group=["n/l"]))
    >>> len(fig.axes)
    1
    """
    h = descriptive.histogram(ds)
    dens = descriptive.density(ds) if kde else None
    fig, axes = _panels(h.sizes["hist_group"])
    for g, ax in enumerate(axes):
        edges = h["edges"].values[g]
        ax.stairs(h["count"].values[g], edges, fill=True, alpha=0.6, color="C0")
        if dens is not None:
            scale = h["total"].values[g] * np.median(h["width"].values[g])
            ax.plot(dens["x"].values[g], dens["density"].values[g] * scale, color="C3", lw=1.2,
                    label=f"KDE (h={dens['bandwidth'].values[g]:.2g})")
            ax.legend(fontsize=7)
        if log:
            ax.set_yscale("log")
            ax.set_ylim(bottom=0.5)  # a count below one bar means nothing
        ax.set_title(str(h["hist_group"].values[g]), fontsize=10)
        ax.set_xlabel("activation")
        ax.set_ylabel("count" + (" (log)" if log else ""))
    fig.suptitle("Activation histograms per layer")
    fig.tight_layout()
    return fig


def plot_cdf(ds: xr.Dataset) -> Figure:
    """Empirical CDFs of each layer's activations (from the histograms), on one axis.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([1], 4, network="n", layer="l")
    >>> ds["hist_count"] = (("hist_group", "hist_bin"), [[3, 1]])
    >>> ds["hist_edges"] = (("hist_group", "hist_edge"), [[0.0, 1.0, 2.0]])
    >>> plot_cdf(ds.assign_coords(hist_group=["n/l"])).axes[0].get_ylabel()
    'fraction of activations <= x'
    """
    c = descriptive.ecdf(ds)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for g in range(c.sizes["hist_group"]):
        ax.plot(c["edges"].values[g], c["cdf"].values[g], label=str(c["hist_group"].values[g]))
    ax.set_xlabel("activation x")
    ax.set_ylabel("fraction of activations <= x")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Empirical CDF per layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_dead_saturated(ds: xr.Dataset) -> Figure:
    """Stacked bar per layer: fractions of dead, firing-sometimes and saturated units.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> fig = plot_dead_saturated(ba.make_dataset([0, 3, 5], 5, network="n", layer="l"))
    >>> len(fig.axes)
    1
    """
    d = descriptive.dead_saturated(ds)
    d = d.isel(group=np.flatnonzero(d["group_layer"].values != "*"))
    dead = d["dead_fraction"].values
    sat = d["saturated_fraction"].values
    mid = 1.0 - dead - sat
    labels = [f"{g}\n(n={k})" for g, k in zip(d["group"].values, d["n_units"].values)]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.8))
    ax.bar(x, dead, color="0.3", label="dead (never fired)")
    ax.bar(x, mid, bottom=dead, color="C0", alpha=0.7, label="fired sometimes")
    ax.bar(x, sat, bottom=dead + mid, color="C3", label="saturated (always fired)")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("fraction of units")
    ax.set_ylim(0, 1)
    ax.set_title("Dead and saturated units per layer")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_coactivation(ds: xr.Dataset, layer: str, network: str | None = None) -> Figure:
    """Heatmap of the phi coefficients between the units of one layer (grey: constant units).

    The drawing is :func:`bayesactiv.viz.coactivation.coactivation_heatmap`.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.random.default_rng(0).random((50, 4)) < 0.5
    >>> ds = ba.make_dataset(f.sum(0), 50, network="n", layer="l", fired=f)
    >>> len(plot_coactivation(ds, "l").axes)  # heatmap and colour bar
    2
    """
    return coactivation_heatmap(ds, network, layer)


def plot_mc_curve(curve: xr.Dataset) -> Figure:
    """Monte Carlo convergence: estimate and standard error against the number of samples.

    Parameters
    ----------
    curve : xarray.Dataset
        The output of :func:`bayesactiv.stats.baselines.monte_carlo_curve`, or an
        activation dataset (the curve is computed from it).

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.random.default_rng(0).random((300, 3)) < 0.3
    >>> ds = ba.make_dataset(f.sum(0), 300, network="n", layer="l", fired=f)
    >>> len(plot_mc_curve(ds).axes)
    2
    """
    if "n_samples" not in curve.dims:  # an activation dataset: the curve is its prefixes
        curve = monte_carlo_curve(validate(curve))
    layers = np.flatnonzero(curve["group_layer"].values != "*")
    m = curve["n_samples"].values
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for j, g in enumerate(layers):
        est = curve["group_estimate"].values[:, g]
        name = str(curve["group"].values[g])
        left.plot(m, est, color=f"C{j}", label=name)
        members = np.flatnonzero(
            (curve["network"].values == curve["group_network"].values[g])
            & (curve["layer"].values == curve["group_layer"].values[g])
        )
        for u in members[:5]:  # a few units' own estimates, faint
            left.plot(m, curve["estimate"].values[:, u], color=f"C{j}", alpha=0.25, lw=0.7)
        se = curve["group_standard_error"].values[:, g]
        # a zero standard error (all units at 0 or 1 so far) cannot sit on a log axis
        right.plot(m, np.where(se > 0, se, np.nan), color=f"C{j}", label=name)
    ref = curve["group_standard_error"].values[-1, layers].max() * np.sqrt(m[-1] / m)
    right.plot(m, ref, "k--", lw=0.8, label="1/sqrt(n)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("number of samples n")
    right.set_yscale("log")
    left.set_ylabel("estimated P(fire)")
    left.set_title("Layer mean estimate (faint: single units)")
    right.set_ylabel("standard error (RMS over units)")
    right.set_title("Standard error")
    right.legend(fontsize=7)
    left.legend(fontsize=7)
    fig.tight_layout()
    return fig
