"""Trajectories over training: a layer's firing quantities against the epoch of each checkpoint."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["trajectory_figure"]


def trajectory_figure(groups: pd.DataFrame, plugin: pd.DataFrame, arch: str, prob: float) -> Any:
    """MFR, MF and fraction of dead units of one layer against training epoch, per network.

    Parameters
    ----------
    groups : pandas.DataFrame
        One row per network and epoch: ``network``, ``epoch`` and ``{q}_mean``, ``{q}_low``,
        ``{q}_high`` for ``q`` in ``mfr``, ``mf``, ``frac_dead`` (posterior mean and ETI).
    plugin : pandas.DataFrame
        ``network``, ``epoch``, ``mfr_plugin``, ``mf_plugin`` (plug-in values, crosses).
    arch : str
        The architecture family (title: ``digits-<arch>``); a network whose name ends in
        ``-memorize`` is drawn as the memorizing one.
    prob : float
        Mass of the bands (for the legend).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"network": ["n", "n"], "epoch": [0, 5],
    ...                   **{f"{q}_{s}": [0.2, 0.3] for q in ("mfr", "mf", "frac_dead")
    ...                      for s in ("mean", "low", "high")}})
    >>> p = pd.DataFrame({"network": ["n", "n"], "epoch": [0, 5], "mfr_plugin": [.2, .3],
    ...                   "mf_plugin": [.8, .7]})
    >>> fig = trajectory_figure(g, p, "mlp", 0.9)
    >>> len(fig.axes)
    3
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
    quantities = (("mfr", "MFR (mean firing probability)"),
                  ("mf", "MF (mean Fano factor)"),
                  ("frac_dead", "fraction of dead units"))
    for net, color in zip(sorted(groups["network"].unique()), ("tab:blue", "tab:red"), strict=False):
        g = groups[groups["network"] == net].sort_values("epoch")
        p = plugin[plugin["network"] == net].sort_values("epoch")
        label = "memorizing" if net.endswith("-memorize") else "generalizing"
        for ax, (q, title) in zip(axes, quantities, strict=True):
            ax.fill_between(g["epoch"], g[f"{q}_low"], g[f"{q}_high"], color=color, alpha=0.2,
                            lw=0)
            ax.plot(g["epoch"], g[f"{q}_mean"], "o-", color=color, ms=4,
                    label=f"{label}: posterior mean, {100 * prob:g}% ETI")
            if q in ("mfr", "mf"):
                ax.plot(p["epoch"], p[f"{q}_plugin"], "x", color=color, ms=7,
                        label=f"{label}: plug-in" + (" (window Fano)" if q == "mf" else ""))
            ax.set_title(title, fontsize=10)
    for ax in axes:
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("training epoch (symlog)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"digits-{arch}: last hidden layer over training", fontsize=11)
    return fig
