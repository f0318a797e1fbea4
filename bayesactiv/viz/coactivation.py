"""The co-activation heatmap: the phi coefficients between the units of one layer.

One drawing serves both looks of the package: units in index order with constant
units in grey (:func:`bayesactiv.viz.plots.plot_coactivation`), or units sorted by
firing rate with constant units left out (the report's figure, ``by_rate=True``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from bayesactiv.stats import descriptive

__all__ = ["coactivation_heatmap"]


def _by_rate(ds: xr.Dataset, phi: xr.DataArray) -> np.ndarray:
    """Positions of the varying units of ``phi``, highest firing rate first."""
    sub = ds.sel(unit=phi["unit"].values)
    rate = sub["count"].values / np.maximum(sub["n"].values, 1)
    varying = np.flatnonzero(np.isfinite(np.diag(phi.values)))
    return varying[np.argsort(-rate[varying], kind="stable")]


def _label_by_index(ax, phi: xr.DataArray) -> None:
    idx = phi["index"].values
    if len(idx) <= 32:
        ax.set_xticks(np.arange(len(idx)), idx, fontsize=7)
        ax.set_yticks(np.arange(len(idx)), idx, fontsize=7)
    ax.set_xlabel("unit index")
    ax.set_ylabel("unit index")
    ax.set_title(f"Co-activation in {phi.attrs['network']}/{phi.attrs['layer']}")
    if not np.isfinite(phi.values).any():
        ax.text(0.5, 0.5, "no unit varies: every unit\nnever or always fired", ha="center",
                va="center", transform=ax.transAxes)


def _label_by_rate(ax, k: int, n_const: int, name: str) -> None:
    ax.set_xlabel(f"unit rank by firing rate (of {k})")
    ax.set_ylabel("unit rank by firing rate")
    extra = f"\n({n_const} units that never or always fired left out)" if n_const else ""
    ax.set_title(f"co-activation of {name}{extra}", fontsize=10)
    if k == 0:
        ax.text(0.5, 0.5, "no unit varies", ha="center", va="center", transform=ax.transAxes)


def coactivation_heatmap(
    ds: xr.Dataset, network: str | None, layer: str, *, by_rate: bool = False
) -> Figure:
    """Heatmap of the phi coefficients between the units of one layer.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset recorded with ``keep_events=True`` (needs ``fired``).
    network : str or None
        The network; None when only one network has a layer named ``layer``.
    layer : str
        The layer.
    by_rate : bool
        False: units in index order, constant units (never or always fired) in grey.
        True: units sorted by firing rate, constant units left out.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.random.default_rng(0).random((50, 4)) < 0.5
    >>> ds = ba.make_dataset(f.sum(0), 50, network="n", layer="l", fired=f)
    >>> len(coactivation_heatmap(ds, None, "l").axes)  # heatmap and colour bar
    2
    >>> coactivation_heatmap(ds, "n", "l", by_rate=True).axes[0].get_ylabel()
    'unit rank by firing rate'
    """
    phi = descriptive.coactivation(ds, layer, network=network)
    if by_rate:
        order = _by_rate(ds, phi)
        mat = phi.values[np.ix_(order, order)]
        fig, ax = plt.subplots(figsize=(5.6, 4.6), layout="constrained")
        grey, bar = "0.85", {"label": "phi (correlation of firing)", "shrink": 0.85}
    else:
        mat = phi.values
        fig, ax = plt.subplots(figsize=(5.2, 4.4))
        grey, bar = "0.8", {"label": "phi"}
    if mat.shape[0] or not by_rate:
        cmap = plt.get_cmap("RdBu_r").with_extremes(bad=grey)
        im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, vmin=-1, vmax=1,
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, **bar)
    if by_rate:
        _label_by_rate(ax, mat.shape[0], phi.shape[0] - mat.shape[0], f"{network}/{layer}")
    else:
        _label_by_index(ax, phi)
        fig.tight_layout()
    return fig
