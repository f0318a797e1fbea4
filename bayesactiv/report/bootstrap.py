"""Per-layer plug-in MFR and MF with percentile-bootstrap intervals (the report's layer tables).

The resampling (input weights, window indices) is the one engine of
:mod:`bayesactiv.stats.resampling`; for clustered events (several tokens or positions
per input) whole inputs are resampled, for MFR and for the windows of MF.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data import DatasetError, validate
from bayesactiv.data.checks import check_int, check_prob, check_seed
from bayesactiv.stats.baselines import fano
from bayesactiv.stats.resampling import (
    cluster_counts,
    cluster_window_moments,
    event_clusters,
    nanmean,
    resample_counts,
    resample_indices,
    resampled_cluster_fano,
    resampled_cluster_rates,
    resampled_statement,
    window_clusters,
    windows_statement,
)

__all__ = ["layer_bootstrap"]


def layer_bootstrap(
    ds: xr.Dataset, *, n_resamples: int = 1000, prob: float = 0.9, seed: int | None = 0
) -> pd.DataFrame:
    """Plug-in MFR and MF of each layer with percentile-bootstrap intervals.

    MFR (mean over units of ``count / n``) is resampled over inputs, all units of a
    layer sharing the resampled inputs (needs ``fired``; without it MFR gets no
    interval). MF (mean over units of the variance/mean of window counts, ddof 0,
    units that never fired in the windows left out) is resampled over windows (needs
    ``window_count``).

    Clustered events (an ``input`` coordinate on ``fired`` with several events per
    input: tokens, positions): MFR resamples whole inputs with their events (a unit's
    rate is ``(w @ c) / (w @ t)``, fired events over events of the drawn inputs), and MF
    resamples whole inputs each with the windows that start in it (windows run over
    the events input-major and may span inputs). ``frame.attrs`` says what was done:
    ``resampled`` (e.g. ``"inputs (clusters of 32 tokens on average)"``), ``windows_over``
    and ``mf_resampled``.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    n_resamples : int
        Bootstrap resamples.
    prob : float
        Interval mass.
    seed : int, optional

    Returns
    -------
    pandas.DataFrame
        One row per (network, layer): ``mfr``, ``mfr_boot_low``, ``mfr_boot_high``,
        ``mf``, ``mf_boot_low``, ``mf_boot_high``, ``n_units``; attrs ``resampled``,
        ``windows_over``, ``mf_resampled``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.random.default_rng(0).random((200, 5)) < 0.3
    >>> ds = ba.make_dataset(f.sum(0), 200, network="n", layer="l", fired=f)
    >>> row = layer_bootstrap(ds, n_resamples=200).iloc[0]
    >>> bool(row.mfr_boot_low < row.mfr < row.mfr_boot_high)
    True
    """
    prob = check_prob(prob)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    seed = check_seed(seed)
    validate(ds)
    rng = np.random.default_rng(seed)
    q = [(1 - prob) / 2, (1 + prob) / 2]
    net = ds["network"].values.astype(str)
    lay = ds["layer"].values.astype(str)
    keys = list(dict.fromkeys(zip(net, lay, strict=True)))
    rate = ds["count"].values / np.maximum(ds["n"].values, 1)
    rows = []
    clusters = event_clusters(ds)
    w_in = None
    if "fired" in ds:
        n_items = ds.sizes["sample"]
        if clusters is not None:
            c_in, t_in = cluster_counts(ds["fired"].values, clusters)
            n_items = t_in.size
        w_in = next(resample_counts(rng, n_items, [n_resamples], draw="multinomial",
                                    dtype=np.float32))
    w_win = None
    win_clusters = None
    mf_resampled = ""
    if "window_count" in ds:
        if clusters is not None:
            try:
                win_clusters = window_clusters(ds, ds.sizes["window"], int(ds.attrs["window_size"]))
            except DatasetError:
                win_clusters = None
        if win_clusters is not None:
            s1, s2, m = cluster_window_moments(ds["window_count"].values, win_clusters)
            w_win = next(resample_counts(rng, m.size, [n_resamples], draw="index"))
            mf_resampled = "whole inputs, each with the windows that start in it"
        else:
            w_win = next(resample_indices(rng, ds.sizes["window"], [n_resamples]))
            mf_resampled = "windows"
    for network, layer in keys:
        cols = np.flatnonzero((net == network) & (lay == layer))
        row: dict[str, Any] = {"network": network, "layer": layer, "n_units": cols.size,
                               "mfr": float(rate[cols].mean())}
        if w_in is not None and clusters is not None:
            boot = resampled_cluster_rates(w_in, c_in[:, cols].astype(np.float64),
                                           t_in.astype(np.float64)).mean(axis=1)
            row["mfr_boot_low"], row["mfr_boot_high"] = np.quantile(boot, q)
        elif w_in is not None:
            fired = ds["fired"].values[:, cols].astype(np.float32)
            boot = (w_in @ fired).mean(axis=1) / fired.shape[0]
            row["mfr_boot_low"], row["mfr_boot_high"] = np.quantile(boot, q)
        else:
            row["mfr_boot_low"] = row["mfr_boot_high"] = np.nan
        if w_win is not None:
            wc = ds["window_count"].values[:, cols].astype(np.float64)
            row["mf"] = nanmean(fano(wc[None]))[0]
            if win_clusters is not None:
                boot_mf = nanmean(resampled_cluster_fano(w_win, s1[:, cols], s2[:, cols], m))
            else:
                boot_mf = nanmean(fano(wc[w_win]))  # fano: (resample, unit)
            boot_mf = boot_mf[np.isfinite(boot_mf)]
            lo_hi = np.quantile(boot_mf, q) if boot_mf.size else (np.nan, np.nan)
            row["mf_boot_low"], row["mf_boot_high"] = lo_hi
        else:
            row["mf"] = row["mf_boot_low"] = row["mf_boot_high"] = np.nan
        rows.append(row)
    cols_order = ["network", "layer", "n_units", "mfr", "mfr_boot_low", "mfr_boot_high", "mf",
                  "mf_boot_low", "mf_boot_high"]
    frame = pd.DataFrame(rows)[cols_order]
    frame.attrs = {"resampled": resampled_statement(ds) if "fired" in ds else "",
                   "windows_over": windows_statement(ds) if "window_count" in ds else "",
                   "mf_resampled": mf_resampled}
    return frame
