"""The collapsed models' log densities as numba C callbacks cached on disk, handed to nutpie.

``nutpie.compile_pymc_model`` builds two C callbacks around the PyTensor graph of a model
(log density with gradient, and the map to the stored variables) and compiles them with
numba in every process: 7-10 s before the first draw, because the callbacks close over the
graph's compiled function and so cannot be cached. The marginal models of this package
have log densities small enough to write out by hand, with their gradients: the
beta-binomial tail sums (``beta_binomial``, ``clustered_beta_binomial``, ``binomial_window``),
the gamma-Poisson marginal and the negative binomial's Gauss-Hermite quadrature, each with
or without ``pool_layers``. Here they are numba
``cfunc`` s with ``cache=True`` that take all sizes and data from one float64 buffer (the
callbacks' ``user_data`` pointer), so one compiled callback serves every data size and is
compiled once per machine (numba's cache: next to this file, or in the user's cache folder
when the install is read-only); a new process loads it in milliseconds.

The densities are the PyMC models of :func:`bayesactiv.bayes.sampling.build_model` term for
term, normalizing constants and the Jacobians of PyMC's transforms included (``mu`` on the
log-odds scale, ``S_network`` on the log scale), with the unconstrained parameters in
PyMC's order; ``tests/bayes/test_native.py`` checks value and gradient against PyMC's
compiled ones. The sampler is nutpie, unchanged: it receives a ``CompiledPyMCModel``
whose callbacks are these.

Buffer layout (all float64): a header of :data:`HEADER` values ``[kind, n_groups,
n_networks, n_a, n_b, prior_1, prior_2, ...]`` followed by the data arrays of the kind
(integers stored exactly as floats). The beta kinds hold the tail-sum terms of
:func:`bayesactiv.bayes.likelihood.beta_terms` (``n_a`` runs, ``n_b`` lgamma terms), with the
log terms gathered into runs (:func:`log_runs`): a run of ``L`` consecutive offsets of one
slot with one weight costs one log of the product of its ``L`` values and one division for
the gradient, not ``L`` of each. The rate kinds hold ``n_a`` distinct (count, windows, weight,
group) pairs; the negative binomial adds its histogram terms
(:func:`bayesactiv.bayes.likelihood.hist_terms`) in the same tail-sum form, ``n_b`` runs and
``header[12]`` lgamma terms over the slots ``phi_g``.

Examples
--------
>>> import numpy as np
>>> from bayesactiv.bayes.native import digamma
>>> bool(abs(digamma(1.0) + 0.5772156649015329) < 1e-12)  # minus the Euler-Mascheroni constant
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import carray, cfunc, njit, types

from bayesactiv.bayes.likelihood import N_QUAD

__all__ = ["HEADER", "KINDS", "NativeModel", "compile_native", "digamma", "log_runs",
           "native_kind", "native_logp"]

HEADER = 16
# structure, pooled -> kind code of the buffer
KINDS = {("beta", False): 0, ("beta", True): 1, ("gamma", False): 2, ("gamma", True): 3,
         ("nb", False): 4, ("nb", True): 5}
_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(N_QUAD)
_LOG_WEIGHTS = np.log(_WEIGHTS)
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_HALFNORMAL = 0.5 * math.log(2.0 / math.pi)
# PyMC's pooled location priors: Normal(0, 1.5) (probability models), Normal(log 0.1, 2.5)
_POOL_LOC = {"beta": (0.0, 1.5), "gamma": (math.log(0.1), 2.5), "nb": (math.log(0.1), 2.5)}
_LOG_KAPPA = (math.log(10.0), 2.5)
_LOG_ALPHA = (0.0, 2.5)
_LOG_PHI = (math.log(10.0), 2.5)

_LOGP_SIG = types.int64(types.uint64, types.CPointer(types.double),
                        types.CPointer(types.double), types.CPointer(types.double),
                        types.voidptr)
_EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                          types.CPointer(types.double), types.voidptr)


@njit(cache=True, error_model="numpy")
def digamma(x: float) -> float:
    """Digamma function for x > 0 (recurrence to x >= 6, then the asymptotic series;
    absolute error below 1e-12); nan for x <= 0 or nan."""
    if not x > 0.0:
        return np.nan
    result = 0.0
    while x < 6.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (
        1.0 / 240 - inv2 * (1.0 / 132 - inv2 * (691.0 / 32760 - inv2 / 12.0))))))
    return result + math.log(x) - 0.5 * inv - series


@njit(cache=True, error_model="numpy")
def _log_sigmoid(y: float) -> float:
    if y >= 0:
        return -math.log1p(math.exp(-y))
    return y - math.log1p(math.exp(y))


@njit(cache=True, error_model="numpy")
def _normal(x: float, mean: float, sd: float) -> tuple[float, float]:
    z = (x - mean) / sd
    return -0.5 * z * z - math.log(sd) - 0.5 * _LOG_2PI, -z / sd


@njit(cache=True, error_model="numpy")
def _betaln(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


@njit(cache=True, error_model="numpy")
def _locations(buf, x, n_groups, n_networks, off_pool):
    """Group locations (logit mu or log m) and their Jacobian bookkeeping for the pooled
    kinds: loc_g = M[net_g] + exp(s_log[net_g]) z_g. Returns (loc, logp of the pooling
    level); :func:`_pool_backward` gives the gradient."""
    loc = np.empty(n_groups)
    logp = 0.0
    m0, s0 = buf[5], buf[6]
    for k in range(n_networks):
        lp, _ = _normal(x[k], m0, s0)
        logp += lp
        s = math.exp(x[n_networks + k])
        logp += _LOG_HALFNORMAL - 0.5 * s * s + x[n_networks + k]  # HalfNormal(1), log-Jacobian
    for g in range(n_groups):
        net = int(buf[off_pool + g])
        z = x[2 * n_networks + g]
        logp += -0.5 * z * z - 0.5 * _LOG_2PI
        loc[g] = x[net] + math.exp(x[n_networks + net]) * z
    return loc, logp


@njit(cache=True, error_model="numpy")
def _pool_backward(buf, x, grad, dloc, n_groups, n_networks, off_pool):
    """Gradient of the pooled kinds with respect to (M, s_log, z), given d logp / d loc."""
    for k in range(n_networks):
        grad[k] = -(x[k] - buf[5]) / (buf[6] * buf[6])
        s = math.exp(x[n_networks + k])
        grad[n_networks + k] = 1.0 - s * s
    for g in range(n_groups):
        net = int(buf[off_pool + g])
        z = x[2 * n_networks + g]
        s = math.exp(x[n_networks + net])
        grad[net] += dloc[g]
        grad[n_networks + net] += dloc[g] * s * z
        grad[2 * n_networks + g] = dloc[g] * s - z


@njit(cache=True, error_model="numpy")
def _tail_sums(buf, off, n_runs, n_lg, slots, dslot):
    """The tail-sum terms at ``buf[off:]`` (:func:`bayesactiv.bayes.likelihood.tail_terms`,
    log terms gathered by :func:`log_runs`) over the parameter ``slots``: their value, and
    their gradient added to ``dslot``.

    A run ``w sum_{i<L} log(P[slot] + k + i)`` is ``w log prod(...)``, one log and one
    division for the gradient; runs come sorted by slot, so each slot's gradient is summed
    in a register and stored once. Then the lgamma terms ``w lgamma(P[slot] + k)``."""
    logp = 0.0
    current, grad_acc, base_slot = -1, 0.0, 0.0
    for j in range(n_runs):
        s = int(buf[off + j])
        if s != current:
            if current >= 0:
                dslot[current] += grad_acc
            current, grad_acc, base_slot = s, 0.0, slots[s]
        base = base_slot + buf[off + n_runs + j]
        length = int(buf[off + 2 * n_runs + j])
        w = buf[off + 3 * n_runs + j]
        if length == 1:
            logp += w * math.log(base)
            grad_acc += w / base
            continue
        prod, dprod = 1.0, 0.0  # prod of the L values and its derivative in P
        for i in range(length):
            dprod = dprod * (base + i) + prod
            prod *= base + i
        if prod > 0.0 and prod < 1e300 and dprod < 1e300:
            logp += w * math.log(prod)
            grad_acc += w * dprod / prod
        else:  # the product leaves the floating-point range: one log per value
            for i in range(length):
                logp += w * math.log(base + i)
                grad_acc += w / (base + i)
    if current >= 0:
        dslot[current] += grad_acc
    off += 4 * n_runs
    for j in range(n_lg):
        s = int(buf[off + j])
        v = slots[s] + buf[off + n_lg + j]
        w = buf[off + 2 * n_lg + j]
        logp += w * math.lgamma(v)
        dslot[s] += w * digamma(v)
    return logp


@njit(cache=True, error_model="numpy")
def _rate_priors(buf, x, grad, loc, dloc, dalpha, dlogbeta, alpha, first, n_groups, pooled):
    """Priors of log alpha (and of log m unpooled) and the chain rule from (alpha, log beta)
    to (log alpha, log m) of the rate kinds; returns the priors' log density."""
    logp = 0.0
    for g in range(n_groups):
        # log_alpha: through alpha and log beta; log m: through log beta (d/d loc = -1)
        grad[first + g] = dalpha[g] * alpha[g] + dlogbeta[g]
        dloc[g] = -dlogbeta[g]
        lp, dlp = _normal(x[first + g], buf[7], buf[8])  # log alpha ~ Normal
        logp += lp
        grad[first + g] += dlp
        if not pooled:  # log m ~ Normal(prior)
            lp, dlp = _normal(loc[g], buf[5], buf[6])
            logp += lp
            dloc[g] += dlp
    return logp


@njit(cache=True, error_model="numpy")
def _nb_loglik(buf, x, grad, loc, dloc, first, n_groups, n_a, n_b, off, pooled):
    """The negative binomial's marginal: :func:`bayesactiv.bayes.likelihood.nb_quad_logp`
    per pair (Gauss-Hermite over t = log lambda, centred on the Poisson-posterior mode, its
    centre and scale moving with the parameters) and the histogram terms
    ``w [lgamma(y + phi) - lgamma(phi)]`` (:func:`bayesactiv.bayes.likelihood.hist_terms`),
    with the gradient by the chain rule through the
    nodes; then the priors. Returns the log density; adds the gradient to ``grad``/``dloc``.
    The histogram terms are tail sums over the slots ``phi_g`` (:func:`_tail_sums`)."""
    window = buf[9]
    nodes, log_weights = _NODES, _LOG_WEIGHTS
    n_q = nodes.size
    alpha = np.empty(n_groups)
    beta = np.empty(n_groups)
    phi = np.empty(n_groups)
    for g in range(n_groups):
        alpha[g] = math.exp(x[first + g])
        beta[g] = math.exp(x[first + g] - loc[g])
        phi[g] = math.exp(x[first + n_groups + g])
    d_al = np.zeros(n_groups)
    d_be = np.zeros(n_groups)
    d_ph = np.zeros(n_groups)
    f = np.empty(n_q)
    et = np.empty(n_q)  # exp(t) at each node, and log1p(lam W / phi): the gradient reuses them
    l1p = np.empty(n_q)
    logp = 0.0
    for j in range(n_a):
        s = buf[off + j]
        k = buf[off + n_a + j]
        w = buf[off + 2 * n_a + j]
        g = int(buf[off + 3 * n_a + j])
        al, be, ph = alpha[g], beta[g], phi[g]
        a_post = al + s
        rate = be + k * window
        center = math.log(a_post) - math.log(rate)
        u = 1.0 / a_post + 1.0 / (k * ph + 1.0)
        scale = math.sqrt(2.0 * u)
        const = al * math.log(be) - math.lgamma(al)
        top = -np.inf
        for q in range(n_q):
            t = center + scale * nodes[q]
            et[q] = math.exp(t)
            lam_w = et[q] * window
            l1p[q] = math.log1p(lam_w / ph)
            # s log(lam W) + k phi log phi - (s + k phi) log(lam W + phi), without the
            # cancellation of k phi log phi against k phi log(lam W + phi) at large phi
            f[q] = (s * (math.log(lam_w) - math.log(lam_w + ph)) - k * ph * l1p[q] + al * t
                    - be * et[q] + log_weights[q] + nodes[q] * nodes[q])
            top = max(top, f[q])
        total = 0.0
        for q in range(n_q):
            total += math.exp(f[q] - top)
        logp += w * (top + math.log(total) + const + math.log(scale))
        # gradient: sum over nodes of softmax weight x df/dtheta, t moving with theta
        dc_al, dc_be = 1.0 / a_post, -1.0 / rate
        du_al, du_ph = -1.0 / (a_post * a_post), -k / ((k * ph + 1.0) ** 2)
        g_al = math.log(be) - digamma(al) + du_al / (2.0 * u)
        g_be = al / be
        g_ph = du_ph / (2.0 * u)
        for q in range(n_q):
            p = math.exp(f[q] - top) / total
            t = center + scale * nodes[q]
            lam_w = et[q] * window
            df_dt = s - (s + k * ph) * lam_w / (lam_w + ph) + al - be * et[q]
            dscale = scale / (2.0 * u) * nodes[q]  # d t / d u through the scale
            g_al += p * (t + df_dt * (dc_al + dscale * du_al))
            g_be += p * (-et[q] + df_dt * dc_be)
            # d/dphi of -k phi log1p(lam W / phi) - s log(lam W + phi)
            g_ph += p * (-k * l1p[q] + (k * lam_w - s) / (lam_w + ph)
                         + df_dt * dscale * du_ph)
        d_al[g] += w * g_al
        d_be[g] += w * g_be
        d_ph[g] += w * g_ph
    # the histogram of window counts, sum w [lgamma(y + phi) - lgamma(phi)], in tail-sum form
    logp += _tail_sums(buf, off + 4 * n_a, n_b, int(buf[12]), phi, d_ph)
    # to (log alpha, log beta = log alpha - log m, log phi), then the priors
    dlogbeta = np.empty(n_groups)
    for g in range(n_groups):
        dlogbeta[g] = d_be[g] * beta[g]
        lp, dlp = _normal(x[first + n_groups + g], buf[10], buf[11])  # log phi ~ Normal
        logp += lp
        grad[first + n_groups + g] = d_ph[g] * phi[g] + dlp
    logp += _rate_priors(buf, x, grad, loc, dloc, d_al, dlogbeta, alpha, first, n_groups,
                         pooled)
    return logp


@njit(cache=True, error_model="numpy")
def native_logp(buf, x, grad):
    """Log density and its gradient (written into ``grad``) at the unconstrained point ``x``.

    Parameters
    ----------
    buf : float64 array
        The model buffer (:class:`NativeModel`).
    x, grad : float64 arrays of the model's dimension

    Returns
    -------
    float
    """
    kind = int(buf[0])
    n_groups = int(buf[1])
    n_networks = int(buf[2])
    n_a = int(buf[3])
    n_b = int(buf[4])
    pooled = kind % 2 == 1
    off = HEADER
    off_pool = off
    if pooled:
        off += n_groups
        first = 2 * n_networks + n_groups  # x: M, s_log, z, then the group scale parameter
    else:
        first = n_groups  # x: the location (logit mu / log m), then the scale parameter
    for i in range(grad.size):
        grad[i] = 0.0
    logp = 0.0
    if pooled:
        loc, logp = _locations(buf, x, n_groups, n_networks, off_pool)
    else:
        loc = x[:n_groups].copy()
    dloc = np.zeros(n_groups)
    if kind <= 1:  # beta: slots P = [a, b, a + b], a = mu kappa, b = (1 - mu) kappa
        mu = np.empty(n_groups)
        kappa = np.empty(n_groups)
        slots = np.empty(3 * n_groups)
        for g in range(n_groups):
            mu[g] = math.exp(_log_sigmoid(loc[g]))
            kappa[g] = math.exp(x[first + g])
            slots[g] = mu[g] * kappa[g]
            slots[n_groups + g] = (1.0 - mu[g]) * kappa[g]
            slots[2 * n_groups + g] = kappa[g]
        dslot = np.zeros(3 * n_groups)
        logp += _tail_sums(buf, off, n_a, n_b, slots, dslot)
        for g in range(n_groups):
            dmu = kappa[g] * (dslot[g] - dslot[n_groups + g])
            dloc[g] = dmu * mu[g] * (1.0 - mu[g])
            grad[first + g] = (slots[g] * dslot[g] + slots[n_groups + g] * dslot[n_groups + g]
                               + kappa[g] * dslot[2 * n_groups + g])
            lp, dlp = _normal(x[first + g], buf[7], buf[8])  # log kappa ~ Normal
            logp += lp
            grad[first + g] += dlp
            if not pooled:  # mu ~ Beta(a0, b0) on the log-odds scale, with its Jacobian
                a0, b0 = buf[5], buf[6]
                logp += (a0 * _log_sigmoid(loc[g]) + b0 * _log_sigmoid(-loc[g])
                         - _betaln(a0, b0))
                dloc[g] += a0 * (1.0 - mu[g]) - b0 * mu[g]
    elif kind <= 3:  # gamma: pairs (x, m, w, g), alpha = exp(log_alpha), beta = exp(log_alpha - log_m)
        window = buf[9]
        alpha = np.empty(n_groups)
        logbeta = np.empty(n_groups)
        for g in range(n_groups):
            alpha[g] = math.exp(x[first + g])
            logbeta[g] = x[first + g] - loc[g]
        dalpha = np.zeros(n_groups)
        dlogbeta = np.zeros(n_groups)
        for j in range(n_a):
            c = buf[off + j]
            m = buf[off + n_a + j]
            w = buf[off + 2 * n_a + j]
            g = int(buf[off + 3 * n_a + j])
            al = alpha[g]
            be = math.exp(logbeta[g])
            den = be + m * window
            logp += w * (math.lgamma(al + c) - math.lgamma(al) + al * logbeta[g]
                         - (al + c) * math.log(den))
            dalpha[g] += w * (digamma(al + c) - digamma(al) + logbeta[g] - math.log(den))
            dlogbeta[g] += w * (al - (al + c) * be / den)
        logp += _rate_priors(buf, x, grad, loc, dloc, dalpha, dlogbeta, alpha, first,
                             n_groups, pooled)
    else:  # negative binomial: quadrature per pair, plus the histogram of window counts
        logp += _nb_loglik(buf, x, grad, loc, dloc, first, n_groups, n_a, n_b, off, pooled)
    if pooled:
        _pool_backward(buf, x, grad, dloc, n_groups, n_networks, off_pool)
    else:
        for g in range(n_groups):
            grad[g] = dloc[g]
    return logp


@njit(cache=True, error_model="numpy")
def _expand(buf, x, out):
    """The stored variables in nutpie's order (:attr:`NativeModel.names`)."""
    kind = int(buf[0])
    n_groups = int(buf[1])
    n_networks = int(buf[2])
    pooled = kind % 2 == 1
    i = 0
    if pooled:
        for k in range(n_networks):
            out[i] = x[k]
            out[i + n_networks] = math.exp(x[n_networks + k])
            i += 1
        i += n_networks
        for g in range(n_groups):
            out[i] = x[2 * n_networks + g]
            i += 1
        first = 2 * n_networks + n_groups
    else:
        first = n_groups
    for g in range(n_groups):
        if pooled:
            net = int(buf[HEADER + g])
            loc = x[net] + math.exp(x[n_networks + net]) * x[2 * n_networks + g]
        else:
            loc = x[g]
        scale = x[first + g]
        if kind <= 1:  # mu, log_kappa, kappa
            out[i + g] = math.exp(_log_sigmoid(loc))
            out[i + n_groups + g] = scale
            out[i + 2 * n_groups + g] = math.exp(scale)
        else:  # log_m, log_alpha, alpha, beta (and log_phi, phi)
            out[i + g] = loc
            out[i + n_groups + g] = scale
            out[i + 2 * n_groups + g] = math.exp(scale)
            out[i + 3 * n_groups + g] = math.exp(scale - loc)
            if kind >= 4:
                out[i + 4 * n_groups + g] = x[first + n_groups + g]
                out[i + 5 * n_groups + g] = math.exp(x[first + n_groups + g])


@cfunc(_LOGP_SIG, cache=True, error_model="numpy")
def _logp_callback(dim, x_ptr, grad_ptr, logp_ptr, user_data):
    header = carray(user_data, (HEADER,), dtype=np.float64)
    buf = carray(user_data, (int(header[15]),), dtype=np.float64)
    if dim != int(header[14]):
        return -1
    x = carray(x_ptr, (dim,))
    grad = carray(grad_ptr, (dim,))
    logp = carray(logp_ptr, (1,))
    value = native_logp(buf, x, grad)
    logp[0] = value
    for i in range(dim):
        if not np.isfinite(grad[i]):
            return 3
    if not np.isfinite(value):
        return 4
    return 0


@cfunc(_EXPAND_SIG, cache=True, error_model="numpy")
def _expand_callback(dim, n_expanded, x_ptr, out_ptr, user_data):
    header = carray(user_data, (HEADER,), dtype=np.float64)
    buf = carray(user_data, (int(header[15]),), dtype=np.float64)
    if dim != int(header[14]) or n_expanded != int(header[13]):
        return -1
    _expand(buf, carray(x_ptr, (dim,)), carray(out_ptr, (n_expanded,)))
    return 0


def log_runs(slot: np.ndarray, k: np.ndarray, w: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gather log terms ``w_j log(P[slot_j] + k_j)`` into runs of consecutive offsets.

    Consecutive terms with the same slot and weight whose offsets step by one form a run
    ``(slot, first offset, length, weight)``; :func:`bayesactiv.bayes.likelihood.tail_terms`
    writes each run of constant tail weight this way.

    Examples
    --------
    >>> s, k, n, w = log_runs(np.array([0, 0, 0, 1]), np.array([0.0, 1.0, 2.0, 0.0]),
    ...                       np.array([2.0, 2.0, 2.0, 1.0]))
    >>> s.tolist(), k.tolist(), n.tolist(), w.tolist()
    ([0, 1], [0.0, 0.0], [3, 1], [2.0, 1.0])
    """
    slot, k, w = np.asarray(slot), np.asarray(k, dtype=float), np.asarray(w, dtype=float)
    if slot.size == 0:
        return slot, k, np.zeros(0, dtype=np.int64), w
    cont = (slot[1:] == slot[:-1]) & (w[1:] == w[:-1]) & (k[1:] == k[:-1] + 1.0)
    start = np.flatnonzero(np.r_[True, ~cont])
    length = np.diff(np.r_[start, slot.size])
    return slot[start], k[start], length, w[start]


def native_kind(structure: str, method: str, pool: bool) -> int | None:
    """The buffer kind of a model, or None when it has no native log density (every
    ``method="full"`` model goes through PyMC).

    Examples
    --------
    >>> native_kind("beta", "marginal", False), native_kind("nb", "marginal", True)
    (0, 5)
    >>> native_kind("beta", "full", False) is None
    True
    """
    if method != "marginal":
        return None
    return KINDS.get((structure, bool(pool)))


@dataclass(frozen=True)
class NativeModel:
    """A collapsed model's data in the callbacks' buffer, with its variables' names and sizes.

    Parameters
    ----------
    buffer : float64 array
        Header and data (module docstring).
    names : tuple of str
        Stored variables, in the order of the expanded vector.
    sizes : tuple of int
        Their lengths.
    n_dim : int
        Number of unconstrained parameters.
    center : float64 array
        The initial point before jitter (PyMC's support points on the unconstrained scale).
    """

    buffer: np.ndarray
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    n_dim: int
    center: np.ndarray

    @classmethod
    def build(cls, structure: str, pool: bool, n_groups: int, n_networks: int,
              network_index: np.ndarray | None, arrays: list[np.ndarray], n_a: int, n_b: int,
              loc_prior: tuple[float, float], window: float = 1.0, n_c: int = 0
              ) -> NativeModel:
        """The buffer of a model from its data arrays (as
        :func:`bayesactiv.bayes.sampling.native_model` gathers them), centred for the initial
        points on PyMC's support points (the prior means)."""
        kind = KINDS[(structure, bool(pool))]
        header = np.zeros(HEADER)
        header[:5] = kind, n_groups, n_networks, n_a, n_b
        header[5:7] = _POOL_LOC[structure] if pool else loc_prior
        header[7:9] = _LOG_KAPPA if structure == "beta" else _LOG_ALPHA
        header[9] = window
        header[10:12] = _LOG_PHI
        header[12] = n_c
        parts = [header]
        if pool:
            parts.append(np.asarray(network_index, dtype=float))
        parts += [np.asarray(a, dtype=float) for a in arrays]
        buffer = np.ascontiguousarray(np.concatenate(parts))
        blocks = 3 if structure == "nb" else 2  # location, log kappa / log alpha, log phi
        if pool:
            names = ("M_network", "S_network", "z_group")
            sizes: tuple[int, ...] = (n_networks, n_networks, n_groups)
            first = 2 * n_networks + n_groups
            center = np.zeros(first + (blocks - 1) * n_groups)  # S = 1 (log 0), z = 0
            center[:n_networks] = header[5]
        else:
            names, sizes, first = (), (), n_groups
            center = np.zeros(blocks * n_groups)
            a0, b0 = loc_prior
            center[:n_groups] = math.log(a0 / b0) if structure == "beta" else a0
        n_dim = center.size
        center[first:first + n_groups] = header[7]  # the prior means (PyMC's support points)
        if structure == "nb":
            center[first + n_groups:] = header[10]
        if structure == "beta":
            names += ("mu", "log_kappa", "kappa")
        else:
            names += ("log_m", "log_alpha", "alpha", "beta")
        if structure == "nb":
            names += ("log_phi", "phi")
        sizes += (n_groups,) * (len(names) - len(sizes))
        header_view = buffer[:HEADER]
        header_view[13] = sum(sizes)
        header_view[14] = n_dim
        header_view[15] = buffer.size
        buffer.flags.writeable = False
        return cls(buffer, names, sizes, n_dim, center)

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density and gradient at ``x`` (the callback's computation, from Python)."""
        grad = np.empty(self.n_dim)
        return native_logp(self.buffer, np.asarray(x, dtype=float), grad), grad

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The stored variables at ``x``, by name."""
        out = np.empty(sum(self.sizes))
        _expand(self.buffer, np.asarray(x, dtype=float), out)
        bounds = np.cumsum((0,) + self.sizes)
        return {n: out[bounds[i]:bounds[i + 1]] for i, n in enumerate(self.names)}


def compile_native(model: NativeModel):
    """A nutpie compiled model whose callbacks are the cached native ones.

    Returns ``nutpie.compile_pymc.CompiledPyMCModel`` (the class nutpie builds for PyMC
    models), so ``nutpie.sample`` runs it unchanged; its initial points are PyMC's support
    points jittered by U(-1, 1), as ``nutpie.compile_pymc_model`` does.
    """
    from nutpie.compile_pymc import CompiledPyMCModel

    names = list(model.names)
    bounds = np.cumsum((0,) + model.sizes)
    slices = [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(len(names))]
    shapes = [(s,) for s in model.sizes]
    center = model.center

    def initial_point(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return center + rng.uniform(-1.0, 1.0, size=center.size)

    return CompiledPyMCModel(
        _n_dim=model.n_dim,
        dims={},
        _coords={},
        _shapes={n: s for n, s in zip(names, shapes, strict=True)},
        compiled_logp_func=_logp_callback,
        compiled_expand_func=_expand_callback,
        initial_point_func=initial_point,
        shared_data={},
        shared_var_keys={},
        user_data=model.buffer,
        n_expanded=int(bounds[-1]),
        shape_info=(names, slices, shapes),
        logp_func=None,
        expand_func=None,
    )
