"""The posterior side of a comparison: the joint fit and the draws of each difference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data.checks import ArgumentError

__all__ = ["available_quantities", "contrast_coords", "fit_groups", "posterior_differences", "summarize_differences"]


def fit_groups(ds: xr.Dataset, model: str, group_by: tuple[str, ...], **kwargs: Any) -> Any:
    """The joint fit of all levels: :func:`bayesactiv.bayes.models.fit` by ``group_by``."""
    from bayesactiv.bayes.models import fit  # imported on use: PyMC is slow to import

    return fit(ds, model, group_by=group_by, **kwargs)


def available_quantities(
    gd: xr.Dataset, quantities: tuple[str, ...], default: bool, model: str
) -> tuple[str, ...]:
    """The quantities the fit provides; with the default list, drop those it lacks.

    Raises
    ------
    ArgumentError
        A quantity asked for explicitly that the fit does not provide.
    """
    missing = [q for q in quantities if q not in gd.data_vars]
    if missing and default and len(missing) < len(quantities):
        # rate models (gamma_poisson, negative_binomial) have no mu/kappa: compare the rest
        return tuple(q for q in quantities if q in gd.data_vars)
    if missing:
        raise ArgumentError(f"quantities: the fit ({model}) provides no {missing}; it has "
                            f"{list(gd.data_vars)}")
    return quantities


def contrast_coords(table: pd.DataFrame, keys: Sequence[str], match: str) -> dict[str, Any]:
    """The coordinates on ``contrast`` of the differences: names, levels and matched keys."""
    coords = {
        "contrast": ("contrast", table["contrast"].to_numpy(dtype=object)),
        "level": ("contrast", table["level"].to_numpy()),
        "reference": ("contrast", table["reference"].to_numpy()),
        **{k: ("contrast", table[k].to_numpy()) for k in keys},
    }
    if match == "last":
        coords["layer"] = ("contrast", table["layer"].to_numpy(dtype=object))
        coords["reference_layer"] = ("contrast", table["reference_layer"].to_numpy(dtype=object))
    return coords


def posterior_differences(
    gd: xr.Dataset, table: pd.DataFrame, quantities: Sequence[str], coords: dict[str, Any],
    attrs: dict[str, Any],
) -> xr.Dataset:
    """Posterior draws of *level minus reference* for each contrast, dims (chain, draw, contrast)."""
    lev_pos = xr.DataArray(table["level_pos"].to_numpy(), dims="contrast")
    ref_pos = xr.DataArray(table["ref_pos"].to_numpy(), dims="contrast")
    gvals = gd[list(quantities)].drop_vars([c for c in gd.coords if c not in ("chain", "draw")])
    diffs = (gvals.isel(group=lev_pos) - gvals.isel(group=ref_pos)).transpose("chain", "draw", "contrast")
    diffs = diffs.assign_coords(coords)
    diffs.attrs = dict(attrs)
    return diffs


def summarize_differences(diffs: xr.Dataset, prob: float) -> dict[str, xr.DataArray]:
    """Mean, equal-tailed interval, P(>0), P(<0) and probability of direction, by quantity."""
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    stacked = diffs.stack(sample=("chain", "draw"))
    summary = {
        "mean": stacked.mean("sample"),
        "low": stacked.quantile(lo_q, dim="sample").drop_vars("quantile"),
        "high": stacked.quantile(hi_q, dim="sample").drop_vars("quantile"),
        "p_positive": (stacked > 0).mean("sample"),
        "p_negative": (stacked < 0).mean("sample"),
    }
    post = {name: val.to_dataarray("quantity") for name, val in summary.items()}
    post["pd"] = np.maximum(post["p_positive"], post["p_negative"])
    return post
