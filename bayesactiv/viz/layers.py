"""The report's per-layer figures: caterpillar plots, activation histograms, co-activation
heatmaps and forest plots of differences. Each returns a matplotlib figure (pyplot is imported
only when one is drawn).

Examples
--------
>>> import pandas as pd
>>> from bayesactiv.viz.layers import caterpillar_figure
>>> f = pd.DataFrame({"rate": [.1], "post_mean": [.12], "post_low": [.05], "post_high": [.2],
...                   "wald_low": [.02], "wald_high": [.2]})
>>> fig = caterpillar_figure(f, baseline="wald")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data.checks import ArgumentError, check_prob
from bayesactiv.viz.coactivation import coactivation_heatmap

__all__ = ["activation_figure", "caterpillar_figure", "coactivation_figure", "forest_figure"]


def caterpillar_figure(
    frame: pd.DataFrame, *, title: str = "", prob: float = 0.9, baseline: str = "bootstrap"
) -> Any:
    """Sorted caterpillar plot: each unit's posterior interval with a frequentist one beside it.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per unit with ``rate`` (count/n), ``post_mean``, ``post_low``,
        ``post_high`` and ``{baseline}_low``, ``{baseline}_high``.
    title : str
    prob : float
        The interval mass (for the legend).
    baseline : str
        Prefix of the frequentist interval columns (``"bootstrap"`` or ``"wald"``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"rate": [.1, .5], "post_mean": [.12, .5], "post_low": [.05, .4],
    ...                   "post_high": [.2, .6], "bootstrap_low": [.04, .41],
    ...                   "bootstrap_high": [.18, .59]})
    >>> fig = caterpillar_figure(f, title="layer")
    """
    import matplotlib.pyplot as plt

    prob = check_prob(prob)
    need = ["post_mean", "post_low", "post_high", f"{baseline}_low", f"{baseline}_high", "rate"]
    missing = [c for c in need if c not in frame]
    if missing:
        raise ArgumentError(f"frame: caterpillar plot needs columns {missing}")
    f = frame.sort_values("post_mean").reset_index(drop=True)
    k = len(f)
    x = np.arange(k)
    width = min(12.0, max(6.0, 0.04 * k + 5))
    fig, ax = plt.subplots(figsize=(width, 3.6), layout="constrained")
    off = 0.18 if k <= 80 else 0.0
    lw = 2.0 if k <= 40 else (1.2 if k <= 150 else 0.7)
    ax.vlines(x + off, f[f"{baseline}_low"], f[f"{baseline}_high"], color="tab:orange",
              lw=lw, alpha=0.75 if off else 0.5, label=f"{baseline} {prob:.0%}")
    ax.vlines(x - off, f["post_low"], f["post_high"], color="tab:blue", lw=lw,
              alpha=0.9 if off else 0.6, label=f"posterior {prob:.0%} ETI")
    ms = 3 if k <= 150 else 1.5
    ax.plot(x - off, f["post_mean"], "o", color="tab:blue", ms=ms)
    ax.plot(x + off, f["rate"], "o", color="tab:orange", ms=ms, mfc="white")
    ax.set_xlim(-1, k)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("units, sorted by posterior mean firing probability")
    ax.set_ylabel("firing probability")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def activation_figure(ds: xr.Dataset, network: str, layer: str, *, threshold: float | None = 0.0
                      ) -> Any:
    """Histogram and empirical CDF of one layer's raw activations (from the recording).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([1], 4, network="n", layer="l")
    >>> ds["hist_count"] = (("hist_group", "hist_bin"), [[3, 1]])
    >>> ds["hist_edges"] = (("hist_group", "hist_edge"), [[0.0, 1.0, 2.0]])
    >>> fig = activation_figure(ds.assign_coords(hist_group=["n/l"]), "n", "l")
    """
    import matplotlib.pyplot as plt

    from bayesactiv.stats import descriptive
    group = f"{network}/{layer}"
    hist = descriptive.histogram(ds)
    cdf = descriptive.ecdf(ds)
    groups = hist["hist_group"].values.astype(str).tolist()
    if group not in groups:
        raise ArgumentError(f"hist_group: no histogram for {group!r} (have {groups[:5]})")
    h = hist.sel(hist_group=group)
    c = cdf.sel(hist_group=group)
    edges = h["edges"].values
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    dens = h["density"].values
    a1.stairs(dens, edges, fill=True, color="tab:blue", alpha=0.7)
    a1.set_yscale("log" if np.nanmax(dens) > 50 * np.nanmedian(dens[dens > 0]) else "linear")
    a1.set_xlabel("activation")
    a1.set_ylabel("density")
    a1.set_title(f"histogram of activations ({int(h['total'])} values)", fontsize=10)
    a2.plot(c["edges"].values, c["cdf"].values, color="tab:blue")
    a2.set_xlabel("activation")
    a2.set_ylabel("fraction ≤ activation")
    a2.set_ylim(0, 1.02)
    a2.set_title("empirical CDF", fontsize=10)
    a2.grid(alpha=0.3)
    if threshold is not None:
        for ax in (a1, a2):
            ax.axvline(threshold, color="k", ls=":", lw=1, label=f"threshold {threshold:g}")
        a2.legend(fontsize=8, loc="lower right")
    return fig


def coactivation_figure(ds: xr.Dataset, network: str, layer: str) -> Any:
    """Heatmap of the phi coefficient between the units of one layer, sorted by firing rate.

    The report's look of :func:`bayesactiv.viz.coactivation.coactivation_heatmap`
    (``by_rate=True``: units that never or always fired left out).

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.random.default_rng(1).random((50, 4)) < 0.5
    >>> fig = coactivation_figure(ba.make_dataset(f.sum(0), 50, network="n", layer="l",
    ...                                            fired=f), "n", "l")
    """
    return coactivation_heatmap(ds, network, layer, by_rate=True)


def forest_figure(frame: pd.DataFrame, *, quantities: Sequence[str] = ("mfr", "mf", "frac_dead"),
                  prob: float = 0.9, title: str = "") -> Any:
    """Forest plot of differences per layer: posterior ETI beside the bootstrap interval.

    Parameters
    ----------
    frame : pandas.DataFrame
        :meth:`bayesactiv.comparison.Comparison.to_dataframe` reset to columns: ``layer``,
        ``quantity``, ``mean``, ``low``, ``high``, ``boot_estimate``, ``boot_low``,
        ``boot_high``.
    quantities : sequence of str
        One panel each.
    prob : float
        Interval mass (for the legend).
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"layer": ["a"], "quantity": ["mfr"], "mean": [0.1], "low": [0.05],
    ...                   "high": [0.15], "boot_estimate": [0.1], "boot_low": [0.04],
    ...                   "boot_high": [0.16]})
    >>> fig = forest_figure(f, quantities=["mfr"])
    """
    import matplotlib.pyplot as plt

    prob = check_prob(prob)
    need = ["layer", "quantity", "mean", "low", "high", "boot_estimate", "boot_low", "boot_high"]
    missing = [c for c in need if c not in frame]
    if missing:
        raise ArgumentError(f"frame: forest plot needs columns {missing}")
    layers = list(dict.fromkeys(frame["layer"].astype(str)))
    names = {"mfr": "MFR", "mf": "MF", "frac_dead": "fraction dead", "mu": "mu",
             "kappa": "kappa"}
    fig, axes = plt.subplots(1, len(quantities), figsize=(3.6 * len(quantities) + 1.2,
                                                          0.9 + 0.42 * len(layers)),
                             sharey=True, layout="constrained", squeeze=False)
    y = np.arange(len(layers))
    for ax, q in zip(axes[0], quantities, strict=True):
        sub = frame[frame["quantity"] == q]
        sub = sub.set_index(sub["layer"].astype(str)).reindex(layers)
        ax.hlines(y - 0.12, sub["low"], sub["high"], color="tab:blue", lw=2.5,
                  label=f"posterior {prob:.0%} ETI")
        ax.plot(sub["mean"], y - 0.12, "o", color="tab:blue", ms=4)
        ax.hlines(y + 0.12, sub["boot_low"], sub["boot_high"], color="tab:orange", lw=2.5,
                  label=f"bootstrap {prob:.0%}")
        ax.plot(sub["boot_estimate"], y + 0.12, "o", color="tab:orange", ms=4, mfc="white")
        ax.axvline(0, color="0.4", ls="--", lw=0.8)
        ax.set_title(names.get(q, q), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y, layers, fontsize=8)
    axes[0, 0].set_ylim(len(layers) - 0.5, -0.5)
    axes[0, -1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
