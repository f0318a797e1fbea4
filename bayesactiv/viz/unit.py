"""A Neuronpedia-style view of one hidden unit: its firing interval, activations and top inputs.

:func:`unit_view` draws, for one unit of an activation dataset,

- its firing probability with every interval given (posterior, Wald, bootstrap, ...);
- the distribution of its activations, exact when the activations are passed
  (see :func:`bayesactiv.recording.unit.unit_activations`, which re-runs the network
  for that one unit), otherwise approximated from what the recording keeps (the layer
  histogram ``hist_count``, the unit's ``act_mean``/``act_var``/``act_max`` and its
  ``topk_value``);
- the inputs that made it fire most (``topk_sample``), as images when an image
  source is given.

The numbers come from :mod:`bayesactiv.stats.units`; this module only draws.

Examples
--------
>>> import bayesactiv as ba
>>> ds = ba.make_dataset([3, 7], 10, network="net", layer="fc")
>>> fig = unit_view(ds, "net/fc/1")
>>> len(fig.axes) >= 2
True
>>> import matplotlib.pyplot as plt
>>> plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from bayesactiv.data import DatasetError, validate
from bayesactiv.data.checks import check_int, check_prob
from bayesactiv.stats.units import default_intervals, threshold_value

__all__ = ["ImageSource", "unit_view"]

ImageSource = Callable[[np.ndarray], np.ndarray] | np.ndarray


def unit_view(
    ds: xr.Dataset,
    unit: str | int,
    *,
    intervals: Mapping[str, Sequence[float]] | None = None,
    activations: np.ndarray | None = None,
    images: ImageSource | None = None,
    labels: Sequence[Any] | None = None,
    n_images: int = 8,
    prob: float = 0.9,
    bins: int = 40,
) -> Any:
    """Draw the Neuronpedia-style view of one unit.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset holding the unit.
    unit : str or int
        The unit id (``network/layer/index``) or its position along ``unit``.
    intervals : mapping, optional
        label -> (estimate, low, high) for the firing probability, e.g. the posterior
        from :meth:`bayesactiv.FiringFit.units` beside the Wald or bootstrap interval.
        Default: Wald and Jeffreys intervals from ``count`` and ``n``
        (:func:`bayesactiv.stats.units.default_intervals`).
    activations : numpy.ndarray, optional
        The unit's raw activation per input (see
        :func:`bayesactiv.recording.unit.unit_activations`). Without it the histogram
        is approximated from the recording's summaries.
    images : callable or numpy.ndarray, optional
        The inputs as images: an array indexed by sample, or a function from
        sample indices to an array ``(k, h, w)`` (e.g. ``zoo.digit_images``).
    labels : sequence, optional
        A label per sample, shown over each top image (default: the dataset's
        ``label`` coordinate when it has one).
    n_images : int
        Top inputs shown.
    prob : float
        Interval mass for the default intervals.
    bins : int
        Histogram bins when ``activations`` is given.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([3, 7], 10, network="net", layer="fc")
    >>> fig = unit_view(ds, 0, intervals={"posterior 90%": (0.3, 0.15, 0.5)})
    >>> fig.axes[0].get_xlabel()
    'firing probability'
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """
    prob = check_prob(prob)
    n_images = check_int(n_images, "n_images", minimum=1)
    bins = check_int(bins, "bins", minimum=1)
    validate(ds)
    pos = _position(ds, unit)
    count, n = int(ds["count"].values[pos]), int(ds["n"].values[pos])
    if intervals is None:
        intervals = default_intervals(count, n, prob)
    for label, vals in intervals.items():
        if len(vals) != 3:
            raise ValueError(f"intervals[{label!r}]: expected (estimate, low, high), got {vals!r}")
    top_samples, top_values = _top_inputs(ds, pos, n_images)
    imgs = _images_for(images, top_samples)
    if labels is None and "label" in ds.coords:
        labels = ds["label"].values
    fig, grid, ax_iv, ax_h = _layout(imgs is not None, n_images)
    _draw_intervals(ax_iv, intervals, count, n)
    _draw_activations(ax_h, ds, pos, activations, top_values, bins)
    if imgs is not None:
        _draw_top_inputs(fig, grid, imgs, top_samples, top_values, labels)
    rule = ds.attrs.get("threshold_rule", "")
    uid = str(ds["unit"].values[pos])
    fig.suptitle(f"unit {uid}" + (f"  (fired: {rule})" if rule else ""), fontsize=12)
    return fig


# ---------------------------------------------------------------- what is shown


def _position(ds: xr.Dataset, unit: str | int) -> int:
    if isinstance(unit, (int, np.integer)) and not isinstance(unit, bool):
        if not 0 <= int(unit) < ds.sizes["unit"]:
            raise DatasetError(f"unit: position {unit} is outside 0..{ds.sizes['unit'] - 1}")
        return int(unit)
    if not isinstance(unit, str):
        raise DatasetError(f"unit: expected a unit id (str) or a position (int), got {unit!r}")
    ids = ds["unit"].values.astype(str)
    hits = np.flatnonzero(ids == unit)
    if hits.size == 0:
        raise DatasetError(f"unit: no unit {unit!r} in the dataset (e.g. {ids[0]!r})")
    return int(hits[0])


def _top_inputs(ds: xr.Dataset, pos: int, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """The samples that made the unit fire most and their activations (empty if not recorded)."""
    top_samples = np.zeros(0, dtype=np.int64)
    top_values = np.zeros(0)
    if "topk_sample" in ds:
        ts = ds["topk_sample"].values[pos]
        keep = ts >= 0
        top_samples = ts[keep][:n_images].astype(np.int64)
        if "topk_value" in ds:
            top_values = ds["topk_value"].values[pos][keep][:n_images]
    return top_samples, top_values


def _images_for(source: ImageSource | None, samples: np.ndarray) -> np.ndarray | None:
    if source is None or samples.size == 0:
        return None
    if callable(source):
        imgs = np.asarray(source(samples))
    else:
        arr = np.asarray(source)
        if samples.max() >= arr.shape[0]:
            raise ValueError(
                f"images: top sample {samples.max()} is outside the {arr.shape[0]} images given"
            )
        imgs = arr[samples]
    imgs = np.squeeze(imgs)
    if imgs.ndim == 2 and samples.size == 1:
        imgs = imgs[None]
    if imgs.ndim != 3 or imgs.shape[0] != samples.size:
        raise ValueError(
            f"images: expected one 2-d image per top sample ({samples.size}), got shape {imgs.shape}"
        )
    return imgs


# ---------------------------------------------------------------- drawing


def _layout(with_images: bool, n_images: int) -> tuple[Any, Any, Any, Any]:
    """The figure, its grid, and the interval and activation axes of the first row."""
    import matplotlib.pyplot as plt

    rows = 2 if with_images else 1
    fig = plt.figure(figsize=(11, 3.3 * rows + (0.3 if rows == 2 else 0)), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.1)  # room for the y labels when shown untrimmed
    grid = fig.add_gridspec(rows, max(n_images, 2) if with_images else 2,
                            height_ratios=[1.5, 1] if rows == 2 else [1])
    half = max(n_images, 2) // 2 if with_images else 1
    return fig, grid, fig.add_subplot(grid[0, :half]), fig.add_subplot(grid[0, half:])


def _draw_intervals(ax: Any, intervals: Mapping[str, Sequence[float]], count: int, n: int) -> None:
    """The firing probability: one line per interval, the observed rate dotted."""
    import matplotlib.pyplot as plt

    names = list(intervals)
    colors = plt.get_cmap("tab10")(np.arange(len(names)) % 10)
    lows = [float(v[1]) for v in intervals.values()] + [count / max(n, 1)]
    highs = [float(v[2]) for v in intervals.values()] + [count / max(n, 1)]
    span = max(max(highs) - min(lows), 0.1)
    left, right = max(0.0, min(lows) - 0.6 * span), min(1.0, max(highs) + 1.2 * span)
    for i, (name, color) in enumerate(zip(names, colors, strict=True)):
        est, lo, hi = (float(v) for v in intervals[name])
        ax.plot([lo, hi], [i, i], color=color, lw=3, solid_capstyle="butt", clip_on=False)
        ax.plot(est, i, "o", color=color, ms=7, clip_on=False)
        # the note goes right of the interval, or left of it where the interval reaches the edge
        on_right = hi + 0.45 * (right - left) <= right or lo - 0.45 * (right - left) < left
        ax.annotate(f"{est:.3f} [{lo:.3f}, {hi:.3f}]", (hi if on_right else lo, i),
                    xytext=(6 if on_right else -6, 0), textcoords="offset points", va="center",
                    ha="left" if on_right else "right", fontsize=8, annotation_clip=False)
    ax.axvline(count / max(n, 1), color="0.6", ls=":", lw=1)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.invert_yaxis()
    ax.set_xlim(left, right)
    ax.set_xlabel("firing probability")
    ax.set_title(f"fired in {count} of {n} events", fontsize=10)


def _draw_activations(
    ax: Any, ds: xr.Dataset, pos: int, activations: np.ndarray | None, top_values: np.ndarray,
    bins: int,
) -> None:
    threshold = threshold_value(ds)
    if activations is not None:
        acts = np.asarray(activations, dtype=float).ravel()
        if acts.size == 0:
            raise ValueError("activations: empty array")
        ax.hist(acts, bins=bins, color="tab:blue", alpha=0.8)
        ax.set_title(f"activations of this unit ({acts.size} inputs, exact)", fontsize=10)
        ax.set_ylabel("inputs")
    else:
        _draw_summaries(ax, ds, pos, top_values)
    if threshold is not None:
        ax.axvline(threshold, color="k", lw=1, ls=":", label=f"threshold {threshold:g}")
    ax.set_xlabel("activation")
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, loc="upper right")


def _draw_summaries(ax: Any, ds: xr.Dataset, pos: int, top_values: np.ndarray) -> None:
    """The approximate activations: layer histogram, unit mean ± sd and max, top values."""
    group = f"{ds['network'].values[pos]}/{ds['layer'].values[pos]}"
    drew = False
    if "hist_count" in ds and group in ds["hist_group"].values.astype(str).tolist():
        h = ds["hist_count"].sel(hist_group=group).values.astype(float)
        e = ds["hist_edges"].sel(hist_group=group).values
        if h.sum() > 0:
            ax.stairs(h / h.sum(), e, fill=True, color="0.8", label="whole layer")
            drew = True
    if "act_mean" in ds and "act_var" in ds:
        m = float(ds["act_mean"].values[pos])
        sd = float(np.sqrt(max(float(ds["act_var"].values[pos]), 0.0)))
        ax.axvspan(m - sd, m + sd, color="tab:blue", alpha=0.15, label="unit mean ± sd")
        ax.axvline(m, color="tab:blue", lw=1.5)
        drew = True
    if "act_max" in ds:
        ax.axvline(float(ds["act_max"].values[pos]), color="tab:red", lw=1, ls="--",
                   label="unit max")
        drew = True
    if top_values.size:
        ymax = ax.get_ylim()[1] if drew else 1.0
        ax.plot(top_values, np.full(top_values.size, 0.03 * ymax), "|", color="tab:red",
                ms=14, mew=1.5, label="top activations")
        drew = True
    if not drew:
        ax.text(0.5, 0.5, "no activation summaries recorded", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
    ax.set_title("activations (approximate: layer histogram + unit summaries)", fontsize=10)
    ax.set_ylabel("fraction of layer activations")


def _draw_top_inputs(fig: Any, grid: Any, imgs: np.ndarray, top_samples: np.ndarray,
                     top_values: np.ndarray, labels: Sequence[Any] | None) -> None:
    """The second row: each top input as an image, titled with its label and activation."""
    for j in range(len(top_samples)):
        ax = fig.add_subplot(grid[1, j])
        ax.imshow(imgs[j], cmap="gray_r", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        lab = ""
        if labels is not None and top_samples[j] < len(labels):
            lab = f"label {labels[top_samples[j]]}\n"
        val = f"{top_values[j]:.2f}" if j < len(top_values) else ""
        ax.set_title(f"{lab}act {val}", fontsize=8)
        ax.set_xlabel(f"#{top_samples[j]}", fontsize=7)
