"""Bayesian hierarchical models of how hidden units fire, fitted with PyMC + nutpie.

Four statistical models of the firing of units ``u`` in groups ``g`` (by default one
group per network x layer):

``beta_binomial`` (firing probability, from ``count``/``n``)::

    count_u ~ Binomial(n_u, theta_u)
    theta_u ~ Beta(mu_g kappa_g, (1 - mu_g) kappa_g)
    mu_g ~ Beta(1, 1)                        (uniform over the mean firing probability)
    log kappa_g ~ Normal(log 10, 2.5)        (95%: kappa in [0.07, 1340])

``binomial_window`` (at most one event per input, from ``window_count``)::

    y_uw ~ Binomial(W, theta_u),  theta_u ~ Beta(mu_g kappa_g, (1 - mu_g) kappa_g)

``gamma_poisson`` (seed 002's Poisson process, from ``window_count``)::

    y_uw ~ Poisson(lambda_u W)
    lambda_u ~ Gamma(alpha_g, beta_g)        (shape alpha_g, rate beta_g; mean m_g = alpha_g / beta_g)
    log m_g ~ Normal(log 0.1, 2.5)           (events per input; 95%: [7e-4, 13])
    log alpha_g ~ Normal(0, 2.5)             (alpha << 1: many near-silent units; >> 1: alike)

``negative_binomial`` (over-dispersed windows, from ``window_count``)::

    y_uw ~ NegativeBinomial(mean lambda_u W, dispersion phi_g),  lambda_u ~ Gamma(alpha_g, beta_g)
    log phi_g ~ Normal(log 10, 2.5)          (phi -> infinity recovers the Poisson model)

Why these priors: ``kappa`` is the prior "number of inputs" of the unit-level Beta. A
concentration far below 1 puts the units at 0 and 1 (dead and saturated units, a bimodal
layer); a large one makes the units of a layer alike. ``log kappa ~ Normal(log 10, 2.5)``
covers both (kappa = 0.01 and kappa = 10^4 are 2.8 sd out) while keeping the sampler away from
the numerically empty extremes. The same reasoning applies to ``alpha`` (the Gamma shape) and
``phi``. With ``pool_layers=True`` the group locations are pooled within each network,
``logit mu_g ~ Normal(M_net, S_net)`` (rate models: ``log m_g``), ``M_net ~ Normal(0, 1.5)``
(rate models: ``Normal(log 0.1, 2.5)``), ``S_net ~ HalfNormal(1)``, non-centred.

Inference that scales: with ``method="marginal"`` (the default) the unit-level parameter is
integrated out in closed form (beta-binomial and Gamma-Poisson marginals; for the negative
binomial by 24-point Gauss-Hermite quadrature over log lambda), the data are compressed to the
distinct (group, sufficient statistic) pairs with multiplicities, and the sampler sees only the
group parameters. The beta-binomial marginals (``beta_binomial``, ``binomial_window``) are
evaluated in exact tail-sum form: ``sum_u lgamma(a + c_u) - lgamma(a) = sum_k T_k log(a + k)``
with ``T_k`` the number of units with ``c_u > k`` (likewise for ``b`` and ``a + b``), runs of
constant ``T`` longer than 8 taken as lgamma differences: cheap logs instead of lgamma and
digamma per distinct pair (about 10x less per gradient evaluation, ``benchmarks/fit.py``). Per-unit posteriors are recovered exactly by conjugacy, e.g.
``theta_u | mu, kappa, data ~ Beta(mu kappa + c_u, (1 - mu) kappa + n_u - c_u)``, and per-unit
summaries are mixtures over posterior draws computed once per distinct pair. ``method="full"``
samples the unit-level parameters explicitly (for checking, and for small data).

Intervals are **equal-tailed** (ETI): the ``(1 - prob) / 2`` and ``(1 + prob) / 2`` posterior
quantiles, for units and for groups alike.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy import special
from xarray.backends import BackendArray
from xarray.core import indexing

from bayesactiv.data.checks import (
    ArgumentError,
    check_choice,
    check_int,
    check_number,
    check_prob,
    check_seed,
)
from bayesactiv.data.dataset import DatasetError, require, validate
from bayesactiv.data.grouping import group_units, normalize_group_by

# warnings point at the first frame outside the package: the user's call
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

__all__ = ["MODELS", "ConvergenceWarning", "FiringFit", "compare_models", "fit"]

MODELS = ("beta_binomial", "gamma_poisson", "negative_binomial", "binomial_window")
_RATE_MODELS = ("gamma_poisson", "negative_binomial")
_METHODS = ("marginal", "full")
_SAMPLERS = ("nutpie", "pymc")
_RHAT_MAX = 1.01
_ESS_MIN = 400
_N_QUAD = 24
_TINY = 1e-300
_QUANTILE_BUDGET = 250_000  # components (pairs x draws) per pass of the quantile solver
_QUANTILE_MIN_DRAWS = 256  # at least this many (evenly thinned) draws in per-unit quantiles
_QUANTILE_SE = 1e-3  # thinning error allowed in per-unit quantiles (standard error of the
# mixture CDF at the quantile, i.e. on the probability scale: scale-free, so a quantile of a
# near-dead unit at 1e-9 is held to the same standard as one at 0.5)
_CHUNK = 2_000_000  # elements per (pairs x draws) block in summaries: memory stays bounded

# compiled nutpie models, keyed by (structure, method, padded sizes, pool_layers)
_COMPILED: dict[tuple, Any] = {}
# how often each key was compiled in this process (benchmarks and tests read it)
COMPILE_COUNT: dict[tuple, int] = {}


class ConvergenceWarning(UserWarning):
    """A fit failed its convergence diagnostics (R-hat, bulk/tail ESS, divergences)."""


# ------------------------------------------------------------------ data preparation


def _bucket(size: int, minimum: int = 64) -> int:
    """Next power of two >= size (at least ``minimum``): padded array sizes share compiled models."""
    return max(minimum, 1 << max(0, int(size) - 1).bit_length())


@dataclass
class _Groups:
    index: np.ndarray  # group of each unit, shape (unit,)
    labels: np.ndarray  # str label per group
    coords: dict[str, np.ndarray]  # one coordinate per group_by key
    network_index: np.ndarray  # network of each group (for pool_layers)
    networks: np.ndarray


def _make_groups(ds: xr.Dataset, group_by: Sequence[str] | str | None, pool_layers: bool
                 ) -> _Groups:
    """The units' groups (:func:`bayesactiv.data.grouping.group_units`) and, for ``pool_layers``,
    the network of each group."""
    grouping = group_units(ds, group_by)
    if pool_layers:
        if "network" not in grouping.keys:
            raise ArgumentError("pool_layers: needs 'network' in group_by (layers are pooled "
                                "per network)")
        networks, network_index = np.unique(grouping.coords["network"].astype(str),
                                            return_inverse=True)
    else:
        networks = np.array(["all"])
        network_index = np.zeros(grouping.n_groups, dtype=np.int64)
    return _Groups(grouping.index, grouping.labels.astype(str).astype(object), grouping.coords,
                   network_index.astype(np.int64), networks)


@dataclass
class _Stats:
    """Per-unit sufficient statistics of a model, and their compression to distinct pairs."""

    kind: str  # "beta" (x successes of m trials) or "rate" (x events in exposure k*W)
    x: np.ndarray  # successes / events, shape (unit,)
    m: np.ndarray  # trials (beta) or number of windows (rate), shape (unit,)
    const: np.ndarray  # log-likelihood constant per unit (not needed for sampling)
    window: float  # W for rate models (1 for beta models)
    # compression
    pair_group: np.ndarray = field(default_factory=lambda: np.empty(0))
    pair_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    pair_m: np.ndarray = field(default_factory=lambda: np.empty(0))
    pair_weight: np.ndarray = field(default_factory=lambda: np.empty(0))
    unit_pair: np.ndarray = field(default_factory=lambda: np.empty(0))
    # negative binomial: histogram of window counts per group
    hist_group: np.ndarray | None = None
    hist_y: np.ndarray | None = None
    hist_weight: np.ndarray | None = None
    unit_windows: np.ndarray | None = None  # (unit, window) for pointwise NB log-likelihood


def _stats(ds: xr.Dataset, model: str, groups: _Groups) -> _Stats:
    if model == "beta_binomial":
        x = ds["count"].values.astype(np.int64)
        m = ds["n"].values.astype(np.int64)
        const = special.gammaln(m + 1) - special.gammaln(x + 1) - special.gammaln(m - x + 1)
        st = _Stats("beta", x, m, const, 1.0)
    else:
        how = "record(..., window_size=W) or make_dataset(..., window_count=, window_size=)"
        require(ds, "window_count", f"the {model!r} model", how)
        y = ds["window_count"].values.astype(np.int64)  # (window, unit)
        w = int(ds.attrs["window_size"])
        k = y.shape[0]
        if k == 0:
            raise DatasetError(f"window_count: the {model!r} model needs at least one window")
        x = y.sum(axis=0)
        if model == "binomial_window":
            m = np.full(x.shape, k * w, dtype=np.int64)
            const = (special.gammaln(w + 1) - special.gammaln(y + 1)
                     - special.gammaln(w - y + 1)).sum(axis=0)
            st = _Stats("beta", x, m, const, 1.0)
        else:
            m = np.full(x.shape, k, dtype=np.int64)
            const = (x * math.log(w) - special.gammaln(y + 1).sum(axis=0)) if model == \
                "gamma_poisson" else -special.gammaln(y + 1).sum(axis=0)
            st = _Stats("rate", x, m, const, float(w))
            if model == "negative_binomial":
                st.unit_windows = y.T.copy()
                keys = groups.index[None, :] * (w + 1) + y
                uniq, counts = np.unique(keys.ravel(), return_counts=True)
                st.hist_group = uniq // (w + 1)
                st.hist_y = uniq % (w + 1)
                st.hist_weight = counts.astype(float)
    xr_, mr_ = int(st.x.max(initial=0)) + 1, int(st.m.max(initial=0)) + 1
    ng = int(groups.index.max(initial=0)) + 1
    if float(ng) * mr_ * xr_ < 2.0**62:  # one int64 key per unit: a fast 1-d unique
        key = (groups.index * mr_ + st.m) * xr_ + st.x
        uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        st.pair_group, rest = np.divmod(uniq, mr_ * xr_)
        st.pair_m, st.pair_x = np.divmod(rest, xr_)
    else:
        keys = np.stack([groups.index, st.m, st.x], axis=1)
        uniq, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        st.pair_group, st.pair_m, st.pair_x = uniq[:, 0], uniq[:, 1], uniq[:, 2]
    st.pair_weight = counts.astype(float)
    st.unit_pair = inverse.ravel()
    return st


# ------------------------------------------------------------------ model building


_LOG_RUN_MAX = 8  # runs of at most this many offsets are summed as logs, longer ones by lgamma


@dataclass
class _Terms:
    """``sum_i w_i [lgamma(P_s + c_i) - lgamma(P_s)]`` (items i of slots s) rewritten exactly as

    ``sum_j log_w_j log(P[log_slot_j] + log_k_j) + sum_j lg_w_j lgamma(P[lg_slot_j] + lg_k_j)``.
    """

    log_slot: np.ndarray
    log_k: np.ndarray
    log_w: np.ndarray
    lg_slot: np.ndarray
    lg_k: np.ndarray
    lg_w: np.ndarray


def _tail_terms(slot: np.ndarray, c: np.ndarray, w: np.ndarray, n_slots: int,
                log_run_max: int = _LOG_RUN_MAX) -> _Terms:
    """Exact sufficient-statistic form of sums of ``lgamma(P + c) - lgamma(P)`` over items.

    For an integer offset ``c >= 0``, ``lgamma(P + c) - lgamma(P) = sum_{k<c} log(P + k)``, so
    ``sum_i w_i [lgamma(P + c_i) - lgamma(P)] = sum_k T_k log(P + k)`` with the tail weight
    ``T_k = sum of w_i over items with c_i > k``. ``T`` is constant between consecutive distinct
    offsets; a run of constant ``T`` over ``[v, v')`` costs ``v' - v`` logs or
    ``T [lgamma(P + v') - lgamma(P + v)]`` (two lgamma, shared with the neighbouring runs).
    Runs of at most ``log_run_max`` offsets take the logs (log and its derivative 1/x are far
    cheaper than lgamma and digamma), longer ones the lgamma difference.

    Parameters
    ----------
    slot, c, w : arrays of the same length
        Slot (parameter) index in ``[0, n_slots)``, non-negative integer offset and weight
        (any sign) of each item.
    n_slots : int
        Number of parameter slots.
    log_run_max : int
        Longest run evaluated as logs.

    Returns
    -------
    _Terms
        The log terms and lgamma terms (zero weights dropped, lgamma terms merged by offset).
    """
    slot = np.concatenate([np.asarray(slot, dtype=np.int64), np.arange(n_slots, dtype=np.int64)])
    c = np.concatenate([np.asarray(c, dtype=np.int64), np.zeros(n_slots, dtype=np.int64)])
    w = np.concatenate([np.asarray(w, dtype=float), np.zeros(n_slots)])
    if c.size and c.min() < 0:
        raise ValueError("offsets must be non-negative integers")
    order = np.lexsort((c, slot))
    slot, c, w = slot[order], c[order], w[order]
    first = np.r_[True, (slot[1:] != slot[:-1]) | (c[1:] != c[:-1])]
    start = np.flatnonzero(first)
    h = np.add.reduceat(w, start)  # weight per distinct (slot, offset)
    s, v = slot[start], c[start]
    cs = np.cumsum(h)
    slot_start = np.r_[True, s[1:] != s[:-1]]
    before = (cs - h)[slot_start][np.cumsum(slot_start) - 1]  # cumsum before each slot
    tot = np.bincount(s, weights=h, minlength=n_slots)
    tail = tot[s] - (cs - before)  # T on [v_j, v_{j+1})
    same_next = np.r_[s[1:] == s[:-1], False]
    v_next = np.r_[v[1:], 0]
    gap = np.where(same_next, v_next - v, 0)
    active = same_next & (tail != 0)
    as_log = active & (gap <= log_run_max)
    as_lg = active & (gap > log_run_max)
    reps = gap[as_log]
    total = int(reps.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
    log_slot = np.repeat(s[as_log], reps)
    log_k = np.repeat(v[as_log], reps) + offsets
    log_w = np.repeat(tail[as_log], reps)
    lg_slot = np.concatenate([s[as_lg], s[as_lg]])
    lg_k = np.concatenate([v_next[as_lg], v[as_lg]])
    lg_w = np.concatenate([tail[as_lg], -tail[as_lg]])
    if lg_w.size:
        key = np.stack([lg_slot, lg_k], axis=1)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        lg_w = np.bincount(inv.ravel(), weights=lg_w)
        lg_slot, lg_k = uniq[:, 0], uniq[:, 1]
        keep = lg_w != 0
        lg_slot, lg_k, lg_w = lg_slot[keep], lg_k[keep], lg_w[keep]
    return _Terms(log_slot, log_k, log_w, lg_slot, lg_k, lg_w)


def _beta_terms(st: _Stats, n_groups: int) -> _Terms:
    """Beta-binomial marginal log-likelihood of all units (without the binomial coefficients)
    in tail-sum form over the slots ``P = [a_g, b_g, (a + b)_g]``:

    ``sum_u lgamma(a + x_u) - lgamma(a) + lgamma(b + m_u - x_u) - lgamma(b)
    - [lgamma(a + b + m_u) - lgamma(a + b)]``."""
    g, x, m, w = st.pair_group, st.pair_x, st.pair_m, st.pair_weight
    return _tail_terms(np.concatenate([g, n_groups + g, 2 * n_groups + g]),
                       np.concatenate([x, m - x, m]), np.concatenate([w, w, -w]),
                       3 * n_groups)



def _structure(model: str) -> str:
    return {"beta_binomial": "beta", "binomial_window": "beta", "gamma_poisson": "gamma",
            "negative_binomial": "nb"}[model]


def _group_params(structure: str, n_groups: int, net_idx: Any, n_networks: int, pool: bool,
                  mu_prior: tuple[float, float] = (1.0, 1.0)):
    """Declare the group-level parameters inside the current PyMC model.

    ``mu_prior`` is the prior of the group location: Beta(a, b) of mu for the probability
    models, Normal(mean, sd) of log m for the rate models.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if pool:
        loc0, loc_sd = (0.0, 1.5) if structure.startswith("beta") else (math.log(0.1), 2.5)
        m_net = pm.Normal("M_network", loc0, loc_sd, shape=n_networks)
        s_net = pm.HalfNormal("S_network", 1.0, shape=n_networks)
        z = pm.Normal("z_group", 0.0, 1.0, shape=n_groups)
        loc = m_net[net_idx] + s_net[net_idx] * z
    if structure.startswith("beta"):
        if pool:
            mu = pm.Deterministic("mu", pt.sigmoid(loc))
        else:
            mu = pm.Beta("mu", mu_prior[0], mu_prior[1], shape=n_groups)
        log_kappa = pm.Normal("log_kappa", math.log(10.0), 2.5, shape=n_groups)
        kappa = pm.Deterministic("kappa", pt.exp(log_kappa))
        return {"a": mu * kappa, "b": (1.0 - mu) * kappa}
    log_m = pm.Deterministic("log_m", loc) if pool else pm.Normal(
        "log_m", mu_prior[0], mu_prior[1], shape=n_groups)
    log_alpha = pm.Normal("log_alpha", 0.0, 2.5, shape=n_groups)
    alpha = pm.Deterministic("alpha", pt.exp(log_alpha))
    beta = pm.Deterministic("beta", pt.exp(log_alpha - log_m))
    out = {"alpha": alpha, "beta": beta}
    if structure.startswith("nb"):
        log_phi = pm.Normal("log_phi", math.log(10.0), 2.5, shape=n_groups)
        out["phi"] = pm.Deterministic("phi", pt.exp(log_phi))
    return out


def _betaln(a, b):
    import pytensor.tensor as pt

    return pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)


def _nb_quad_logp(alpha, beta, phi, s, k, w):
    """log of int prod_w NB(y_w | lam W, phi) Gamma(lam | alpha, beta) dlam, without the
    lgamma(y_w + phi) - lgamma(phi) - lgamma(y_w + 1) terms (added per group from the histogram).

    Gauss-Hermite quadrature over t = log lam, centred on the Poisson-posterior mode."""
    import pytensor.tensor as pt

    nodes, weights = np.polynomial.hermite.hermgauss(_N_QUAD)
    a_post = alpha + s
    center = pt.log(a_post) - pt.log(beta + k * w)
    scale = pt.sqrt(1.0 / a_post + 1.0 / (k * phi + 1.0)) * math.sqrt(2.0)
    t = center[:, None] + scale[:, None] * nodes[None, :]
    lam_w = pt.exp(t) * w
    # log NB part depending on lam (per unit): s log(lam W) + k phi log phi - (s + k phi) log(lam W + phi)
    s_, k_, phi_ = s[:, None], k[:, None], phi[:, None]
    log_nb = s_ * pt.log(lam_w) + k_ * phi_ * pt.log(phi_) - (s_ + k_ * phi_) * pt.log(lam_w + phi_)
    log_prior = (alpha[:, None] * pt.log(beta[:, None]) - pt.gammaln(alpha[:, None])
                 + alpha[:, None] * t - beta[:, None] * pt.exp(t))  # density of t = log lam
    integrand = log_nb + log_prior + np.log(weights)[None, :] + nodes[None, :] ** 2
    return pt.logsumexp(integrand, axis=1) + pt.log(scale)


def _build_model(structure: str, method: str, n_groups: int, n_networks: int, pool: bool,
                 data: dict[str, np.ndarray], mu_prior: tuple[float, float] = (1.0, 1.0)):
    """PyMC model over padded data arrays (zero weights on padding)."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        d = {name: pm.Data(name, value) for name, value in data.items()}
        net_idx = pm.Data("net_idx", np.zeros(n_groups, dtype=np.int64)) if pool else None
        params = _group_params(structure, n_groups, net_idx, n_networks, pool, mu_prior)
        g = d.get("g")
        if method == "marginal":
            if structure == "beta":
                # tail-sum form (see _tail_terms): logs and a few lgamma over slots [a, b, a + b]
                slots = pt.concatenate([params["a"], params["b"], params["a"] + params["b"]])
                pm.Potential("loglik", pt.sum(d["lw"] * pt.log(slots[d["li"]] + d["lk"]))
                             + pt.sum(d["gw"] * pt.gammaln(slots[d["gi"]] + d["gk"])))
                return model
            if structure == "gamma":
                al, be = params["alpha"][g], params["beta"][g]
                ll = (pt.gammaln(al + d["x"]) - pt.gammaln(al) + al * pt.log(be)
                      - (al + d["x"]) * pt.log(be + d["m"] * d["W"]))
            else:
                al, be, ph = params["alpha"][g], params["beta"][g], params["phi"][g]
                ll = _nb_quad_logp(al, be, ph, d["x"], d["m"], d["W"])
                hph = params["phi"][d["hg"]]
                pm.Potential("loglik_hist", pt.sum(d["hw"] * (pt.gammaln(d["hy"] + hph)
                                                             - pt.gammaln(hph))))
            pm.Potential("loglik", pt.sum(d["w"] * ll))
        else:
            n_units = data["g"].shape[0]
            if structure == "beta":
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


def _model_data(structure: str, method: str, st: _Stats, groups: _Groups
                ) -> tuple[dict[str, np.ndarray], tuple]:
    """Data arrays for the model and the padded sizes that key the compile cache."""
    if method == "marginal" and structure == "beta":
        t = _beta_terms(st, len(groups.labels))
        nlog, nlg = _bucket(len(t.log_w)), _bucket(len(t.lg_w))
        data = {
            "li": np.pad(t.log_slot, (0, nlog - len(t.log_w))),
            "lk": np.pad(t.log_k.astype(float), (0, nlog - len(t.log_w))),
            "lw": np.pad(t.log_w, (0, nlog - len(t.log_w))),
            "gi": np.pad(t.lg_slot, (0, nlg - len(t.lg_w))),
            "gk": np.pad(t.lg_k.astype(float), (0, nlg - len(t.lg_w))),
            "gw": np.pad(t.lg_w, (0, nlg - len(t.lg_w))),
        }
        return data, ("tail", nlog, nlg)
    if method == "marginal":
        size = _bucket(len(st.pair_x))
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
            hsize = _bucket(len(st.hist_y))
            hpad = hsize - len(st.hist_y)
            data["hy"] = np.pad(st.hist_y.astype(float), (0, hpad))
            data["hw"] = np.pad(st.hist_weight, (0, hpad))
            data["hg"] = np.pad(st.hist_group.astype(np.int64), (0, hpad))
            sizes = (size, hsize)
    else:
        data = {"x": st.x.astype(np.int64), "m": st.m.astype(np.int64), "g": groups.index}
        if structure != "beta":
            data["W"] = np.array(st.window)
        if structure == "nb":
            data = {"y": st.unit_windows.astype(np.int64), "g": groups.index, "W": data["W"]}
        sizes = (len(st.x),) + ((st.unit_windows.shape[1],) if structure == "nb" else ())
    return data, sizes


# ------------------------------------------------------------------ sampling


def _sample(structure: str, method: str, groups: _Groups, data: dict[str, np.ndarray],
            sizes: tuple, pool: bool, sampler: str, draws: int, tune: int, chains: int,
            seed: int | None, progress: bool, sampler_kwargs: dict,
            mu_prior: tuple[float, float] = (1.0, 1.0)) -> xr.DataTree:
    n_groups, n_networks = len(groups.labels), len(groups.networks)
    if pool:
        data = {**data}
    if sampler == "pymc":
        import pymc as pm

        model = _build_model(structure, method, n_groups, n_networks, pool, data, mu_prior)
        with model:
            if pool:
                pm.set_data({"net_idx": groups.network_index})
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                             nuts_sampler="pymc", progressbar=progress,
                             compute_convergence_checks=False, **sampler_kwargs)
    import nutpie

    key = (structure, method, n_groups, n_networks, sizes, pool, mu_prior)
    compiled = _COMPILED.get(key)
    if compiled is None:
        model = _build_model(structure, method, n_groups, n_networks, pool, data, mu_prior)
        compiled = nutpie.compile_pymc_model(model)
        _COMPILED[key] = compiled
        COMPILE_COUNT[key] = COMPILE_COUNT.get(key, 0) + 1
    updates = dict(data)
    if pool:
        updates["net_idx"] = groups.network_index
    compiled = compiled.with_data(**updates)
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=int(seed),
                         progress_bar=progress, **sampler_kwargs)


# posterior variables with one value per group (they get the ``group`` dimension)
_GROUP_PARAMS = ("mu", "kappa", "log_kappa", "alpha", "beta", "phi", "log_alpha", "log_m",
                 "log_phi", "z_group")
_DRAW_GROUPS = ("posterior", "warmup_posterior")  # groups of draws of the model's variables


def _with_group_dims(draws: xr.Dataset, groups: _Groups, names: Sequence[str],
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


def _rename_group_dims(idata: xr.DataTree, groups: _Groups, names: Sequence[str],
                       ds: xr.Dataset) -> xr.DataTree:
    """Give the group-level variables of the posterior and of the warm-up draws a ``group``
    dimension with coordinates (and the unit-level ones of the full method a ``unit``)."""
    for node in _DRAW_GROUPS:
        if node in idata.children:
            idata[node] = xr.DataTree(_with_group_dims(idata[node].to_dataset(), groups,
                                                       names, ds))
    return idata


# ------------------------------------------------------------------ per-unit mixtures


def _component_params(st: _Stats, draws: dict[str, np.ndarray], pairs: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Conditional posterior parameters (pairs, S) of the unit-level parameter."""
    g = st.pair_group[pairs]
    x = st.pair_x[pairs][:, None].astype(float)
    m = st.pair_m[pairs][:, None].astype(float)
    if st.kind == "beta":
        a = draws["a"][g]  # (pairs, S)
        b = draws["b"][g]
        return a + x, b + m - x
    # rate: Gamma(alpha + x, beta + m W) (exact for gamma_poisson)
    return draws["alpha"][g] + x, draws["beta"][g] + m * st.window


def _cdf(kind: str, p1: np.ndarray, p2: np.ndarray, x: np.ndarray) -> np.ndarray:
    if kind == "beta":
        return special.betainc(p1, p2, np.clip(x, 0.0, 1.0))
    return special.gammainc(p1, p2 * np.maximum(x, 0.0))


def _logpdf(kind: str, p1, p2, lnorm, x):
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "beta":
            return (p1 - 1) * np.log(x) + (p2 - 1) * np.log1p(-x) - lnorm
        return p1 * np.log(p2) + (p1 - 1) * np.log(x) - p2 * x - lnorm


def _moments(kind: str, p1: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each component (Beta(p1, p2) or Gamma(shape p1, rate p2))."""
    if kind == "beta":
        mean = p1 / (p1 + p2)
        return mean, mean * (1.0 - mean) / (p1 + p2 + 1.0)
    return p1 / p2, p1 / p2**2


def _matched(kind: str, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameters of the Beta (Gamma) with the given mean and variance."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "beta":
            nu = mean * (1.0 - mean) / var - 1.0
            return np.maximum(mean * nu, 1e-300), np.maximum((1.0 - mean) * nu, 1e-300)
        return np.maximum(mean**2 / var, 1e-300), np.maximum(mean / var, 1e-300)


def _cdf_bounds(kind: str, p1: np.ndarray, p2: np.ndarray, x: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds, per row, of the components' CDFs at ``x``.

    Both the Beta CDF ``I_x(p1, p2)`` and the Gamma CDF ``P(p1, p2 x)`` decrease in ``p1`` and
    increase in ``p2``, so two CDF evaluations per row bound all of its components."""
    lo = _cdf(kind, p1.max(axis=1), p2.min(axis=1), np.asarray(x))
    hi = _cdf(kind, p1.min(axis=1), p2.max(axis=1), np.asarray(x))
    return lo, hi


def _mixture_cdf_at(kind: str, p1: np.ndarray, p2: np.ndarray, x: float,
                    negligible: float = 1e-12) -> np.ndarray:
    """Mean over the components of each row of the CDF at ``x``.

    Rows whose components' CDFs are all below ``negligible`` (above ``1 - negligible``) by
    :func:`_cdf_bounds` are returned as 0 (1) without evaluating every component."""
    lo, hi = _cdf_bounds(kind, p1, p2, x)
    out = np.where(lo > 1.0 - negligible, 1.0, 0.0)
    todo = np.flatnonzero((hi >= negligible) & (lo <= 1.0 - negligible))
    if todo.size:
        out[todo] = _cdf(kind, p1[todo], p2[todo], np.full((todo.size, 1), x)).mean(axis=1)
    return out


def _mixture_quantiles(kind: str, p1: np.ndarray, p2: np.ndarray, qs: Sequence[float],
                       tol: float = 1e-7, max_iter: int = 200,
                       mean: np.ndarray | None = None, var: np.ndarray | None = None,
                       return_se: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Quantiles of equal-weight mixtures (rows of p1, p2) by safeguarded Newton iteration.

    The iteration starts from the quantile of the Beta (Gamma) matching the mixture's mean and
    variance (``mean``, ``var`` per row; computed from the components when not given), which
    is already close when the components are alike. Each step evaluates the mixture CDF and
    density at the current point (one incomplete beta/gamma function per component), takes a
    Newton step in ``log x`` (near-dead units have quantiles many orders of magnitude below
    their standard deviation, where steps in ``x`` are vanishingly small), and stops when
    ``|F - q| < tol``, or when the step changes ``x`` by a relative ``1e-9``, or by less than
    ``1e-5`` of the mixture's standard deviation once ``|F - q| < 1e-4``. Steps leaving the bracket bisect it
    (geometrically across orders of magnitude).

    Returns an array (rows, len(qs)); with ``return_se``, also the Monte Carlo standard error
    due to the finite number of components, on the probability scale: the standard deviation
    of the components' CDFs at the quantile over sqrt(components).
    """
    rows, n_comp = p1.shape
    se = np.zeros((rows, len(qs)))
    if kind == "beta":
        lnorm = special.betaln(p1, p2)
    else:
        lnorm = special.gammaln(p1)
    out = np.empty((rows, len(qs)))
    if mean is None or var is None:
        comp_mean, comp_var = _moments(kind, p1, p2)
        mean = comp_mean.mean(axis=1)
        var = comp_var.mean(axis=1) + comp_mean.var(axis=1)
    sd = np.sqrt(var)
    m1, m2 = _matched(kind, mean, var)
    for j, q in enumerate(qs):
        if kind == "beta":
            lo, hi = np.zeros(rows), np.ones(rows)
            start = special.betaincinv(m1, m2, q)
        else:
            lo = np.zeros(rows)
            hi = (special.gammaincinv(p1, q) / p2).max(axis=1) * (1 + 1e-9) + 1e-300
            start = special.gammaincinv(m1, q) / m2
        inner = (start > lo) & (start < hi) & np.isfinite(start)
        x = np.where(inner, start, 0.5 * (lo + hi))
        active = np.arange(rows)
        for _ in range(max_iter):
            xa = x[active]
            pa, qa = p1[active], p2[active]
            comp_F = _cdf(kind, pa, qa, xa[:, None])
            F = comp_F.mean(axis=1)
            err = F - q
            done = np.abs(err) < tol
            below = err < 0
            lo[active] = np.where(below, xa, lo[active])
            hi[active] = np.where(below, hi[active], xa)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                f = np.exp(_logpdf(kind, pa, qa, lnorm[active], xa[:, None])).mean(axis=1)
                # Newton on log x: dF/dlog x = x f(x). Near 0 the density of a near-dead unit
                # is astronomically large (x^(a-1) with a ~ 1e-3), so a step in x itself is
                # microscopic although F is far from q; in log x the step has the right size
                log_step = -err / (f * xa)
                step = xa * np.exp(log_step)
                se[active, j] = comp_F.std(axis=1) / math.sqrt(n_comp)
            la, ha = lo[active], hi[active]
            ok = np.isfinite(step) & (step > la) & (step < ha)
            # bisect geometrically while the bracket spans orders of magnitude (quantiles of
            # near-dead units can be 1e-100), arithmetically otherwise
            floor = np.maximum(la, _TINY)
            mid = np.where(ha > 4 * floor, np.sqrt(floor * ha), 0.5 * (la + ha))
            new = np.where(ok, step, mid)
            x[active] = np.where(done, xa, new)
            # converged: a Newton step (in log x) that moves x by less than a relative 1e-9,
            # or by less than 1e-5 of the mixture's spread
            done |= ok & ((np.abs(log_step) < 1e-9)
                          | ((np.abs(step - xa) < 1e-5 * sd[active]) & (np.abs(err) < 1e-4)))
            done |= (ha - la) < 1e-13 * ha
            active = active[~done]
            if active.size == 0:
                break
        # quantiles below the smallest normal double are reported as 0
        near = np.flatnonzero(x < 1e-100)
        if near.size:
            at_zero = _cdf(kind, p1[near], p2[near], np.full((near.size, 1), _TINY)).mean(axis=1)
            x[near[at_zero >= q]] = 0.0
        out[:, j] = x
    if return_se:
        return out, np.nan_to_num(se, nan=np.inf)
    return out


def _quantile_draws(n_pairs: int, n_draws: int) -> int:
    """How many evenly thinned draws the per-unit quantiles use (all of them for small data)."""
    return int(min(n_draws, max(_QUANTILE_MIN_DRAWS, _QUANTILE_BUDGET // max(n_pairs, 1))))


def _thin(n_all: int, n_keep: int) -> np.ndarray:
    """Indices of ``n_keep`` evenly spaced draws out of ``n_all``."""
    return np.linspace(0, n_all - 1, min(n_keep, n_all)).round().astype(int)


def _adaptive_quantiles(kind: str, p1: np.ndarray, p2: np.ndarray, qs: Sequence[float],
                        mean: np.ndarray, var: np.ndarray, n_draws: int) -> np.ndarray:
    """Mixture quantiles from ``n_draws`` evenly thinned components, redone with more (up to
    all) for the rows whose thinning error exceeds :data:`_QUANTILE_SE`.

    The thinning error of ``k`` of ``n`` components is estimated as the Monte Carlo standard
    error of the ``k``-component mixture CDF at the quantile times ``sqrt(1 - k / n)``; rows above the limit are
    solved again with the number of components the estimate asks for (at least twice as many)."""
    n_all = p1.shape[1]
    keep = _thin(n_all, n_draws)
    out, se = _mixture_quantiles(kind, p1[:, keep], p2[:, keep], qs, mean=mean, var=var,
                                 return_se=True)
    rows = np.arange(p1.shape[0])
    while keep.size < n_all:
        k = keep.size
        ratio = (se[rows].max(axis=1) / _QUANTILE_SE) ** 2 * k * (1.0 / k - 1.0 / n_all)
        rows = rows[ratio > 1.0]
        if rows.size == 0:
            break
        need = int(min(n_all, max(2 * k, k * float(np.median(ratio[ratio > 1.0])))))
        keep = _thin(n_all, need)
        out[rows], se[rows] = _mixture_quantiles(
            kind, p1[rows][:, keep], p2[rows][:, keep], qs, mean=mean[rows], var=var[rows],
            return_se=True)
    return out


def _unit_summaries(st: _Stats, params: dict[str, np.ndarray], qs: Sequence[float],
                    epsilon: float, n_quantile_draws: int | None = None) -> np.ndarray:
    """Per distinct pair: posterior mean, the quantiles ``qs`` and P(parameter < epsilon).

    Mean, variance (the Newton start) and ``p_dead`` use every draw in ``params`` (arrays
    (group, S)); the quantiles use ``n_quantile_draws`` evenly thinned draws (default
    :func:`_quantile_draws`). Returns an array (pairs, 2 + len(qs))."""
    n_pairs = len(st.pair_x)
    s_all = next(iter(params.values())).shape[1]
    s_q = _quantile_draws(n_pairs, s_all) if n_quantile_draws is None else n_quantile_draws
    res = np.empty((n_pairs, 2 + len(qs)))
    for chunk in np.array_split(np.arange(n_pairs), max(1, n_pairs * s_all // _CHUNK)):
        if chunk.size == 0:
            continue
        p1, p2 = _component_params(st, params, chunk)
        comp_mean, comp_var = _moments(st.kind, p1, p2)
        mean = comp_mean.mean(axis=1)
        var = comp_var.mean(axis=1) + comp_mean.var(axis=1)
        res[chunk, 0] = mean
        res[chunk, 1:-1] = _adaptive_quantiles(st.kind, p1, p2, qs, mean, var, s_q)
        res[chunk, -1] = _mixture_cdf_at(st.kind, p1, p2, epsilon)
    return res


# ------------------------------------------------------------------ the fit object


class FiringFit:
    """The posterior of a firing model fitted to an activation dataset.

    Built by :func:`fit`; do not construct directly.

    Attributes
    ----------
    idata : xarray.DataTree
        The ArviZ view of the fit: what the sampler returned (``posterior``,
        ``sample_stats``, ``warmup_*``; the group-level variables carry a ``group``
        dimension), ``observed_data``, ``constant_data`` and ``log_likelihood`` (per unit,
        computed when first read), so ``az.loo(fit.idata)`` and ``az.plot_*`` work on it.
    ds : xarray.Dataset
        The activation dataset fitted.
    model : str
        The statistical model's name.
    method : str
        ``"marginal"`` or ``"full"``.
    group_by : tuple of str
        The unit coordinates that define the groups.
    epsilon : float
        Firing threshold below which a unit counts as dead.
    diagnostics : dict
        ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, ``ok`` and the
        per-parameter values (``rhat``, ``ess_bulk``, ``ess_tail`` as xr.Datasets).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
    >>> f.model, f.method, f.group_by
    ('beta_binomial', 'marginal', ('network', 'layer'))
    >>> bool(f.diagnostics["ok"]), f.diagnostics["divergences"]
    (True, 0)
    >>> sorted(f.idata.children)  # doctest: +NORMALIZE_WHITESPACE
    ['constant_data', 'log_likelihood', 'observed_data', 'posterior', 'sample_stats',
     'warmup_posterior', 'warmup_sample_stats']
    """

    def __init__(self, *, idata: xr.DataTree, ds: xr.Dataset, model: str, method: str,
                 group_by: tuple[str, ...], groups: _Groups, stats: _Stats, epsilon: float,
                 seed: int | None, pool_layers: bool):
        self.idata = idata
        self.ds = ds
        self.model = model
        self.method = method
        self.group_by = group_by
        self.epsilon = float(epsilon)
        self.pool_layers = pool_layers
        self._groups = groups
        self._stats = stats
        self._seed = seed
        self._group_draws: xr.Dataset | None = None
        self._units: dict[float, xr.Dataset] = {}
        self.diagnostics = self._diagnose()

    # ---------------------------------------------------------------- basics

    @property
    def is_rate(self) -> bool:
        """Whether the unit-level parameter is a rate (events per input), not a probability."""
        return self.model in _RATE_MODELS

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the group-level parameters in :meth:`group_draws`."""
        if self.is_rate:
            return ("alpha", "beta", "phi") if self.model == "negative_binomial" else ("alpha", "beta")
        return ("mu", "kappa")

    def _posterior(self) -> xr.Dataset:
        return self.idata["posterior"].to_dataset()

    def _flat(self, name: str) -> np.ndarray:
        """Posterior draws of a group-level parameter as (group, S)."""
        return _flat_draws(self._posterior(), name)

    def _draw_params(self) -> dict[str, np.ndarray]:
        if self._stats.kind == "beta":
            mu, kappa = self._flat("mu"), self._flat("kappa")
            return {"a": mu * kappa, "b": (1 - mu) * kappa}
        return {"alpha": self._flat("alpha"), "beta": self._flat("beta")}

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng(None if self._seed is None else [self._seed, salt])

    def _diagnose(self) -> dict[str, Any]:
        import arviz as az

        names = [v for v in (*self.param_names, "log_m", "M_network", "S_network")
                 if v in self._posterior().data_vars]
        post = self.idata["posterior"].to_dataset()[names]
        rhat = az.rhat(post)
        ess_bulk = az.ess(post, method="bulk")
        ess_tail = az.ess(post, method="tail")
        div = 0
        if "sample_stats" in self.idata.children and "diverging" in self.idata["sample_stats"]:
            div = int(self.idata["sample_stats"]["diverging"].sum())

        def _agg(d: xr.Dataset, fn) -> float:
            vals = np.concatenate([np.ravel(d[v].values) for v in d.data_vars])
            vals = vals[np.isfinite(vals)]
            return float(fn(vals)) if vals.size else float("nan")

        out = {
            "rhat_max": _agg(rhat, np.max),
            "ess_bulk_min": _agg(ess_bulk, np.min),
            "ess_tail_min": _agg(ess_tail, np.min),
            "divergences": div,
            "rhat": rhat,
            "ess_bulk": ess_bulk,
            "ess_tail": ess_tail,
        }
        problems = []
        if not out["rhat_max"] <= _RHAT_MAX:
            problems.append(f"R-hat {out['rhat_max']:.3f} > {_RHAT_MAX}")
        if not out["ess_bulk_min"] >= _ESS_MIN:
            problems.append(f"bulk ESS {out['ess_bulk_min']:.0f} < {_ESS_MIN}")
        if not out["ess_tail_min"] >= _ESS_MIN:
            problems.append(f"tail ESS {out['ess_tail_min']:.0f} < {_ESS_MIN}")
        if div:
            problems.append(f"{div} divergent transitions")
        out["ok"] = not problems
        out["problems"] = problems
        if problems:
            warnings.warn(
                f"bayesactiv.fit({self.model!r}): the sampler did not converge reliably: "
                + "; ".join(problems)
                + ". Run longer (draws=, tune=), more chains, or raise target_accept; "
                "do not trust the intervals yet.",
                ConvergenceWarning,
                skip_file_prefixes=(_PACKAGE_DIR,),  # point at the user's call, not at bayesactiv
            )
        return out

    # ---------------------------------------------------------------- group level

    def group_draws(self) -> xr.Dataset:
        """Posterior draws of the group-level parameters and derived quantities.

        Returns
        -------
        xarray.Dataset
            Dims ``(chain, draw, group)``. Variables ``mu``, ``kappa`` (probability models) or
            ``alpha``, ``beta`` (and ``phi`` for the negative binomial) (rate models), and:

            * ``mfr`` - mean firing rate: per draw, the mean over the group's units of the
              unit parameter theta_u (or lambda_u) drawn from its conditional posterior given
              the group parameters and the unit's data. In the marginal method the group
              average is drawn from the Beta (rate models: Gamma) matching its exact
              conditional mean and variance (the units are independent given the group
              parameters; exact for a group of one unit, and close to the exact, nearly
              normal, sum of many units).
            * ``mf`` - mean over units of the model-implied Fano factor of window counts:
              ``1 - theta_u`` for the binomial models, ``1`` for the Poisson,
              ``1 + lambda_u W / phi`` for the negative binomial.
            * ``frac_dead`` - per draw, the fraction of the group's units whose theta_u
              (lambda_u) is below ``epsilon`` (drawn exactly: units sharing a statistic are a
              binomial draw; statistics whose P(theta_u < epsilon) is below 1e-12 in every
              draw count as alive, above 1 - 1e-12 as dead).

            Coordinates on ``group``: ``group`` (label such as ``"net/layer"``) and one per
            ``group_by`` key.

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> gd = f.group_draws()
        >>> gd["mu"].dims
        ('chain', 'draw', 'group')
        >>> dict(gd.sizes), gd["group"].values.tolist()
        ({'chain': 2, 'draw': 2000, 'group': 1}, ['net/fc1'])
        >>> sorted(gd.data_vars)
        ['frac_dead', 'kappa', 'mf', 'mfr', 'mu']
        """
        if self._group_draws is not None:
            return self._group_draws
        post = self._posterior()
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        n_groups = len(self._groups.labels)
        n_units = np.bincount(self._groups.index, minlength=n_groups).astype(float)
        st = self._stats
        eps = self.epsilon
        rng = self._rng(1)
        if self.method == "marginal":
            params = self._draw_params()
            s = n_chain * n_draw
            mean_sum = np.zeros((n_groups, s))  # sum over units of E[theta_u | params]
            var_sum = np.zeros((n_groups, s))  # sum over units of Var[theta_u | params]
            dead = np.zeros((n_groups, s))
            for chunk in np.array_split(np.arange(len(st.pair_x)),
                                        max(1, len(st.pair_x) * s // _CHUNK)):
                if chunk.size == 0:
                    continue
                chunk = chunk[np.argsort(st.pair_group[chunk], kind="stable")]
                p1, p2 = _component_params(st, params, chunk)
                w = st.pair_weight[chunk][:, None]
                gi = st.pair_group[chunk]
                starts = np.flatnonzero(np.r_[True, gi[1:] != gi[:-1]])
                comp_mean, comp_var = _moments(st.kind, p1, p2)
                mean_sum[gi[starts]] += np.add.reduceat(w * comp_mean, starts, axis=0)
                var_sum[gi[starts]] += np.add.reduceat(w * comp_var, starts, axis=0)
                # dead units: a binomial draw per pair and draw, skipping pairs whose
                # P(theta < epsilon) is below 1e-12 (or above 1 - 1e-12) in every draw
                lo, hi = _cdf_bounds(st.kind, p1, p2, eps)
                all_dead = lo > 1.0 - 1e-12
                dead[gi[all_dead]] += w[all_dead]
                todo = np.flatnonzero((hi >= 1e-12) & ~all_dead)
                if todo.size:
                    prob = _cdf(st.kind, p1[todo], p2[todo], np.full((todo.size, 1), eps))
                    ndead = rng.binomial(w[todo].astype(np.int64).repeat(s, axis=1),
                                         np.clip(prob, 0, 1))
                    np.add.at(dead, gi[todo], ndead)
            # the group average given the draw's parameters: independent units, so its mean
            # and variance are exact; drawn from the Beta (Gamma) with those two moments
            size = np.maximum(n_units, 1)[:, None]
            a1, a2 = _matched(st.kind, mean_sum / size, var_sum / size**2)
            mfr_sum = size * (rng.beta(a1, a2) if st.kind == "beta" else rng.gamma(a1, 1.0 / a2))
            mfr = (mfr_sum / np.maximum(n_units, 1)[:, None]).reshape(n_groups, n_chain, n_draw)
            frac = (dead / np.maximum(n_units, 1)[:, None]).reshape(n_groups, n_chain, n_draw)
            mfr = np.moveaxis(mfr, 0, -1)
            frac = np.moveaxis(frac, 0, -1)
        else:
            name = "lam" if self.is_rate else "theta"
            unit_draws = post[name].transpose("chain", "draw", "unit").values
            onehot = np.zeros((len(self._groups.index), n_groups))
            onehot[np.arange(len(self._groups.index)), self._groups.index] = 1.0
            mfr = (unit_draws @ onehot) / np.maximum(n_units, 1)
            frac = ((unit_draws < eps).astype(float) @ onehot) / np.maximum(n_units, 1)
        dims = ("chain", "draw", "group")
        out = xr.Dataset(coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                 "group": ("group", self._groups.labels)})
        for key, values in self._groups.coords.items():
            out = out.assign_coords({key: ("group", values)})
        for name in self.param_names:
            out[name] = (dims, post[name].transpose("chain", "draw", "group").values)
        out["mfr"] = (dims, mfr)
        if self.model == "gamma_poisson":
            out["mf"] = (dims, np.ones_like(mfr))
        elif self.model == "negative_binomial":
            out["mf"] = (dims, 1.0 + mfr * self._stats.window / out["phi"].values)
        else:
            out["mf"] = (dims, 1.0 - mfr)
        out["frac_dead"] = (dims, frac)
        out.attrs.update(model=self.model, epsilon=self.epsilon,
                         unit_parameter="lambda (events per input)" if self.is_rate
                         else "theta (firing probability)")
        self._group_draws = out
        return out

    def groups(self, prob: float = 0.9) -> xr.Dataset:
        """Per-group posterior means and equal-tailed intervals.

        Parameters
        ----------
        prob : float
            Probability mass of the equal-tailed interval.

        Returns
        -------
        xarray.Dataset
            Dim ``group`` with ``<q>_mean``, ``<q>_low``, ``<q>_high`` for q in the group
            parameters (``mu``, ``kappa`` or ``alpha``, ``beta``[, ``phi``]) and ``mfr``,
            ``mf``, ``frac_dead``; plus ``n_units``; coords ``group`` and the group_by keys.

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> g = f.groups(0.9)
        >>> g["group"].values.tolist(), g["n_units"].values.tolist()
        (['net/fc1'], [8])
        >>> low, mean, high = (g[f"mfr_{s}"].item() for s in ("low", "mean", "high"))
        >>> bool(low < mean < high), bool(0.15 < mean < 0.35)  # 45 of 160 events fired
        (True, True)
        """
        prob = check_prob(prob)
        gd = self.group_draws()
        out = xr.Dataset(coords={k: gd[k] for k in gd.coords if k not in ("chain", "draw")})
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        for name in gd.data_vars:
            da = gd[name]
            out[f"{name}_mean"] = da.mean(("chain", "draw"))
            q = da.quantile([lo, hi], dim=("chain", "draw"))
            out[f"{name}_low"] = q.isel(quantile=0, drop=True)
            out[f"{name}_high"] = q.isel(quantile=1, drop=True)
        n_groups = len(self._groups.labels)
        out["n_units"] = ("group", np.bincount(self._groups.index, minlength=n_groups))
        out.attrs.update(prob=prob, interval="equal-tailed", model=self.model,
                         epsilon=self.epsilon)
        return out

    # ---------------------------------------------------------------- unit level

    def units(self, prob: float = 0.9) -> xr.Dataset:
        """Per-unit posterior mean, equal-tailed interval and probability of being dead.

        In the marginal method each unit's posterior is the mixture over posterior draws of
        its conjugate conditional (Beta or Gamma); its quantiles are solved once per distinct
        (group, statistic) pair by safeguarded Newton iteration on the mixture CDF, so the
        cost is O(distinct pairs x draws), not O(units x draws). The posterior mean and
        ``p_dead`` use every draw; the quantiles use ``min(draws, max(256, 250,000 / pairs))``
        evenly thinned draws (all of them for small data; their error from thinning is far
        below 1e-3, see ``benchmarks/fit.py``). For ``negative_binomial``
        the per-unit conditional used is Gamma(alpha + S_u, beta + K_u W), the Poisson
        conjugate: exact only as phi -> infinity, an approximation otherwise (the same holds for
        its ``mfr`` and ``frac_dead`` draws).

        Parameters
        ----------
        prob : float
            Probability mass of the equal-tailed interval.

        Returns
        -------
        xarray.Dataset
            Indexed by ``unit`` with the unit coordinates: ``mean``, ``low``, ``high`` of
            theta_u (probability models) or lambda_u (rate models, events per input),
            ``p_dead`` = P(theta_u < epsilon | data) (values below 1e-12 in every draw are
            reported as 0), and the data ``count``, ``n``.

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> u = f.units(0.9)
        >>> u["unit"].values.tolist()[:3], u["count"].values.tolist()[:3]
        (['net/fc1/0', 'net/fc1/1', 'net/fc1/2'], [0, 2, 3])
        >>> bool(((u["low"] < u["mean"]) & (u["mean"] < u["high"])).all())
        True
        >>> int(u["p_dead"].values.argmax())  # the unit that never fired
        0
        """
        prob = check_prob(prob)
        if prob in self._units:
            return self._units[prob]
        st = self._stats
        qs = [(1 - prob) / 2, (1 + prob) / 2]
        if self.method == "marginal":
            res = _unit_summaries(st, self._draw_params(), qs, self.epsilon)
            per_unit = res[st.unit_pair]
        else:
            name = "lam" if self.is_rate else "theta"
            draws = self._posterior()[name].transpose("unit", "chain", "draw").values
            draws = draws.reshape(draws.shape[0], -1)
            per_unit = np.stack([draws.mean(axis=1), *np.quantile(draws, qs, axis=1),
                                 (draws < self.epsilon).mean(axis=1)], axis=1)
        coords = {k: self.ds[k] for k in self.ds["unit"].coords if self.ds[k].dims == ("unit",)}
        out = xr.Dataset(
            {
                "mean": ("unit", per_unit[:, 0]),
                "low": ("unit", per_unit[:, 1]),
                "high": ("unit", per_unit[:, 2]),
                "p_dead": ("unit", per_unit[:, 3]),
                "count": ("unit", self.ds["count"].values),
                "n": ("unit", self.ds["n"].values),
                "group": ("unit", self._groups.labels[self._groups.index]),
            },
            coords=coords,
        )
        out.attrs.update(prob=prob, interval="equal-tailed", model=self.model,
                         epsilon=self.epsilon,
                         parameter="lambda (events per input)" if self.is_rate
                         else "theta (firing probability)")
        self._units[prob] = out
        return out

    def unit_draws(self, units: Any = None, *, max_draws: int | None = None) -> xr.DataArray:
        """Posterior draws of the unit parameter (chain, draw, unit): this materializes them.

        Parameters
        ----------
        units : sequence of unit ids or int positions, optional
            Which units (default: all; beware of memory for large recordings).
        max_draws : int, optional
            Keep only the first ``max_draws`` draws per chain.

        Returns
        -------
        xarray.DataArray
            theta_u (or lambda_u) drawn from its conditional posterior given each draw of the
            group parameters (marginal method), or the sampled values (full method).

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> draws = f.unit_draws(["net/fc1/0"])
        >>> draws.dims, draws.shape
        (('chain', 'draw', 'unit'), (2, 2000, 1))
        >>> f.unit_draws([0, 7], max_draws=100).shape
        (2, 100, 2)
        """
        if max_draws is not None:
            max_draws = check_int(max_draws, "max_draws", minimum=1)
        idx = np.arange(self.ds.sizes["unit"])
        if units is not None:
            units = np.atleast_1d(np.asarray(units))
            if units.dtype.kind in "iu":
                idx = idx[units]
            else:
                pos = {u: i for i, u in enumerate(self.ds["unit"].values)}
                missing = [u for u in units if u not in pos]
                if missing:
                    raise KeyError(f"units: not in the dataset: {missing[:5]}")
                idx = np.array([pos[u] for u in units])
        post = self._posterior()
        sl = slice(None, max_draws)
        if self.method == "full":
            name = "lam" if self.is_rate else "theta"
            return post[name].isel(unit=idx, draw=sl)
        n_chain, n_draw = post.sizes["chain"], post["draw"].isel(draw=sl).size
        params = {k: v.reshape(v.shape[0], post.sizes["chain"], -1)[:, :, sl].reshape(
            v.shape[0], -1) for k, v in self._draw_params().items()}
        p1, p2 = _component_params(self._stats, params, self._stats.unit_pair[idx])
        rng = self._rng(2)
        vals = rng.beta(p1, p2) if self._stats.kind == "beta" else rng.gamma(p1, 1.0 / p2)
        vals = vals.reshape(len(idx), n_chain, n_draw).transpose(1, 2, 0)
        return xr.DataArray(vals, dims=("chain", "draw", "unit"),
                            coords={"unit": self.ds["unit"].values[idx],
                                    "chain": post["chain"].values,
                                    "draw": post["draw"].values[sl]},
                            name="lam" if self.is_rate else "theta")

    # ---------------------------------------------------------------- summaries

    def summary(self, prob: float = 0.9):
        """ArviZ summary of the group-level parameters, with the divergence count.

        Parameters
        ----------
        prob : float
            Mass of the equal-tailed interval (``ci_kind="eti"``).

        Returns
        -------
        pandas.DataFrame
            ``mean``, ``sd``, interval, ``ess_bulk``, ``ess_tail``, ``r_hat``, MCSE per
            parameter; ``.attrs["divergences"]`` and a ``divergences`` column.

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> table = f.summary()
        >>> table.index.tolist()
        ['mu[net/fc1]', 'kappa[net/fc1]']
        >>> {"mean", "sd", "ess_bulk", "ess_tail", "r_hat", "divergences"} <= set(table.columns)
        True
        """
        import arviz as az

        prob = check_prob(prob)
        names = [v for v in self.param_names if v in self._posterior().data_vars]
        table = az.summary(self.idata, var_names=names, ci_prob=prob, ci_kind="eti")
        table["divergences"] = self.diagnostics["divergences"]
        table.attrs["divergences"] = self.diagnostics["divergences"]
        table.attrs["ok"] = self.diagnostics["ok"]
        return table

    def log_likelihood(self) -> xr.DataArray:
        """Pointwise log-likelihood per unit (chain, draw, unit), marginal over theta/lambda.

        Each unit's log-likelihood is that of all its data given the group parameters, with
        the unit parameter integrated out (closed form; negative binomial by quadrature), so
        the unit is the exchangeable observation for PSIS-LOO. It is ``idata["log_likelihood"]``
        (variable ``count`` or ``window_count``, like the observed data), which ``fit`` only
        declares: this, or ArviZ reading it, computes it (once; O(units x draws) memory).

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> ll = f.log_likelihood()
        >>> ll.dims, ll.shape
        (('chain', 'draw', 'unit'), (2, 2000, 8))
        >>> bool((ll < 0).all())
        True
        """
        name = _observed_name(self.model)
        if "log_likelihood" not in self.idata.children:
            self.idata = _add_data_groups(self.idata, self.ds, self.model, self._stats,
                                          self._groups)
        return self.idata["log_likelihood"][name].load()

    def __repr__(self) -> str:
        d = self.diagnostics
        return (f"FiringFit(model={self.model!r}, method={self.method!r}, "
                f"groups={len(self._groups.labels)}, units={self.ds.sizes['unit']}, "
                f"rhat_max={d['rhat_max']:.3f}, ess_bulk_min={d['ess_bulk_min']:.0f}, "
                f"divergences={d['divergences']})")


def _nb_quad_numpy(al, be, ph, s, k, w):
    """numpy twin of :func:`_nb_quad_logp` (arrays (unit, S))."""
    nodes, weights = np.polynomial.hermite.hermgauss(_N_QUAD)
    a_post = al + s
    center = np.log(a_post) - np.log(be + k * w)
    scale = np.sqrt(1.0 / a_post + 1.0 / (k * ph + 1.0)) * math.sqrt(2.0)
    t = center[..., None] + scale[..., None] * nodes
    lam_w = np.exp(t) * w
    s_, k_, ph_ = s[..., None], k[..., None], ph[..., None]
    log_nb = s_ * np.log(lam_w) + k_ * ph_ * np.log(ph_) - (s_ + k_ * ph_) * np.log(lam_w + ph_)
    log_prior = (al[..., None] * np.log(be[..., None]) - special.gammaln(al[..., None])
                 + al[..., None] * t - be[..., None] * np.exp(t))
    integrand = log_nb + log_prior + np.log(weights) + nodes**2
    return special.logsumexp(integrand, axis=-1) + np.log(scale)


# ------------------------------------------------------------------ ArviZ groups


def _observed_name(model: str) -> str:
    """The dataset variable a model describes (named alike in observed_data and log_likelihood)."""
    return "count" if model == "beta_binomial" else "window_count"


def _pointwise_log_lik(model: str, st: _Stats, group_index: np.ndarray,
                       params: dict[str, np.ndarray]) -> np.ndarray:
    """Log-likelihood of each unit's data per draw, the unit parameter integrated out.

    ``params`` holds the group parameters as arrays (group, S): ``a``, ``b`` (probability
    models) or ``alpha``, ``beta`` and, for the negative binomial, ``phi``. Units sharing a
    (group, statistic) pair share the marginal term, computed once per pair; the per-unit
    constants (binomial coefficients, ``-log y!``) and, for the negative binomial, the
    ``sum_w lgamma(y_w + phi) - lgamma(phi)`` terms are added per unit. Returns (S, unit).
    """
    n_draws = next(iter(params.values())).shape[1]
    n_pairs = len(st.pair_x)
    pair_ll = np.empty((n_draws, n_pairs))
    per_chunk = max(1, _CHUNK // (n_draws * (_N_QUAD if model == "negative_binomial" else 1)))
    for start in range(0, n_pairs, per_chunk):
        sl = slice(start, start + per_chunk)
        g = st.pair_group[sl]
        x, m = st.pair_x[sl].astype(float), st.pair_m[sl].astype(float)
        if st.kind == "beta":
            a, b = params["a"].T[:, g], params["b"].T[:, g]
            pair_ll[:, sl] = special.betaln(a + x, b + m - x) - special.betaln(a, b)
        elif model == "gamma_poisson":
            al, be = params["alpha"].T[:, g], params["beta"].T[:, g]
            pair_ll[:, sl] = (special.gammaln(al + x) - special.gammaln(al) + al * np.log(be)
                              - (al + x) * np.log(be + m * st.window))
        else:
            al, be, ph = (params[k].T[:, g] for k in ("alpha", "beta", "phi"))
            pair_ll[:, sl] = _nb_quad_numpy(al, be, ph, x, m, st.window)
    out = pair_ll[:, st.unit_pair]
    out += st.const[None, :]
    if model == "negative_binomial":
        out += _nb_window_terms(st, group_index, params["phi"]).T
    return out


def _nb_window_terms(st: _Stats, group_index: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``sum_w lgamma(y_uw + phi_g) - lgamma(phi_g)`` per unit and draw, shape (unit, S): a
    sparse (unit x distinct (group, y)) count matrix times the terms of the distinct values."""
    from scipy import sparse

    y = st.unit_windows  # (unit, window)
    span = int(y.max(initial=0)) + 1
    keys = st.hist_group * span + st.hist_y  # np.unique's output: sorted
    unit_keys = (group_index[:, None] * span + y).ravel()
    cols = np.searchsorted(keys, unit_keys)
    rows = np.repeat(np.arange(y.shape[0]), y.shape[1])
    counts = sparse.csr_array((np.ones(rows.size), (rows, cols)), shape=(y.shape[0], keys.size))
    ph = phi[st.hist_group]  # (key, S)
    terms = special.gammaln(st.hist_y[:, None] + ph) - special.gammaln(ph)
    return counts @ terms


class _LazyLogLik(BackendArray):
    """The pointwise log-likelihood of a fit, (chain, draw, unit), computed on first read.

    It is O(units x draws) in memory (3.2 GB for 10^5 units x 4,000 draws), so ``fit`` only
    declares it; ArviZ (``az.loo``, ``az.compare``) computes it when it reads the values, once.
    """

    def __init__(self, model: str, stats: _Stats, group_index: np.ndarray,
                 posterior: xr.Dataset):
        self.model, self.stats, self.group_index = model, stats, group_index
        self.posterior = posterior
        self.shape = (posterior.sizes["chain"], posterior.sizes["draw"], len(group_index))
        self.dtype = np.dtype(np.float64)
        self._values: np.ndarray | None = None

    def values(self) -> np.ndarray:
        """The whole array (computed on the first call, then kept)."""
        if self._values is None:
            params = {name: _flat_draws(self.posterior, name)
                      for name in ("mu", "kappa", "alpha", "beta", "phi")
                      if name in self.posterior.data_vars}
            if self.stats.kind == "beta":
                mu, kappa = params.pop("mu"), params.pop("kappa")
                params = {"a": mu * kappa, "b": (1 - mu) * kappa}
            ll = _pointwise_log_lik(self.model, self.stats, self.group_index, params)
            self._values = ll.reshape(self.shape)
        return self._values

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC,
                                                  lambda k: self.values()[k])


def _flat_draws(posterior: xr.Dataset, name: str) -> np.ndarray:
    """Draws of a group-level parameter as an array (group, chain x draw)."""
    arr = posterior[name].transpose("group", "chain", "draw").values
    return arr.reshape(arr.shape[0], -1)


def _add_data_groups(idata: xr.DataTree, ds: xr.Dataset, model: str, st: _Stats,
                     groups: _Groups) -> xr.DataTree:
    """Add what ArviZ reads besides the draws: ``observed_data`` (the data the model saw),
    ``constant_data`` (trials ``n`` or the window size) and ``log_likelihood`` (per unit, lazy).
    """
    name = _observed_name(model)
    if name == "count":
        observed = ds[["count"]]
        constant = ds[["n"]]
    else:
        observed = ds[["window_count"]]
        constant = xr.Dataset({"window_size": int(ds.attrs["window_size"])})
    post = idata["posterior"].to_dataset()
    lazy = _LazyLogLik(model, st, groups.index,
                       post[[v for v in _GROUP_PARAMS if v in post.data_vars]])
    log_lik = xr.Variable(("chain", "draw", "unit"), indexing.LazilyIndexedArray(lazy),
                          attrs={"description": "log-likelihood of all of the unit's data "
                                 "given the group parameters, the unit parameter integrated "
                                 "out (the unit is the observation of PSIS-LOO)"})
    coords = {"chain": post["chain"].values, "draw": post["draw"].values,
              "unit": ds["unit"].values}
    idata["observed_data"] = xr.DataTree(observed)
    idata["constant_data"] = xr.DataTree(constant)
    idata["log_likelihood"] = xr.DataTree(xr.Dataset({name: log_lik}, coords=coords))
    return idata


# ------------------------------------------------------------------ argument checks

# keyword arguments of the samplers that fit sets itself, and fit's argument for each, if any
_FIT_SETS = {
    "nutpie": {"compiled_model": None, "progress_bar": "progress", "blocking": None,
               "return_raw_trace": None, "zarr_store": None},
    "pymc": {"random_seed": "seed", "progressbar": "progress", "nuts_sampler": "sampler",
             "return_inferencedata": None, "compute_convergence_checks": None},
}
# nutpie.sample's ``adaptation`` (the Literal of its signature) and the settings class of each
_NUTPIE_ADAPTATIONS = {"diag": "Diag", "draw_diag": "Diag", "low_rank": "LowRank", "flow": "Flow"}
# fit's own options besides the data, the sampler sizes and the seed (compare_models passes them on)
_FIT_OPTIONS = ("method", "sampler", "epsilon", "pool_layers", "progress", "mu_prior",
                "rate_prior")
_MAX_SEED = 2**64 - 1  # nutpie's seed is an unsigned 64-bit integer


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ArgumentError(f"{name}: expected True or False, got {value!r} "
                            f"({type(value).__name__})")
    return bool(value)


def _check_pair(value: Any, name: str, what: str) -> tuple[Any, Any]:
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 2:
        raise ArgumentError(f"{name}: expected {what}, got {value!r}")
    return value[0], value[1]


def _check_priors(mu_prior: Any, rate_prior: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    a, b = _check_pair(mu_prior, "mu_prior", "two positive Beta parameters (a, b)")
    mu = (check_number(a, "mu_prior", minimum=0, exclusive=True),
          check_number(b, "mu_prior", minimum=0, exclusive=True))
    mean, sd = _check_pair(rate_prior, "rate_prior", "(mean, sd > 0) of the Normal prior of log m")
    rate = (check_number(mean, "rate_prior"), check_number(sd, "rate_prior", minimum=0,
                                                            exclusive=True))
    return mu, rate


def _check_nutpie_settings(kwargs: dict[str, Any]) -> None:
    """Try the keyword arguments that ``nutpie.sample`` passes on to its sampler settings on a
    throwaway settings object, so that an unknown name or a wrong type is refused before the
    model is compiled. Skipped when this nutpie does not expose its settings classes."""
    import nutpie

    own = set(inspect.signature(nutpie.sample).parameters)
    if "cores" in kwargs:
        check_int(kwargs["cores"], "cores", minimum=1)
    adaptation = kwargs.get("adaptation", "diag")
    check_choice(adaptation, "adaptation", _NUTPIE_ADAPTATIONS)
    settings_keys = {k: v for k, v in kwargs.items() if k not in own}
    try:
        from nutpie import _lib

        settings = getattr(_lib.PyNutsSettings, _NUTPIE_ADAPTATIONS[adaptation])(0)
    except (ImportError, AttributeError):
        return
    for key, value in settings_keys.items():
        try:
            settings.update({key: value})
        except (AttributeError, TypeError, ValueError, OverflowError) as err:
            raise ArgumentError(f"sampler_kwargs: nutpie does not accept {key}={value!r} "
                                f"({err})") from None


def _check_sampler_kwargs(sampler: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    for key, own in _FIT_SETS[sampler].items():
        if key in kwargs:
            hint = f"; use fit(..., {own}=...)" if own else ""
            raise ArgumentError(f"sampler_kwargs: {key!r} is set by fit itself{hint}")
    if "target_accept" in kwargs:
        check_number(kwargs["target_accept"], "target_accept", minimum=0, maximum=1,
                     exclusive=True)
    if sampler == "nutpie":
        _check_nutpie_settings(kwargs)
    return dict(kwargs)


def _check_tune(tune: Any, sampler: str) -> int:
    tune = check_int(tune, "tune", minimum=0)
    if tune == 0 and sampler == "nutpie":  # its adaptation windows need a step (it panics)
        raise ArgumentError("tune: expected an integer >= 1 with sampler='nutpie', got 0 "
                            "(sampler='pymc' allows tune=0)")
    return tune


def _check_fit_args(model: Any, group_by: Any, method: Any, draws: Any, tune: Any,
                    chains: Any, seed: Any, sampler: Any, epsilon: Any, pool_layers: Any,
                    progress: Any, mu_prior: Any, rate_prior: Any,
                    sampler_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check every argument of :func:`fit` (not the dataset); returns them normalized."""
    model = check_choice(model, "model", MODELS)
    sampler = check_choice(sampler, "sampler", _SAMPLERS)
    eps_max = None if model in _RATE_MODELS else 1  # a probability threshold is below 1
    mu, rate = _check_priors(mu_prior, rate_prior)
    args = {
        "model": model,
        "group_by": normalize_group_by(group_by),
        "method": check_choice(method, "method", _METHODS),
        "draws": check_int(draws, "draws", minimum=1),
        "tune": _check_tune(tune, sampler),
        "chains": check_int(chains, "chains", minimum=1),
        "seed": None if check_seed(seed) is None else check_int(seed, "seed", minimum=0,
                                                                 maximum=_MAX_SEED),
        "sampler": sampler,
        "epsilon": check_number(epsilon, "epsilon", minimum=0, maximum=eps_max, exclusive=True),
        "pool_layers": _check_bool(pool_layers, "pool_layers"),
        "progress": _check_bool(progress, "progress"),
        "mu_prior": mu,
        "rate_prior": rate,
        "sampler_kwargs": _check_sampler_kwargs(sampler, sampler_kwargs),
    }
    if args["pool_layers"] and "network" not in args["group_by"]:
        raise ArgumentError("pool_layers: needs 'network' in group_by (layers are pooled per "
                            "network)")
    return args


# ------------------------------------------------------------------ entry points


def fit(
    ds: xr.Dataset,
    model: str = "beta_binomial",
    *,
    group_by: Sequence[str] | str = ("network", "layer"),
    method: str = "marginal",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    sampler: str = "nutpie",
    epsilon: float = 0.01,
    pool_layers: bool = False,
    progress: bool = False,
    mu_prior: tuple[float, float] = (1.0, 1.0),
    rate_prior: tuple[float, float] = (math.log(0.1), 2.5),
    **sampler_kwargs: Any,
) -> FiringFit:
    """Fit a hierarchical firing model to an activation dataset.

    The models and their priors are written out in :mod:`bayesactiv.bayes.models`.

    Parameters
    ----------
    ds : xarray.Dataset
        A valid activation dataset (see :mod:`bayesactiv.data.dataset`).
    model : {"beta_binomial", "gamma_poisson", "negative_binomial", "binomial_window"}
        The statistical model. The last three need ``window_count``.
    group_by : sequence of str
        Unit coordinates (subset of ``network``, ``layer``, ``epoch``) whose distinct values
        form the groups; ``()`` puts all units in one group.
    method : {"marginal", "full"}
        ``"marginal"`` integrates the unit parameters out and samples only the group
        parameters on compressed data (fast, O(distinct statistics)); ``"full"`` samples
        every unit's parameter.
    draws, tune, chains : int
        Posterior draws and tuning steps per chain, and the number of chains (all >= 1;
        ``tune=0`` is allowed with ``sampler="pymc"`` only, nutpie's adaptation needs a step).
    seed : int, optional
        Seed of the sampler and of the derived-quantity draws, in ``[0, 2**64)``; same seed,
        same results.
    sampler : {"nutpie", "pymc"}
        NUTS implementation. nutpie models are compiled once per process per structure
        and padded data size, and reused through ``with_data``.
    epsilon : float
        Firing threshold for "dead" units (theta_u or lambda_u below it): > 0, and < 1 for
        the probability models.
    pool_layers : bool
        Add a level pooling the groups (layers) within each network.
    progress : bool
        Show the sampler's progress bar.
    mu_prior : (float, float)
        Beta prior of mu_g (probability models without ``pool_layers``); the default
        Beta(1, 1) is uniform. A prior expectation of rare firing is e.g. ``(1, 300)``.
    rate_prior : (float, float)
        Normal prior (mean, sd) of log m_g, the log mean firing rate in events per input, of
        the rate models without ``pool_layers``; default ``(log 0.1, 2.5)``.
    **sampler_kwargs
        Passed to ``nutpie.sample`` (e.g. ``target_accept`` in (0, 1)) or ``pymc.sample``;
        names that nutpie does not know, and those fit sets itself (``progress_bar``,
        ``random_seed``, ...), are refused before anything is compiled.

    Returns
    -------
    FiringFit
        Its ``idata`` is an ArviZ DataTree: ``posterior`` and ``warmup_posterior`` (group-level
        variables on a ``group`` dimension), ``sample_stats``, ``observed_data``,
        ``constant_data`` and a per-unit ``log_likelihood``, so ``az.loo(f.idata)``,
        ``az.compare`` and ``az.plot_*`` work on it directly.

    Raises
    ------
    ArgumentError
        A bad argument (named in the message), before any compiling or sampling.
    DatasetError
        An invalid dataset, or one without the variables or coordinates the model needs.

    Warns
    -----
    ConvergenceWarning
        When R-hat > 1.01, bulk or tail ESS < 400, or any divergent transition.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
    >>> f
    FiringFit(model='beta_binomial', method='marginal', groups=1, units=8, ...)
    >>> u = f.units()
    >>> int(u["p_dead"].values.argmax()), bool(u["p_dead"][0] > 0.05)  # the unit that never fired
    (0, True)
    >>> ba.fit(ds, tune=0)
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: tune: expected an integer >= 1 with sampler='nutpie', got 0 (sampler='pymc' allows tune=0)
    """
    args = _check_fit_args(model, group_by, method, draws, tune, chains, seed, sampler,
                           epsilon, pool_layers, progress, mu_prior, rate_prior, sampler_kwargs)
    validate(ds)
    model, group_by, method = args["model"], args["group_by"], args["method"]
    pool_layers, seed = args["pool_layers"], args["seed"]
    groups = _make_groups(ds, group_by, pool_layers)
    st = _stats(ds, model, groups)
    structure = _structure(model)
    data, sizes = _model_data(structure, method, st, groups)
    loc_prior = args["mu_prior"] if structure.startswith("beta") else args["rate_prior"]
    idata = _sample(structure, method, groups, data, sizes, pool_layers, args["sampler"],
                    args["draws"], args["tune"], args["chains"], seed, args["progress"],
                    args["sampler_kwargs"], loc_prior)
    idata = _rename_group_dims(idata, groups, _GROUP_PARAMS, ds)
    idata = _add_data_groups(idata, ds, model, st, groups)
    return FiringFit(idata=idata, ds=ds, model=model, method=method, group_by=group_by,
                     groups=groups, stats=st, epsilon=args["epsilon"], seed=seed,
                     pool_layers=pool_layers)


# the defaults of fit's options, which compare_models checks before fitting
_FIT_DEFAULTS = {k: inspect.signature(fit).parameters[k].default for k in _FIT_OPTIONS}


def _check_compared_models(models: Any) -> tuple[str, ...]:
    if isinstance(models, str | bytes) or not hasattr(models, "__iter__"):
        raise ArgumentError(f"models: expected a sequence of model names, got {models!r}")
    models = tuple(models)
    if len(models) < 2:
        raise ArgumentError("models: need at least two models to compare")
    if len(set(models)) != len(models):
        raise ArgumentError(f"models: repeated names in {models}")
    for name in models:
        check_choice(name, "models", MODELS)
        if name == "beta_binomial":
            raise ArgumentError("models: 'beta_binomial' describes count/n, not the window "
                                "counts; use 'binomial_window' to compare on the same data")
    return models


def compare_models(
    ds: xr.Dataset,
    models: Sequence[str] = ("gamma_poisson", "negative_binomial", "binomial_window"),
    *,
    group_by: Sequence[str] | str = ("network", "layer"),
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    **fit_kwargs: Any,
):
    """Rank firing models of the window counts by PSIS-LOO (``arviz.compare``).

    Each model is fitted with :func:`fit` (marginal method), and the pointwise
    log-likelihood is per unit: the likelihood of all of a unit's window counts given
    the group parameters, the unit's own rate integrated out (the unit is the exchangeable
    observation). All models must describe the same data (``window_count``), so compare
    ``gamma_poisson``, ``negative_binomial`` and ``binomial_window`` (``beta_binomial``
    describes ``count``, not the windows, and cannot be ranked against them).

    Parameters
    ----------
    ds : xarray.Dataset
        Activation dataset with ``window_count``.
    models : sequence of str
        Names from :data:`MODELS` describing the window counts.
    group_by, draws, tune, chains, seed, **fit_kwargs
        As in :func:`fit`.

    Returns
    -------
    pandas.DataFrame
        ``arviz.compare``'s table (ranked by ELPD-LOO), with ``.attrs["loo"]`` holding each
        model's ELPD object (with Pareto k per unit), ``.attrs["pareto_k_max"]`` and
        ``.attrs["fits"]`` the FiringFit objects.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> rng = np.random.default_rng(0)
    >>> fired = rng.random((100, 60)) < rng.beta(1, 10, 60)  # 100 inputs, 60 units
    >>> windows = fired.reshape(10, 10, 60).sum(axis=1)  # events per block of 10 inputs
    >>> ds = ba.make_dataset(fired.sum(axis=0), 100, network="net", layer="fc1",
    ...                      window_count=windows, window_size=10)
    >>> table = ba.compare_models(ds, ["gamma_poisson", "binomial_window"], draws=2000,
    ...                           tune=1000, chains=2, seed=0)
    >>> sorted(table.index), sorted(table.attrs["fits"])
    (['binomial_window', 'gamma_poisson'], ['binomial_window', 'gamma_poisson'])
    >>> {"rank", "elpd", "elpd_diff", "weight"} <= set(table.columns)
    True
    """
    import arviz as az

    models = _check_compared_models(models)
    seed = check_seed(seed)
    if seed is not None:  # the refits use seed + i + 100
        check_int(seed, "seed", minimum=0, maximum=_MAX_SEED - 100 - len(models))
    if "model" in fit_kwargs:
        raise ArgumentError("fit_kwargs: 'model' is not an option here; name the models in "
                            "models=")
    options = {k: fit_kwargs.get(k, default) for k, default in _FIT_DEFAULTS.items()}
    sampler_kwargs = {k: v for k, v in fit_kwargs.items() if k not in _FIT_OPTIONS}
    for name in models:
        _check_fit_args(name, group_by, options["method"], draws, tune, chains, seed,
                        options["sampler"], options["epsilon"], options["pool_layers"],
                        options["progress"], options["mu_prior"], options["rate_prior"],
                        sampler_kwargs)
    validate(ds)
    require(ds, "window_count", "compare_models",
            "record(..., window_size=W) or make_dataset(..., window_count=, window_size=)")
    fits, loos, failed = {}, {}, {}
    for i, name in enumerate(models):
        kwargs = dict(fit_kwargs)
        for attempt in range(2):
            f = fit(ds, name, group_by=group_by, draws=draws, tune=tune * (1 + attempt),
                    chains=chains, seed=None if seed is None else seed + i + 100 * attempt,
                    **kwargs)
            try:
                loos[name] = az.loo(f.idata)
                failed.pop(name, None)
                break
            except ValueError as err:
                # PSIS cannot smooth the importance ratios, e.g. when a chain that barely moved
                # repeats its draws; once more with longer tuning and smaller steps
                failed[name] = str(err)
                kwargs["target_accept"] = 0.95
        fits[name] = f
    if failed:
        warnings.warn(
            "compare_models: PSIS-LOO failed for "
            + "; ".join(f"{name} ({msg})" for name, msg in failed.items())
            + ", even after refitting with longer tuning; those models are left out of the "
            "ranking (check their diagnostics in table.attrs['fits'])",
            ConvergenceWarning, stacklevel=2)
    if len(loos) < 2:
        raise RuntimeError(f"compare_models: fewer than two models have a PSIS-LOO estimate "
                           f"(failed: {sorted(failed)})")
    table = az.compare(loos)
    table.attrs["loo"] = loos
    table.attrs["failed"] = failed
    table.attrs["fits"] = fits
    table.attrs["pareto_k_max"] = {name: float(np.nanmax(np.asarray(lo.pareto_k)))
                                   for name, lo in loos.items()}
    return table
