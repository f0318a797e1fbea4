"""Per-layer plug-in MFR and MF with percentile-bootstrap intervals (the report's layer tables).

The resampling (input weights, window indices) is the one engine of
:mod:`bayesactiv.stats.resampling`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data import validate
from bayesactiv.data.checks import check_int, check_prob, check_seed
from bayesactiv.stats.baselines import fano
from bayesactiv.stats.resampling import nanmean, resample_counts, resample_indices

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
        ``mf``, ``mf_boot_low``, ``mf_boot_high``, ``n_units``.

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
    w_in = None
    if "fired" in ds:
        w_in = next(resample_counts(rng, ds.sizes["sample"], [n_resamples], draw="multinomial",
                                    dtype=np.float32))
    w_win = None
    if "window_count" in ds:
        w_win = next(resample_indices(rng, ds.sizes["window"], [n_resamples]))
    for network, layer in keys:
        cols = np.flatnonzero((net == network) & (lay == layer))
        row: dict[str, Any] = {"network": network, "layer": layer, "n_units": cols.size,
                               "mfr": float(rate[cols].mean())}
        if w_in is not None:
            fired = ds["fired"].values[:, cols].astype(np.float32)
            boot = (w_in @ fired).mean(axis=1) / fired.shape[0]
            row["mfr_boot_low"], row["mfr_boot_high"] = np.quantile(boot, q)
        else:
            row["mfr_boot_low"] = row["mfr_boot_high"] = np.nan
        if w_win is not None:
            wc = ds["window_count"].values[:, cols].astype(np.float64)
            row["mf"] = nanmean(fano(wc[None]))[0]
            boot_mf = nanmean(fano(wc[w_win]))  # fano: (resample, unit)
            boot_mf = boot_mf[np.isfinite(boot_mf)]
            lo_hi = np.quantile(boot_mf, q) if boot_mf.size else (np.nan, np.nan)
            row["mf_boot_low"], row["mf_boot_high"] = lo_hi
        else:
            row["mf"] = row["mf_boot_low"] = row["mf_boot_high"] = np.nan
        rows.append(row)
    cols_order = ["network", "layer", "n_units", "mfr", "mfr_boot_low", "mfr_boot_high", "mf",
                  "mf_boot_low", "mf_boot_high"]
    return pd.DataFrame(rows)[cols_order]
