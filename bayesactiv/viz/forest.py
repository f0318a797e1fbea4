"""The forest plot of a comparison's posterior differences (:meth:`bayesactiv.Comparison.plot`).

It takes what :func:`bayesactiv.compare` returned, the result table and the posterior
draws of each difference, and draws them with :func:`arviz_plots.plot_forest`; it
computes nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr
from matplotlib.figure import Figure

from bayesactiv.comparison import QUANTITIES
from bayesactiv.data.checks import ArgumentError

__all__ = ["comparison_forest"]

_MINUS = "\u2212"


def comparison_forest(
    result: xr.Dataset,
    differences: xr.Dataset,
    quantities: Sequence[str] | None = None,
    *,
    path: str | None = None,
    **plot_kwargs: Any,
) -> Figure:
    """Forest plot of the posterior differences, one row of panels per quantity.

    Uses :func:`arviz_plots.plot_forest` (equal-tailed intervals: thick 50%, thin
    ``prob``; point = posterior mean), with a dashed line at 0 in every panel. Each
    quantity gets its own x axis, as their scales differ.

    Parameters
    ----------
    result : xarray.Dataset
        :attr:`bayesactiv.Comparison.result` (its ``contrast``, ``level_label`` and
        ``reference_label`` coordinates and its ``by``, ``reference``, ``prob`` attrs).
    differences : xarray.Dataset
        :attr:`bayesactiv.Comparison.differences`, the draws, dims ``(chain, draw, contrast)``.
    quantities : sequence of str, optional
        Which quantities to plot (default: all compared).
    path : str, optional
        Save the figure there (PNG, PDF, ...).
    **plot_kwargs
        Passed to :func:`arviz_plots.plot_forest`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import bayesactiv as ba
    >>> a = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="A", layer="fc")
    >>> b = ba.make_dataset([5, 8, 10, 11, 13, 15, 17, 19], 20, network="B", layer="fc")
    >>> cmp = ba.compare([a, b], draws=2000, tune=1000, chains=2, seed=1)
    >>> fig = comparison_forest(cmp.result, cmp.differences, ["mfr"])
    >>> fig.axes[1].get_title(loc="left")
    'MFR: B − A'
    >>> plt.close(fig)
    """
    import arviz_plots as azp

    qs = list(differences.data_vars) if quantities is None else list(quantities)
    unknown = [q for q in qs if q not in differences.data_vars]
    if unknown:
        raise ArgumentError(f"quantities: {unknown} were not compared; available: "
                            f"{list(differences.data_vars)}")
    ref_label = _reference_label(result)
    rows, level = _row_labels(result["contrast"].values, result["level_label"].values, ref_label)
    diffs = _relabelled(differences, result, qs, rows)
    prob = float(result.attrs["prob"])
    plot_kwargs, figure_kwargs, visuals = _forest_kwargs(plot_kwargs, prob, len(qs),
                                                         diffs.sizes["contrast"])
    pc = azp.plot_forest(
        xr.DataTree.from_dict({"posterior": diffs}),
        backend="matplotlib",
        figure_kwargs=figure_kwargs,
        visuals=visuals,
        **plot_kwargs,
    )
    fig = pc.get_viz("figure")
    label_axes = _dress_panels(pc, qs, f"{level} {_MINUS} {ref_label}")
    height = fig.get_size_inches()[1]
    if fig.get_layout_engine() is None:
        n_contrast = diffs.sizes["contrast"]
        fig.subplots_adjust(hspace=0.9 / (0.8 + 0.4 * n_contrast) * 1.6, top=1 - 0.75 / height,
                            bottom=0.35 / height)
        if len(plot_kwargs["labels"]) == 1:  # one column of row labels, ours
            _fit_label_column(fig, label_axes)
    fig.suptitle(
        f"Posterior differences by {result.attrs['by']} ({prob:.0%} and 50% equal-tailed "
        "intervals, point = mean)",
        fontsize=11, y=1 - 0.2 / height,
    )
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def _reference_label(result: xr.Dataset) -> str:
    """The reference level as the table names it (``"epoch 3"`` for epochs)."""
    if result.sizes["contrast"] and "reference_label" in result.coords:
        return str(result["reference_label"].values[0])
    ref = result.attrs["reference"]
    return f"epoch {ref}" if result.attrs["by"] == "epoch" else str(ref)


def _relabelled(differences: xr.Dataset, result: xr.Dataset, qs: list[str], rows: list[str]
                ) -> xr.Dataset:
    """The draws of ``qs`` named by quantity label, each contrast by its row label."""
    diffs = differences[qs]
    keep = [c for c in diffs.coords if c not in ("chain", "draw", "contrast")]
    diffs = diffs.drop_vars(keep).rename({q: QUANTITIES[q] for q in qs})
    row_of = dict(zip(result["contrast"].values.tolist(), rows, strict=True))
    return diffs.assign_coords(contrast=[row_of[c] for c in diffs["contrast"].values.tolist()])


def _forest_kwargs(plot_kwargs: dict[str, Any], prob: float, n_quantity: int, n_contrast: int
                   ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The defaults of :func:`arviz_plots.plot_forest`, under the caller's own choices."""
    plot_kwargs = dict(plot_kwargs)
    plot_kwargs.setdefault("ci_kind", "eti")
    plot_kwargs.setdefault("ci_probs", (0.5, prob))
    plot_kwargs.setdefault("point_estimate", "mean")
    plot_kwargs.setdefault("combined", True)
    plot_kwargs.setdefault("labels", ["contrast"])
    plot_kwargs.setdefault("rows", ["__variable__"])
    visuals = dict(plot_kwargs.pop("visuals", None) or {})
    visuals.setdefault("ticklabels", False)  # one "contrast" tick per row panel otherwise clashes
    figure_kwargs = dict(plot_kwargs.pop("figure_kwargs", {}))
    figure_kwargs.setdefault("figsize", (9, 0.9 + n_quantity * (0.8 + 0.4 * n_contrast)))
    figure_kwargs.setdefault("figsize_units", "inches")
    figure_kwargs.setdefault("sharey", "row")
    return plot_kwargs, figure_kwargs, visuals


def _dress_panels(pc: Any, qs: list[str], title: str) -> list[Any]:
    """Zero line and title on each forest panel; returns the label axes."""
    label_axes = []
    for q in qs:
        name = QUANTITIES[q]
        forest = pc.get_target(name, {"column": "forest"})
        labels = pc.get_target(name, {"column": "labels"})
        forest.axvline(0.0, color="0.4", linestyle="--", linewidth=0.8, zorder=0)
        forest.set_title(f"{name}: {title}", fontsize=10, loc="left")
        labels.xaxis.set_visible(False)
        labels.spines["bottom"].set_visible(False)
        label_axes.append(labels)
    return label_axes


def _row_labels(contrasts: Sequence[str], level_labels: Sequence[str], ref_label: str
                ) -> tuple[list[str], str]:
    """Row labels of the forest plot and the level named in the panel titles.

    A contrast is named ``"<subject>: <level> − <reference>"``; the reference is in
    every panel title, and so is the level when there is only one, so the rows keep
    just what differs between them (the full contrast names if shortening would make
    two rows alike).
    """
    contrasts = [str(c) for c in contrasts]
    rows = [c.removesuffix(f" {_MINUS} {ref_label}") for c in contrasts]
    level = "level"
    distinct = list(dict.fromkeys(str(v) for v in level_labels))
    if len(distinct) == 1:
        stripped = [r.removesuffix(f": {distinct[0]}") for r in rows]
        if len(set(stripped)) == len(stripped):
            rows, level = stripped, distinct[0]
    if len(set(rows)) != len(rows):
        return contrasts, "level"
    return rows, level


def _fit_label_column(fig: Any, label_axes: list[Any], *, min_forest_in: float = 4.0) -> None:
    """Widen the label column of a forest plot so that no row label runs under its panel.

    The labels start at the left edge of their axes; the gridspec's width ratios are
    set from the widest label, and the figure is widened when the panels would get
    narrower than ``min_forest_in`` inches.
    """
    if not label_axes or not any(ax.texts for ax in label_axes):
        return
    for ax in label_axes:
        ax.set_xlim(0.0, 1.0)
        for text in ax.texts:
            text.set_x(0.0)
            text.set_horizontalalignment("left")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    dpi = fig.dpi
    label_in = max(t.get_window_extent(renderer).width for ax in label_axes for t in ax.texts) / dpi
    label_in += 0.08
    left, right, gap = 0.12, 0.3, 0.25
    width, height = fig.get_size_inches()
    forest_in = width - left - right - gap - label_in
    if forest_in < min_forest_in:
        forest_in = min_forest_in
        width = left + label_in + gap + forest_in + right
        fig.set_size_inches(width, height)
    grid = label_axes[0].get_subplotspec().get_gridspec()
    grid.set_width_ratios([label_in, forest_in])
    fig.subplots_adjust(left=left / width, right=1 - right / width,
                        wspace=2 * gap / (label_in + forest_in))
