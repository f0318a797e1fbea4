"""What a fit reports, computed from its draws: group-level draws and derived quantities
(``mfr``, ``mf``, ``frac_dead``), group intervals, per-unit estimates and per-unit draws.

The functions take the pieces of a :class:`~bayesactiv.bayes.result.FiringFit` (its
posterior, groups, sufficient statistics) so that the fit object itself stays a thin view.

Examples
--------
>>> import numpy as np
>>> thetas = np.array([[[0.001, 0.5]]])  # (chain, draw, unit): one draw of two units
>>> mfr, frac = full_group_averages(thetas, np.array([0, 0]), 1, 0.01)
>>> mfr.tolist(), frac.tolist()
([[[0.2505]]], [[[0.5]]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from bayesactiv.bayes.quantiles import (
    cdf,
    cdf_bounds,
    component_params,
    matched,
    moments,
    unit_summaries,
)
from bayesactiv.bayes.sufficient import CHUNK, Groups, Stats

__all__ = ["clustered_fano_draws", "draw_unit_parameters", "full_group_averages", "group_dataset", "group_intervals",
           "marginal_group_averages", "unit_dataset", "unit_estimates", "unit_positions"]


def _add_pair_chunk(st: Stats, params: dict[str, np.ndarray], chunk: np.ndarray, eps: float,
                    rng: np.random.Generator, sums: tuple[np.ndarray, np.ndarray, np.ndarray],
                    weighted: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Add one chunk of pairs to the per-group sums of the conditional means and variances of
    the unit parameter and to the number of dead units (all arrays (group, S)); with
    ``weighted``, also to the sums of ``d_u theta_u``'s conditional means and variances
    (``d_u``: the design effects of the clustered model)."""
    mean_sum, var_sum, dead = sums
    s = mean_sum.shape[1]
    chunk = chunk[np.argsort(st.pair_group[chunk], kind="stable")]
    p1, p2 = component_params(st, params, chunk)
    w = st.pair_weight[chunk][:, None]
    gi = st.pair_group[chunk]
    starts = np.flatnonzero(np.r_[True, gi[1:] != gi[:-1]])
    comp_mean, comp_var = moments(st.kind, p1, p2)
    mean_sum[gi[starts]] += np.add.reduceat(w * comp_mean, starts, axis=0)
    var_sum[gi[starts]] += np.add.reduceat(w * comp_var, starts, axis=0)
    if weighted is not None:
        d = st.pair_design_effect[chunk][:, None]
        weighted[0][gi[starts]] += np.add.reduceat(w * d * comp_mean, starts, axis=0)
        weighted[1][gi[starts]] += np.add.reduceat(w * d * d * comp_var, starts, axis=0)
    # dead units: a binomial draw per pair and draw, skipping pairs whose
    # P(theta < epsilon) is below 1e-12 (or above 1 - 1e-12) in every draw
    lo, hi = cdf_bounds(st.kind, p1, p2, eps)
    all_dead = lo > 1.0 - 1e-12
    dead[gi[all_dead]] += w[all_dead]
    todo = np.flatnonzero((hi >= 1e-12) & ~all_dead)
    if todo.size:
        prob = cdf(st.kind, p1[todo], p2[todo], np.full((todo.size, 1), eps))
        ndead = rng.binomial(w[todo].astype(np.int64).repeat(s, axis=1), np.clip(prob, 0, 1))
        np.add.at(dead, gi[todo], ndead)


def marginal_group_averages(st: Stats, params: dict[str, np.ndarray], n_units: np.ndarray,
                            eps: float, rng: np.random.Generator, n_chain: int, n_draw: int,
                            weighted: tuple[np.ndarray, np.ndarray] | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Draws (chain, draw, group) of the group mean of the unit parameter and of the fraction
    of dead units, in the marginal method (``params``: group parameters as (group, S)).

    The group average given a draw's parameters has an exact mean and variance (independent
    units); it is drawn from the Beta (Gamma) with those two moments. Dead units sharing a
    statistic are one binomial draw. ``weighted`` (two zero arrays (group, S)) receives, in
    the same pass, the conditional mean and variance of ``sum_u d_u theta_u`` per group, for
    :func:`clustered_fano_draws`."""
    n_groups, s = len(n_units), n_chain * n_draw
    sums = (np.zeros((n_groups, s)), np.zeros((n_groups, s)), np.zeros((n_groups, s)))
    for chunk in np.array_split(np.arange(len(st.pair_x)), max(1, len(st.pair_x) * s // CHUNK)):
        if chunk.size:
            _add_pair_chunk(st, params, chunk, eps, rng, sums, weighted)
    mean_sum, var_sum, dead = sums
    size = np.maximum(n_units, 1)[:, None]
    a1, a2 = matched(st.kind, mean_sum / size, var_sum / size**2)
    mfr_sum = size * (rng.beta(a1, a2) if st.kind == "beta" else rng.gamma(a1, 1.0 / a2))
    mfr = (mfr_sum / np.maximum(n_units, 1)[:, None]).reshape(n_groups, n_chain, n_draw)
    frac = (dead / np.maximum(n_units, 1)[:, None]).reshape(n_groups, n_chain, n_draw)
    return np.moveaxis(mfr, 0, -1), np.moveaxis(frac, 0, -1)


def clustered_fano_draws(st: Stats, weighted: tuple[np.ndarray, np.ndarray],
                         group_index: np.ndarray, n_groups: int, rng: np.random.Generator,
                         n_chain: int, n_draw: int) -> np.ndarray:
    """Draws (chain, draw, group) of the mean model-implied Fano factor of per-input counts,
    ``mean_u (1 - theta_u) d_u``, for the clustered model (``d_u``: design effects).

    Given a draw's group parameters the units are independent, so the sum over units of
    ``d_u theta_u`` has an exact conditional mean and variance (``weighted``, as
    :func:`marginal_group_averages` gathers them); it is drawn from the normal with those
    moments (close to exact for the many units of a layer)."""
    total, var = weighted
    n_units = np.maximum(np.bincount(group_index, minlength=n_groups), 1).astype(float)
    d_sum = np.bincount(group_index, weights=st.design_effect, minlength=n_groups)
    drawn = total + np.sqrt(var) * rng.standard_normal(total.shape)
    mf = (d_sum[:, None] - drawn) / n_units[:, None]
    return np.moveaxis(mf.reshape(n_groups, n_chain, n_draw), 0, -1)


def full_group_averages(unit_draws: np.ndarray, group_index: np.ndarray, n_groups: int,
                        eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Draws (chain, draw, group) of the group mean of sampled unit parameters
    (``unit_draws``: (chain, draw, unit)) and of the fraction below ``eps``."""
    n_units = np.bincount(group_index, minlength=n_groups).astype(float)
    onehot = np.zeros((len(group_index), n_groups))
    onehot[np.arange(len(group_index)), group_index] = 1.0
    mfr = (unit_draws @ onehot) / np.maximum(n_units, 1)
    frac = ((unit_draws < eps).astype(float) @ onehot) / np.maximum(n_units, 1)
    return mfr, frac


def group_dataset(post: xr.Dataset, groups: Groups, param_names: Sequence[str], model: str,
                  window: float, epsilon: float, is_rate: bool, mfr: np.ndarray,
                  frac: np.ndarray, mf: np.ndarray | None = None) -> xr.Dataset:
    """The dataset of :meth:`FiringFit.group_draws` from the group parameters' draws and the
    derived ``mfr`` and ``frac_dead`` draws (``mf`` follows from them)."""
    dims = ("chain", "draw", "group")
    out = xr.Dataset(coords={"chain": post["chain"].values, "draw": post["draw"].values,
                             "group": ("group", groups.labels)})
    for key, values in groups.coords.items():
        out = out.assign_coords({key: ("group", values)})
    for name in param_names:
        out[name] = (dims, post[name].transpose("chain", "draw", "group").values)
    out["mfr"] = (dims, mfr)
    if mf is not None:
        out["mf"] = (dims, mf)
    elif model == "gamma_poisson":
        out["mf"] = (dims, np.ones_like(mfr))
    elif model == "negative_binomial":
        out["mf"] = (dims, 1.0 + mfr * window / out["phi"].values)
    else:
        out["mf"] = (dims, 1.0 - mfr)
    out["frac_dead"] = (dims, frac)
    out.attrs.update(model=model, epsilon=epsilon,
                     unit_parameter="lambda (events per input)" if is_rate
                     else "theta (firing probability)")
    return out


def group_intervals(gd: xr.Dataset, groups: Groups, prob: float, model: str,
                    epsilon: float) -> xr.Dataset:
    """Per-group means and equal-tailed ``prob`` intervals of every variable of ``gd``."""
    out = xr.Dataset(coords={k: gd[k] for k in gd.coords if k not in ("chain", "draw")})
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    for name in gd.data_vars:
        da = gd[name]
        out[f"{name}_mean"] = da.mean(("chain", "draw"))
        q = da.quantile([lo, hi], dim=("chain", "draw"))
        out[f"{name}_low"] = q.isel(quantile=0, drop=True)
        out[f"{name}_high"] = q.isel(quantile=1, drop=True)
    n_groups = len(groups.labels)
    out["n_units"] = ("group", np.bincount(groups.index, minlength=n_groups))
    out.attrs.update(prob=prob, interval="equal-tailed", model=model, epsilon=epsilon)
    return out


def unit_estimates(method: str, st: Stats, params: Any, unit_draws: Any, qs: Sequence[float],
                   epsilon: float) -> np.ndarray:
    """Per unit: posterior mean, the quantiles ``qs`` and P(parameter < epsilon), (unit, 4).

    ``params`` (a callable returning the group parameters as (group, S)) is used by the
    marginal method, ``unit_draws`` (a callable returning (unit, chain, draw)) by the full."""
    if method == "marginal":
        return unit_summaries(st, params(), qs, epsilon)[st.unit_pair]
    draws = unit_draws()
    draws = draws.reshape(draws.shape[0], -1)
    return np.stack([draws.mean(axis=1), *np.quantile(draws, qs, axis=1),
                     (draws < epsilon).mean(axis=1)], axis=1)


def unit_dataset(ds: xr.Dataset, groups: Groups, per_unit: np.ndarray) -> xr.Dataset:
    """The dataset of :meth:`FiringFit.units` from the (unit, 4) estimates."""
    coords = {k: ds[k] for k in ds["unit"].coords if ds[k].dims == ("unit",)}
    return xr.Dataset(
        {
            "mean": ("unit", per_unit[:, 0]),
            "low": ("unit", per_unit[:, 1]),
            "high": ("unit", per_unit[:, 2]),
            "p_dead": ("unit", per_unit[:, 3]),
            "count": ("unit", ds["count"].values),
            "n": ("unit", ds["n"].values),
            "group": ("unit", groups.labels[groups.index]),
        },
        coords=coords,
    )


def unit_positions(ds: xr.Dataset, units: Any) -> np.ndarray:
    """Positions of ``units`` (unit ids or int positions; None: all) in the dataset."""
    idx = np.arange(ds.sizes["unit"])
    if units is None:
        return idx
    units = np.atleast_1d(np.asarray(units))
    if units.dtype.kind in "iu":
        return idx[units]
    pos = {u: i for i, u in enumerate(ds["unit"].values)}
    missing = [u for u in units if u not in pos]
    if missing:
        raise KeyError(f"units: not in the dataset: {missing[:5]}")
    return np.array([pos[u] for u in units])


def draw_unit_parameters(st: Stats, params: dict[str, np.ndarray], post: xr.Dataset,
                         ds: xr.Dataset, idx: np.ndarray, max_draws: int | None,
                         rng: np.random.Generator, name: str) -> xr.DataArray:
    """Draws (chain, draw, unit) of the units ``idx``' parameter from its conditional posterior
    given each draw of the group parameters (marginal method)."""
    sl = slice(None, max_draws)
    n_chain, n_draw = post.sizes["chain"], post["draw"].isel(draw=sl).size
    params = {k: v.reshape(v.shape[0], n_chain, -1)[:, :, sl].reshape(v.shape[0], -1)
              for k, v in params.items()}
    p1, p2 = component_params(st, params, st.unit_pair[idx])
    vals = rng.beta(p1, p2) if st.kind == "beta" else rng.gamma(p1, 1.0 / p2)
    vals = vals.reshape(len(idx), n_chain, n_draw).transpose(1, 2, 0)
    return xr.DataArray(vals, dims=("chain", "draw", "unit"),
                        coords={"unit": ds["unit"].values[idx], "chain": post["chain"].values,
                                "draw": post["draw"].values[sl]},
                        name=name)
