"""Likelihood terms of the firing models, the unit-level parameter integrated out.

The beta-binomial marginal in exact tail-sum form (:func:`tail_terms`, :func:`beta_terms`),
the negative-binomial Gauss-Hermite quadrature (PyTensor for sampling, numpy for the
pointwise values) and the pointwise log-likelihood per unit (the observation of PSIS-LOO).

Examples
--------
>>> import numpy as np
>>> t = tail_terms(np.array([0]), np.array([3]), np.array([1.0]), 1)
>>> t.log_k.tolist(), t.log_w.tolist()  # lgamma(P + 3) - lgamma(P) = log P + log(P+1) + log(P+2)
([0, 1, 2], [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from bayesactiv.bayes.sufficient import CHUNK, EFFECTIVE_STEPS, Stats

__all__ = ["LOG_RUN_MAX", "NB_HIST_LOGS", "N_QUAD", "Terms", "beta_terms", "betaln", "hist_terms",
           "lgamma_ratio", "nb_quad_logp", "nb_quad_numpy", "nb_window_terms", "observed_name", "pointwise_log_lik",
           "tail_terms"]

N_QUAD = 24
LOG_RUN_MAX = 8  # runs of at most this many offsets are summed as logs, longer ones by lgamma
# lgamma(y + phi) - lgamma(phi) of the negative binomial's window counts is a sum of logs up to
# this count: the two lgamma cancel badly at large phi (the Poisson limit)
NB_HIST_LOGS = 64


@dataclass
class Terms:
    """``sum_i w_i [lgamma(P_s + c_i) - lgamma(P_s)]`` (items i of slots s) rewritten exactly as

    ``sum_j log_w_j log(P[log_slot_j] + log_k_j) + sum_j lg_w_j lgamma(P[lg_slot_j] + lg_k_j)``.
    """

    log_slot: np.ndarray
    log_k: np.ndarray
    log_w: np.ndarray
    lg_slot: np.ndarray
    lg_k: np.ndarray
    lg_w: np.ndarray


def tail_terms(slot: np.ndarray, c: np.ndarray, w: np.ndarray, n_slots: int,
               log_run_max: int = LOG_RUN_MAX) -> Terms:
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
    Terms
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
    return Terms(log_slot, log_k, log_w, lg_slot, lg_k, lg_w)


def beta_terms(st: Stats, n_groups: int, log_run_max: int = LOG_RUN_MAX) -> Terms:
    """Beta-binomial marginal log-likelihood of all units (without the binomial coefficients)
    in tail-sum form over the slots ``P = [a_g, b_g, (a + b)_g]``:

    ``sum_u lgamma(a + x_u) - lgamma(a) + lgamma(b + m_u - x_u) - lgamma(b)
    - [lgamma(a + b + m_u) - lgamma(a + b)]``.

    Effective counts of clustered events are multiples of ``1 / EFFECTIVE_STEPS``
    (:func:`bayesactiv.bayes.sufficient.unit_stats`): an offset ``x = k + f`` with integer ``k``
    and fraction ``f`` splits exactly as ``[lgamma(P + f + k) - lgamma(P + f)] +
    [lgamma(P + f) - lgamma(P)]``, the first a tail sum of logs over the shifted slot
    ``P + f`` (:func:`tail_terms`), the second two lgamma terms; so the model is the same
    compiled one, with fractional offsets in ``lk`` and ``gk``."""
    g, x, m, w = st.pair_group, st.pair_x, st.pair_m, st.pair_weight
    slot = np.concatenate([g, n_groups + g, 2 * n_groups + g])
    weight = np.concatenate([w, w, -w])
    if st.x.dtype.kind != "f":
        return tail_terms(slot, np.concatenate([x, m - x, m]), weight, 3 * n_groups,
                          log_run_max)
    q = EFFECTIVE_STEPS
    xq = np.rint(x * q).astype(np.int64)
    mq = np.rint(m * q).astype(np.int64)
    steps = np.concatenate([xq, mq - xq, mq])  # offsets in units of 1 / q
    frac, whole = steps % q, steps // q
    t = tail_terms(slot * q + frac, whole, weight, 3 * n_groups * q, log_run_max)
    # back from the shifted slots (slot, fraction) to the slots, the fraction in the offset
    log_slot, log_k = np.divmod(t.log_slot, q)
    lg_slot, lg_k = np.divmod(t.lg_slot, q)
    has = frac > 0
    lg_slot = np.concatenate([lg_slot, slot[has], slot[has]])
    lg_k = np.concatenate([lg_k / q + t.lg_k, frac[has] / q, np.zeros(int(has.sum()))])
    lg_w = np.concatenate([t.lg_w, weight[has], -weight[has]])
    key = np.stack([lg_slot.astype(float), lg_k], axis=1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    lg_w = np.bincount(inv.ravel(), weights=lg_w)
    keep = lg_w != 0
    return Terms(log_slot, log_k / q + t.log_k, t.log_w, uniq[keep, 0].astype(np.int64),
                 uniq[keep, 1], lg_w[keep])




def hist_terms(st: Stats, n_groups: int) -> Terms:
    """The negative binomial's ``sum_h w_h [lgamma(y_h + phi_g) - lgamma(phi_g)]`` over the
    histogram of window counts, in tail-sum form over the slots ``phi_g``: logs up to
    :data:`NB_HIST_LOGS` consecutive counts, not two huge lgamma that cancel at large phi
    (the Poisson limit)."""
    return tail_terms(st.hist_group, st.hist_y, st.hist_weight, n_groups,
                      log_run_max=NB_HIST_LOGS)

def betaln(a, b):
    import pytensor.tensor as pt

    return pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)


def nb_quad_logp(alpha, beta, phi, s, k, w):
    """log of int prod_w NB(y_w | lam W, phi) Gamma(lam | alpha, beta) dlam, without the
    lgamma(y_w + phi) - lgamma(phi) - lgamma(y_w + 1) terms (added per group from the histogram).

    Gauss-Hermite quadrature over t = log lam, centred on the Poisson-posterior mode."""
    import pytensor.tensor as pt

    nodes, weights = np.polynomial.hermite.hermgauss(N_QUAD)
    a_post = alpha + s
    center = pt.log(a_post) - pt.log(beta + k * w)
    scale = pt.sqrt(1.0 / a_post + 1.0 / (k * phi + 1.0)) * math.sqrt(2.0)
    t = center[:, None] + scale[:, None] * nodes[None, :]
    lam_w = pt.exp(t) * w
    # log NB part depending on lam (per unit): s log(lam W) + k phi log phi - (s + k phi) log(lam W + phi)
    s_, k_, phi_ = s[:, None], k[:, None], phi[:, None]
    # written without the cancellation of k phi log phi against k phi log(lam W + phi), which
    # at large phi (the Poisson limit) costs more than the differences it leaves
    log_nb = s_ * (pt.log(lam_w) - pt.log(lam_w + phi_)) - k_ * phi_ * pt.log1p(lam_w / phi_)
    log_prior = (alpha[:, None] * pt.log(beta[:, None]) - pt.gammaln(alpha[:, None])
                 + alpha[:, None] * t - beta[:, None] * pt.exp(t))  # density of t = log lam
    integrand = log_nb + log_prior + np.log(weights)[None, :] + nodes[None, :] ** 2
    return pt.logsumexp(integrand, axis=1) + pt.log(scale)


def nb_quad_numpy(al, be, ph, s, k, w):
    """numpy twin of :func:`nb_quad_logp` (arrays (unit, S))."""
    nodes, weights = np.polynomial.hermite.hermgauss(N_QUAD)
    a_post = al + s
    center = np.log(a_post) - np.log(be + k * w)
    scale = np.sqrt(1.0 / a_post + 1.0 / (k * ph + 1.0)) * math.sqrt(2.0)
    t = center[..., None] + scale[..., None] * nodes
    lam_w = np.exp(t) * w
    s_, k_, ph_ = s[..., None], k[..., None], ph[..., None]
    log_nb = s_ * (np.log(lam_w) - np.log(lam_w + ph_)) - k_ * ph_ * np.log1p(lam_w / ph_)
    log_prior = (al[..., None] * np.log(be[..., None]) - special.gammaln(al[..., None])
                 + al[..., None] * t - be[..., None] * np.exp(t))
    integrand = log_nb + log_prior + np.log(weights) + nodes**2
    return special.logsumexp(integrand, axis=-1) + np.log(scale)


def observed_name(model: str) -> str:
    """The dataset variable a model describes (named alike in observed_data and log_likelihood)."""
    return "count" if model in ("beta_binomial", "clustered_beta_binomial") else "window_count"


def pointwise_log_lik(model: str, st: Stats, group_index: np.ndarray,
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
    per_chunk = max(1, CHUNK // (n_draws * (N_QUAD if model == "negative_binomial" else 1)))
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
            pair_ll[:, sl] = nb_quad_numpy(al, be, ph, x, m, st.window)
    out = pair_ll[:, st.unit_pair]
    out += st.const[None, :]
    if model == "negative_binomial":
        out += nb_window_terms(st, group_index, params["phi"]).T
    return out


def nb_window_terms(st: Stats, group_index: np.ndarray, phi: np.ndarray) -> np.ndarray:
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
    terms = lgamma_ratio(st.hist_y, ph)
    return counts @ terms


def lgamma_ratio(y: np.ndarray, ph: np.ndarray, small: int = NB_HIST_LOGS) -> np.ndarray:
    """``lgamma(y + ph) - lgamma(ph)`` for integers ``y >= 0`` (key,) and ``ph`` (key, S):
    ``sum_{j < y} log(ph + j)`` for ``y <= small`` (no cancellation of two huge lgamma at
    large ``ph``), the lgamma difference above.

    Examples
    --------
    >>> float(lgamma_ratio(np.array([3]), np.array([[1e15]]))[0, 0] / np.log(1e15))
    3.0
    """
    y = np.asarray(y)
    out = np.zeros(ph.shape)
    for j in range(int(min(small, y.max(initial=0)))):
        rows = y > j
        out[rows] += np.log(ph[rows] + j)
    big = y > small
    if big.any():
        out[big] = special.gammaln(y[big, None] + ph[big]) - special.gammaln(ph[big])
    return out
