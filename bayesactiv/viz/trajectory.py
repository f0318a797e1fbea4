"""Trajectories over training: firing quantities against the epoch of each checkpoint.

:func:`trajectory_figure` draws one layer of the memorization study's networks;
:func:`layer_trajectories_figure` draws every layer of one network from the table of
:func:`bayesactiv.monitor.indicator.firing_trajectory` (a monitor's history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["layer_trajectories_figure", "trajectory_figure"]


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


#: Columns :func:`layer_trajectories_figure` needs (MF's are drawn when present).
TRAJECTORY_COLUMNS = ("network", "layer", "epoch", "mfr", "mfr_low", "mfr_high", "frac_dead",
                      "frac_dead_low", "frac_dead_high")
_MF_COLUMNS = ("mf", "mf_low", "mf_high")


def _check_trajectory(trajectory: Any, network: str | None,
                      layers: Sequence[str] | None) -> tuple[pd.DataFrame, str, list[str]]:
    """The rows of one network, its name and its layers in the order drawn."""
    if not isinstance(trajectory, pd.DataFrame):
        raise TypeError(f"trajectory: expected the pandas DataFrame of firing_trajectory, got "
                        f"{type(trajectory).__name__}")
    missing = [c for c in TRAJECTORY_COLUMNS if c not in trajectory.columns]
    if missing:
        raise ValueError(f"trajectory: missing columns {missing} (expected the table of "
                         f"bayesactiv.monitor.indicator.firing_trajectory)")
    if len(trajectory) == 0:
        raise ValueError("trajectory: the table has no rows")
    networks = list(dict.fromkeys(trajectory["network"].astype(str)))
    if network is None:
        if len(networks) != 1:
            raise ValueError(f"network: the trajectory holds {len(networks)} networks "
                             f"{networks}; name the one to draw")
        network = networks[0]
    elif not isinstance(network, str) or network not in networks:
        raise ValueError(f"network: {network!r} is not in the trajectory (networks {networks})")
    rows = trajectory[trajectory["network"].astype(str) == network]
    present = list(dict.fromkeys(rows["layer"].astype(str)))
    if layers is None:
        order = present
    else:
        if isinstance(layers, str):
            layers = [layers]
        order = [str(x) for x in layers]
        unknown = [x for x in order if x not in present]
        if unknown:
            raise ValueError(f"layers: {unknown} not in the trajectory of {network!r} "
                             f"(layers {present})")
        if len(set(order)) != len(order):
            raise ValueError(f"layers: names repeat in {order}")
    return rows, network, order


def _accuracy_frame(accuracy: Any) -> pd.DataFrame:
    """``accuracy`` as a frame indexed by epoch, one column per series, checked."""
    if isinstance(accuracy, pd.DataFrame):
        if "epoch" not in accuracy.columns:
            raise ValueError("accuracy: a DataFrame needs an 'epoch' column beside its "
                             "accuracy columns")
        frame = accuracy.set_index("epoch")
    elif isinstance(accuracy, pd.Series):
        frame = accuracy.to_frame(accuracy.name if accuracy.name is not None else "accuracy")
    elif isinstance(accuracy, Mapping):
        frame = pd.Series(dict(accuracy), dtype=float).to_frame("accuracy")
    else:
        raise TypeError(f"accuracy: expected a mapping epoch -> accuracy, a pandas Series "
                        f"indexed by epoch or a DataFrame with an 'epoch' column, got "
                        f"{type(accuracy).__name__}")
    if frame.shape[1] == 0 or len(frame) == 0:
        raise ValueError("accuracy: no values")
    try:
        values = frame.to_numpy(dtype=float)
        epochs = np.asarray(frame.index, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"accuracy: expected numbers per epoch ({err})") from None
    if not np.all(np.isfinite(epochs)):
        raise ValueError("accuracy: every epoch must be a finite number")
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.min() < 0 or finite.max() > 1:
        raise ValueError("accuracy: expected fractions in [0, 1] (divide percentages by 100)")
    return frame.astype(float).sort_index()


def _layer_colors(n: int) -> list[Any]:
    import matplotlib as mpl

    if n <= 10:
        return [mpl.colormaps["tab10"](i) for i in range(n)]
    return [mpl.colormaps["viridis"](x) for x in np.linspace(0.0, 0.92, n)]


def _epoch_axis(ax: Any, epochs: np.ndarray) -> None:
    """Integer epoch ticks; symlog when the checkpoints span two decades or more."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    positive = epochs[epochs > 0]
    if positive.size >= 3 and positive.max() / positive.min() >= 100:
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(epochs.min() - 0.25, epochs.max() * 1.25)  # (no margin below epoch 0)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("epoch (symlog)")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def layer_trajectories_figure(
    trajectory: pd.DataFrame,
    *,
    prob: float = 0.9,
    accuracy: Any = None,
    network: str | None = None,
    layers: Sequence[str] | None = None,
) -> Any:
    """Every layer of one network against epoch: MFR, fraction of dead units, MF, accuracy.

    One panel per quantity, one line per layer (posterior mean, markers at the observed
    epochs) with its interval as a band: MFR, the fraction of dead units and, when the
    table has them (a history recorded with ``window_size``), the mean Fano factor of the
    window counts with its null of independent firing (dashed, same colour). An optional
    last panel draws a per-epoch accuracy.

    Parameters
    ----------
    trajectory : pandas.DataFrame
        The table of :func:`bayesactiv.monitor.indicator.firing_trajectory`: at least
        ``network``, ``layer``, ``epoch``, ``mfr``, ``mfr_low``, ``mfr_high``,
        ``frac_dead``, ``frac_dead_low``, ``frac_dead_high``; MF is drawn from ``mf``,
        ``mf_low``, ``mf_high`` (and ``mf_null``) when present and not all missing.
    prob : float
        The mass of the table's intervals (named in the legend; the table was made with it).
    accuracy : mapping or pandas.Series or pandas.DataFrame, optional
        Accuracy per epoch, as fractions in [0, 1]: a mapping ``epoch -> accuracy``, a
        Series indexed by epoch, or a DataFrame with an ``epoch`` column and one column per
        series (``train_accuracy``, ``test_accuracy``, ...), each drawn as a line.
    network : str, optional
        The network drawn; needed only when the table holds several.
    layers : sequence of str, optional
        The layers drawn, in this order (legend and colours). Default: every layer, in the
        order it first appears in the table; pass the recording order, since
        ``firing_trajectory`` sorts its rows by name.

    Returns
    -------
    matplotlib.figure.Figure
        Its axes are MFR, fraction dead, then MF and accuracy when drawn; with three
        panels, a fourth axes (switched off) holds the legend.

    Raises
    ------
    TypeError
        ``trajectory`` not a DataFrame, or ``accuracy`` of an unknown kind.
    ValueError
        Missing columns, no rows, several networks and no ``network``, unknown layers,
        a probability outside (0, 1), accuracies outside [0, 1].

    Examples
    --------
    >>> import bayesactiv as ba
    >>> from bayesactiv.monitor.indicator import firing_trajectory
    >>> ds = ba.make_dataset([40, 60, 10, 12, 30, 50, 4, 6], 100, network="net",
    ...                      layer=["fc2", "fc2", "fc1", "fc1"] * 2, epoch=[0] * 4 + [1] * 4)
    >>> t = firing_trajectory(ds, draws=200)
    >>> fig = layer_trajectories_figure(t, layers=["fc2", "fc1"])
    >>> [ax.get_title() for ax in fig.axes]
    ['MFR (mean firing probability)', 'fraction of dead units']
    >>> [len(ax.lines) for ax in fig.axes]
    [2, 2]
    >>> fig = layer_trajectories_figure(t, accuracy={0: 0.5, 1: 0.8})
    >>> fig.axes[2].get_title(), len(fig.axes[2].lines)
    ('accuracy', 1)
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if isinstance(prob, bool) or not isinstance(prob, (int, float, np.floating)) \
            or not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob: expected a probability in (0, 1), got {prob!r}")
    rows, network, order = _check_trajectory(trajectory, network, layers)
    acc = None if accuracy is None else _accuracy_frame(accuracy)
    has_mf = all(c in rows.columns for c in _MF_COLUMNS) and bool(rows["mf"].notna().any())
    has_null = has_mf and "mf_null" in rows.columns and bool(rows["mf_null"].notna().any())
    panels = [("mfr", "MFR (mean firing probability)", "fraction of (unit, event) pairs fired"),
              ("frac_dead", "fraction of dead units", "fraction of the layer's units")]
    if has_mf:
        panels.append(("mf", "MF (mean Fano factor of window counts)", "Fano factor"))
    n_panels = len(panels) + (acc is not None)
    # (two panels a row, so that a page of about 1000 pixels shows the text at its size)
    shape, size = ((1, 2), (9.6, 4.1)) if n_panels == 2 else ((2, 2), (10.0, 7.6))
    fig, grid = plt.subplots(*shape, figsize=size, layout="constrained", squeeze=False)
    axes = list(grid.ravel())
    epochs = np.asarray(rows["epoch"], dtype=float)
    colors = _layer_colors(len(order))
    pct = f"{100 * float(prob):g}%"
    handles: list[Any] = []
    for layer, color in zip(order, colors, strict=True):
        sub = rows[rows["layer"].astype(str) == layer].sort_values("epoch")
        x = sub["epoch"].to_numpy(dtype=float)
        units = f" ({int(sub['units'].iloc[0])} units)" if "units" in sub and len(sub) else ""
        for ax, (q, _, _) in zip(axes, panels, strict=False):
            ax.fill_between(x, sub[f"{q}_low"].to_numpy(dtype=float),
                            sub[f"{q}_high"].to_numpy(dtype=float), color=color, alpha=0.18,
                            lw=0)
            ax.plot(x, sub[q].to_numpy(dtype=float), "o-", color=color, ms=3.5, lw=1.6)
            if q == "mf" and has_null:
                ax.plot(x, sub["mf_null"].to_numpy(dtype=float), "--", color=color, lw=1.1)
        handles.append(Line2D([], [], color=color, marker="o", ms=3.5, lw=1.6,
                              label=f"layer {layer}{units}"))
    for ax, (q, title, ylabel) in zip(axes, panels, strict=False):
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        _epoch_axis(ax, epochs)
        if q in ("mfr", "frac_dead"):
            lo, hi = ax.get_ylim()
            ax.set_ylim(max(lo, -0.02), min(hi, 1.02))
    if acc is not None:
        ax = axes[len(panels)]
        for k, column in enumerate(acc.columns):
            ax.plot(acc.index.to_numpy(dtype=float), acc[column].to_numpy(), "s-", ms=3.5,
                    lw=1.6, color=plt.get_cmap("Greys")(0.85 - 0.3 * (k % 3)),
                    label=str(column).replace("_", " "))
        ax.set_title("accuracy", fontsize=10)
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8, loc="best")
        _epoch_axis(ax, np.r_[epochs, np.asarray(acc.index, dtype=float)])
    handles.append(Patch(color="0.5", alpha=0.3, lw=0, label=f"{pct} interval"))
    if has_null:
        handles.append(Line2D([], [], color="0.4", ls="--", lw=1.1,
                              label="MF null: independent firing"))
    if n_panels == 3:  # the legend takes the free fourth cell
        axes[3].axis("off")
        axes[3].legend(handles=handles, loc="center", fontsize=9, frameon=False,
                       ncol=1 if len(handles) <= 12 else 2)
    else:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4),
                   fontsize=9, frameon=False)
    fig.suptitle(f"{network}: firing over training, per layer (posterior mean and {pct} "
                 f"interval)", fontsize=11)
    return fig
