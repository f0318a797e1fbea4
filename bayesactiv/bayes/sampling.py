"""Building the model of a fit, the compiled-model cache, and sampling (nutpie or PyMC).

The marginal models (every structure, pooled or not) have native log densities
(:mod:`bayesactiv.bayes.native`): nutpie gets numba callbacks cached on disk, so no process
compiles them. ``method="full"`` (and ``NATIVE_MODELS = False``) builds PyMC models that
nutpie compiles once per process per structure and padded data size
(:func:`bucket`) and reused through ``with_data``; :data:`COMPILE_COUNT` counts those compiles.

Examples
--------
>>> bucket(1), bucket(65), bucket(300)
(64, 128, 512)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from bayesactiv.bayes.likelihood import Terms, beta_terms, hist_terms, nb_quad_logp
from bayesactiv.bayes.native import NativeModel, compile_native, log_runs, native_kind
from bayesactiv.bayes.specs import group_params
from bayesactiv.bayes.sufficient import Groups, Stats

__all__ = [
    "COMPILED",
    "COMPILE_COUNT",
    "DRAW_GROUPS",
    "NATIVE_MODELS",
    "SAMPLERS",
    "bucket",
    "build_model",
    "model_data",
    "native_model",
    "rename_group_dims",
    "sample",
]

SAMPLERS = ("nutpie", "pymc")
# compiled nutpie models, keyed by (structure, method, padded sizes, pool_layers)
COMPILED: dict[tuple, Any] = {}
# how often each key was compiled in this process (benchmarks and tests read it)
COMPILE_COUNT: dict[tuple, int] = {}
DRAW_GROUPS = ("posterior", "warmup_posterior")  # groups of draws of the model's variables
# sample marginal models through their native log densities (False: through PyMC's graph,
# compiled by nutpie in every process; benchmarks and tests compare the two)
NATIVE_MODELS = True
# longest run of log terms in the native beta models (a run costs one log of a product)
NATIVE_RUN_MAX = 16


def bucket(size: int, minimum: int = 64) -> int:
    """Next power of two >= size (at least ``minimum``): padded array sizes share compiled models."""
    return max(minimum, 1 << max(0, int(size) - 1).bit_length())



def build_model(structure: str, method: str, n_groups: int, n_networks: int, pool: bool,
                data: dict[str, np.ndarray], mu_prior: tuple[float, float] = (1.0, 1.0)):
    """PyMC model over padded data arrays (zero weights on padding)."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        d = {name: pm.Data(name, value) for name, value in data.items()}
        net_idx = pm.Data("net_idx", np.zeros(n_groups, dtype=np.int64)) if pool else None
        params = group_params(structure, n_groups, net_idx, n_networks, pool, mu_prior)
        g = d.get("g")
        if method == "marginal":
            if structure == "beta":
                # tail-sum form (see tail_terms): logs and a few lgamma over slots [a, b, a + b]
                slots = pt.concatenate([params["a"], params["b"], params["a"] + params["b"]])
                pm.Potential("loglik", _tail_sum(d, slots))
                return model
            if structure == "gamma":
                al, be = params["alpha"][g], params["beta"][g]
                ll = (pt.gammaln(al + d["x"]) - pt.gammaln(al) + al * pt.log(be)
                      - (al + d["x"]) * pt.log(be + d["m"] * d["W"]))
            else:
                al, be, ph = params["alpha"][g], params["beta"][g], params["phi"][g]
                ll = nb_quad_logp(al, be, ph, d["x"], d["m"], d["W"])
                # sum_h w_h [lgamma(y_h + phi) - lgamma(phi)] in tail-sum form: logs, not
                # two huge lgamma that cancel at large phi (the Poisson limit)
                pm.Potential("loglik_hist", _tail_sum(d, params["phi"], prefix="h"))
            pm.Potential("loglik", pt.sum(d["w"] * ll))
        else:
            n_units = data["g"].shape[0]
            if structure == "beta" and data["x"].dtype.kind == "f":  # effective counts
                theta = pm.Beta("theta", params["a"][g], params["b"][g], shape=n_units)
                pm.Potential("obs", pt.sum(d["x"] * pt.log(theta)
                                           + (d["m"] - d["x"]) * pt.log1p(-theta)))
            elif structure == "beta":
                theta = pm.Beta("theta", params["a"][g], params["b"][g], shape=n_units)
                pm.Binomial("obs", n=d["m"], p=theta, observed=d["x"])
            elif structure == "gamma":
                lam = pm.Gamma("lam", params["alpha"][g], params["beta"][g], shape=n_units)
                pm.Poisson("obs", lam * d["m"] * d["W"], observed=d["x"])
            else:
                lam = pm.Gamma("lam", params["alpha"][g], params["beta"][g], shape=n_units)
                pm.NegativeBinomial("obs", mu=lam[:, None] * d["W"], alpha=params["phi"][g][:, None],
                                    observed=d["y"])
    return model


def _tail_sum(d: dict[str, Any], slots: Any, prefix: str = "") -> Any:
    """The PyTensor sum of tail-sum terms (``_padded_terms``' arrays) over ``slots``."""
    import pytensor.tensor as pt

    return (pt.sum(d[prefix + "lw"] * pt.log(slots[d[prefix + "li"]] + d[prefix + "lk"]))
            + pt.sum(d[prefix + "gw"] * pt.gammaln(slots[d[prefix + "gi"]] + d[prefix + "gk"])))


def _padded_terms(t: Terms, prefix: str = "") -> tuple[dict[str, np.ndarray], int, int]:
    """Tail-sum terms as model data, padded to :func:`bucket` sizes (weight 0 on padding):
    slots, offsets and weights of the log terms (``li``, ``lk``, ``lw``) and of the lgamma
    terms (``gi``, ``gk``, ``gw``), with the padded sizes."""
    nlog, nlg = bucket(len(t.log_w)), bucket(len(t.lg_w))
    columns = (("li", t.log_slot, nlog), ("lk", t.log_k, nlog), ("lw", t.log_w, nlog),
               ("gi", t.lg_slot, nlg), ("gk", t.lg_k, nlg), ("gw", t.lg_w, nlg))
    data = {prefix + name: np.pad(np.asarray(v, np.int64 if name.endswith("i") else float),
                                  (0, size - len(v))) for name, v, size in columns}
    return data, nlog, nlg


def model_data(structure: str, method: str, st: Stats, groups: Groups
               ) -> tuple[dict[str, np.ndarray], tuple]:
    """Data arrays for the model and the padded sizes that key the compile cache."""
    if method == "marginal" and structure == "beta":
        data, nlog, nlg = _padded_terms(beta_terms(st, len(groups.labels)))
        return data, ("tail", nlog, nlg)
    if method == "marginal":
        size = bucket(len(st.pair_x))
        pad = size - len(st.pair_x)
        data = {
            "x": np.pad(st.pair_x.astype(float), (0, pad)),
            "m": np.pad(st.pair_m.astype(float), (0, pad), constant_values=1.0),
            "w": np.pad(st.pair_weight, (0, pad)),
            "g": np.pad(st.pair_group.astype(np.int64), (0, pad)),
        }
        sizes: tuple = (size,)
        if structure != "beta":
            data["W"] = np.array(st.window)
        if structure == "nb":
            hist, nlog, nlg = _padded_terms(hist_terms(st, len(groups.labels)), prefix="h")
            data.update(hist)
            sizes = (size, nlog, nlg)
    else:
        as_counts = np.float64 if st.x.dtype.kind == "f" else np.int64
        data = {"x": st.x.astype(as_counts), "m": st.m.astype(as_counts), "g": groups.index}
        if structure != "beta":
            data["W"] = np.array(st.window)
        if structure == "nb":
            data = {"y": st.unit_windows.astype(np.int64), "g": groups.index, "W": data["W"]}
        sizes = (len(st.x),) + ((st.unit_windows.shape[1],) if structure == "nb" else ())
    return data, sizes



def native_model(structure: str, method: str, st: Stats, groups: Groups, pool: bool,
                 loc_prior: tuple[float, float]) -> NativeModel | None:
    """The model's data in the buffer of its native log density, or None when it has none.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> from bayesactiv.bayes.sufficient import make_groups, unit_stats
    >>> ds = ba.make_dataset([0, 3, 3, 9], 10, network="n", layer="l")
    >>> groups = make_groups(ds, ("network", "layer"), False)
    >>> m = native_model("beta", "marginal", unit_stats(ds, "beta_binomial", groups), groups,
    ...                  False, (1.0, 1.0))
    >>> m.names, m.n_dim
    (('mu', 'log_kappa', 'kappa'), 2)
    """
    if native_kind(structure, method, pool) is None:
        return None
    n_groups, n_networks = len(groups.labels), len(groups.networks)
    if structure == "beta":
        arrays, n_a, n_b = _tail_arrays(beta_terms(st, n_groups, log_run_max=NATIVE_RUN_MAX))
        n_c, window = 0, 1.0
    else:
        arrays = [st.pair_x, st.pair_m, st.pair_weight, st.pair_group]
        n_a, n_b, n_c, window = len(st.pair_x), 0, 0, float(st.window)
        if structure == "nb":
            hist, n_b, n_c = _tail_arrays(hist_terms(st, n_groups))
            arrays += hist
    return NativeModel.build(structure, pool, n_groups, n_networks,
                             groups.network_index if pool else None, arrays, n_a, n_b,
                             loc_prior, window, n_c)


def _tail_arrays(t: Terms) -> tuple[list[np.ndarray], int, int]:
    """Tail-sum terms as the native buffer holds them: the log terms gathered into runs,
    then the lgamma terms; with the number of each."""
    runs = log_runs(t.log_slot, t.log_k, t.log_w)
    return [*runs, t.lg_slot, t.lg_k, t.lg_w], len(runs[0]), len(t.lg_w)


def sample(structure: str, method: str, groups: Groups, st: Stats, pool: bool, sampler: str,
           draws: int, tune: int, chains: int, seed: int | None, progress: bool,
           sampler_kwargs: dict, mu_prior: tuple[float, float] = (1.0, 1.0)) -> xr.DataTree:
    """Draw from the posterior of the group parameters (or, ``method="full"``, of all).

    nutpie samples the native log density when the model has one (:func:`native_model`),
    otherwise the PyMC model compiled once per process and padded size; ``sampler="pymc"``
    runs PyMC's own NUTS on the PyMC model.
    """
    n_groups, n_networks = len(groups.labels), len(groups.networks)
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    native = (native_model(structure, method, st, groups, pool, mu_prior)
              if sampler == "nutpie" and NATIVE_MODELS else None)
    if native is not None:
        import nutpie

        return nutpie.sample(compile_native(native), draws=draws, tune=tune, chains=chains,
                             seed=int(seed), progress_bar=progress, **sampler_kwargs)
    data, sizes = model_data(structure, method, st, groups)
    if sampler == "pymc":
        import pymc as pm

        model = build_model(structure, method, n_groups, n_networks, pool, data, mu_prior)
        with model:
            if pool:
                pm.set_data({"net_idx": groups.network_index})
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                             nuts_sampler="pymc", progressbar=progress,
                             compute_convergence_checks=False, **sampler_kwargs)
    import nutpie

    key = (structure, method, n_groups, n_networks, sizes, pool, mu_prior)
    compiled = COMPILED.get(key)
    if compiled is None:
        model = build_model(structure, method, n_groups, n_networks, pool, data, mu_prior)
        compiled = nutpie.compile_pymc_model(model)
        COMPILED[key] = compiled
        COMPILE_COUNT[key] = COMPILE_COUNT.get(key, 0) + 1
    updates = dict(data)
    if pool:
        updates["net_idx"] = groups.network_index
    compiled = compiled.with_data(**updates)
    return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=int(seed),
                         progress_bar=progress, **sampler_kwargs)


def _with_group_dims(draws: xr.Dataset, groups: Groups, names: Sequence[str],
                     ds: xr.Dataset) -> xr.Dataset:
    """Name the group and unit dimensions of a dataset of draws and give them coordinates."""
    n_groups = len(groups.labels)
    renames = {}
    for name in draws.data_vars:
        dims = draws[name].dims
        if len(dims) == 3 and draws.sizes[dims[2]] == n_groups and name in names:
            renames[dims[2]] = "group"
        elif name in ("theta", "lam") and len(dims) == 3:
            renames[dims[2]] = "unit"
    draws = draws.rename_dims({k: v for k, v in renames.items() if k != v})
    draws = draws.drop_vars([k for k in renames if k in draws.coords])
    coords: dict[str, Any] = {"group": ("group", groups.labels)}
    for key, values in groups.coords.items():
        coords[f"group_{key}"] = ("group", values)
    if "unit" in draws.dims:
        coords["unit"] = ("unit", ds["unit"].values)
    return draws.assign_coords({k: v for k, v in coords.items() if v[0] in draws.dims})


def rename_group_dims(idata: xr.DataTree, groups: Groups, names: Sequence[str],
                      ds: xr.Dataset) -> xr.DataTree:
    """Give the group-level variables of the posterior and of the warm-up draws a ``group``
    dimension with coordinates (and the unit-level ones of the full method a ``unit``)."""
    for node in DRAW_GROUPS:
        if node in idata.children:
            idata[node] = xr.DataTree(_with_group_dims(idata[node].to_dataset(), groups,
                                                       names, ds))
    return idata
