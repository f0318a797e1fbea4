"""Per-unit posteriors as mixtures over posterior draws: moments, CDFs, quantiles.

In the marginal method each unit's posterior is the equal-weight mixture over draws of its
conjugate conditional (Beta or Gamma); its quantiles are solved by safeguarded Newton
iteration on the mixture CDF once per distinct (group, statistic) pair.

Examples
--------
>>> import numpy as np
>>> q = mixture_quantiles("beta", np.array([[2.0]]), np.array([2.0]).reshape(1, 1), [0.5])
>>> round(float(q[0, 0]), 6)  # Beta(2, 2) is symmetric about 1/2
0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit
from scipy import special

from bayesactiv.bayes.sufficient import CHUNK, Stats

__all__ = ["QUANTILE_SE", "TINY", "adaptive_quantiles", "cdf", "cdf_bounds", "component_params",
           "logpdf", "matched", "mixture_cdf_at", "mixture_quantiles", "moments",
           "quantile_draws", "thin", "unit_summaries"]

TINY = 1e-300
_QUANTILE_BUDGET = 250_000  # components (pairs x draws) per pass of the quantile solver
_QUANTILE_MIN_DRAWS = 64  # at least this many (evenly thinned) draws in per-unit quantiles
QUANTILE_SE = 1e-3  # thinning error allowed in per-unit quantiles (standard error of the
# mixture CDF at the quantile, i.e. on the probability scale: scale-free, so a quantile of a
# near-dead unit at 1e-9 is held to the same standard as one at 0.5)


def component_params(st: Stats, draws: dict[str, np.ndarray], pairs: np.ndarray
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


def cdf(kind: str, p1: np.ndarray, p2: np.ndarray, x: np.ndarray) -> np.ndarray:
    if kind == "beta":
        return special.betainc(p1, p2, np.clip(x, 0.0, 1.0))
    return special.gammainc(p1, p2 * np.maximum(x, 0.0))


def logpdf(kind: str, p1, p2, lnorm, x):
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "beta":
            return (p1 - 1) * np.log(x) + (p2 - 1) * np.log1p(-x) - lnorm
        return p1 * np.log(p2) + (p1 - 1) * np.log(x) - p2 * x - lnorm


def moments(kind: str, p1: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each component (Beta(p1, p2) or Gamma(shape p1, rate p2))."""
    if kind == "beta":
        mean = p1 / (p1 + p2)
        return mean, mean * (1.0 - mean) / (p1 + p2 + 1.0)
    return p1 / p2, p1 / p2**2


def matched(kind: str, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameters of the Beta (Gamma) with the given mean and variance."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "beta":
            nu = mean * (1.0 - mean) / var - 1.0
            return np.maximum(mean * nu, 1e-300), np.maximum((1.0 - mean) * nu, 1e-300)
        return np.maximum(mean**2 / var, 1e-300), np.maximum(mean / var, 1e-300)


def cdf_bounds(kind: str, p1: np.ndarray, p2: np.ndarray, x: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds, per row, of the components' CDFs at ``x``.

    Both the Beta CDF ``I_x(p1, p2)`` and the Gamma CDF ``P(p1, p2 x)`` decrease in ``p1`` and
    increase in ``p2``, so two CDF evaluations per row bound all of its components."""
    return _bounds(kind, p1.min(axis=1), p1.max(axis=1), p2.min(axis=1), p2.max(axis=1), x)


def _bounds(kind: str, p1_min: np.ndarray, p1_max: np.ndarray, p2_min: np.ndarray,
            p2_max: np.ndarray, x: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cdf_bounds` from each row's extremes of ``p1`` and ``p2``."""
    return cdf(kind, p1_max, p2_min, np.asarray(x)), cdf(kind, p1_min, p2_max, np.asarray(x))


def mixture_cdf_at(kind: str, p1: np.ndarray, p2: np.ndarray, x: float,
                   negligible: float = 1e-12) -> np.ndarray:
    """Mean over the components of each row of the CDF at ``x``.

    Rows whose components' CDFs are all below ``negligible`` (above ``1 - negligible``) by
    :func:`cdf_bounds` are returned as 0 (1) without evaluating every component."""
    lo, hi = cdf_bounds(kind, p1, p2, x)
    return _cdf_where_needed(kind, lo, hi, x, lambda rows: (p1[rows], p2[rows]), p1.shape[1],
                             negligible)


def _cdf_where_needed(kind: str, lo: np.ndarray, hi: np.ndarray, x: float, components,
                      n_comp: int, negligible: float = 1e-12) -> np.ndarray:
    """:func:`mixture_cdf_at` given the rows' bounds ``lo``, ``hi``: the rows between them
    are evaluated in blocks of at most :data:`CHUNK` components, ``components(rows)`` giving
    their ``(p1, p2)``."""
    out = np.where(lo > 1.0 - negligible, 1.0, 0.0)
    todo = np.flatnonzero((hi >= negligible) & (lo <= 1.0 - negligible))
    for rows in np.array_split(todo, max(1, todo.size * n_comp // CHUNK)):
        if rows.size:
            p1, p2 = components(rows)
            out[rows] = cdf(kind, p1, p2, np.full((rows.size, 1), x)).mean(axis=1)
    return out


def mixture_quantiles(kind: str, p1: np.ndarray, p2: np.ndarray, qs: Sequence[float],
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
    rows = p1.shape[0]
    se = np.zeros((rows, len(qs)))
    lnorm = special.betaln(p1, p2) if kind == "beta" else special.gammaln(p1)
    out = np.empty((rows, len(qs)))
    if mean is None or var is None:
        comp_mean, comp_var = moments(kind, p1, p2)
        mean = comp_mean.mean(axis=1)
        var = comp_var.mean(axis=1) + comp_mean.var(axis=1)
    sd = np.sqrt(var)
    m1, m2 = matched(kind, mean, var)
    for j, q in enumerate(qs):
        lo, hi, x = _bracket_and_start(kind, p1, p2, m1, m2, q)
        _newton(kind, p1, p2, lnorm, q, sd, x, lo, hi, se[:, j], tol, max_iter)
        out[:, j] = _zero_below_normal(kind, p1, p2, q, x)
    if return_se:
        return out, np.nan_to_num(se, nan=np.inf)
    return out


def _bracket_and_start(kind: str, p1: np.ndarray, p2: np.ndarray, m1: np.ndarray,
                       m2: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bracket ``[lo, hi]`` of each row's ``q`` quantile and the Newton start: the quantile of
    the moment-matched Beta (Gamma) ``(m1, m2)``, or the bracket's middle if outside it."""
    rows = p1.shape[0]
    if kind == "beta":
        lo, hi = np.zeros(rows), np.ones(rows)
        start = special.betaincinv(m1, m2, q)
    else:
        lo = np.zeros(rows)
        hi = (special.gammaincinv(p1, q) / p2).max(axis=1) * (1 + 1e-9) + 1e-300
        start = special.gammaincinv(m1, q) / m2
    inner = (start > lo) & (start < hi) & np.isfinite(start)
    return lo, hi, np.where(inner, start, 0.5 * (lo + hi))


def _newton(kind: str, p1: np.ndarray, p2: np.ndarray, lnorm: np.ndarray, q: float,
            sd: np.ndarray, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, se: np.ndarray,
            tol: float, max_iter: int) -> None:
    """Safeguarded Newton iteration in ``log x`` on the mixture CDF, in place on ``x`` (and
    the bracket ``lo``, ``hi``); ``se`` gets the Monte Carlo error of the CDF at ``x``."""
    n_comp = p1.shape[1]
    active = np.arange(p1.shape[0])
    for _ in range(max_iter):
        xa = x[active]
        pa, qa = p1[active], p2[active]
        comp_F = cdf(kind, pa, qa, xa[:, None])
        F = comp_F.mean(axis=1)
        err = F - q
        done = np.abs(err) < tol
        below = err < 0
        lo[active] = np.where(below, xa, lo[active])
        hi[active] = np.where(below, hi[active], xa)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            f = np.exp(logpdf(kind, pa, qa, lnorm[active], xa[:, None])).mean(axis=1)
            # Newton on log x: dF/dlog x = x f(x). Near 0 the density of a near-dead unit
            # is astronomically large (x^(a-1) with a ~ 1e-3), so a step in x itself is
            # microscopic although F is far from q; in log x the step has the right size
            log_step = -err / (f * xa)
            step = xa * np.exp(log_step)
            se[active] = comp_F.std(axis=1) / math.sqrt(n_comp)
        la, ha = lo[active], hi[active]
        ok = np.isfinite(step) & (step > la) & (step < ha)
        # bisect geometrically while the bracket spans orders of magnitude (quantiles of
        # near-dead units can be 1e-100), arithmetically otherwise
        floor = np.maximum(la, TINY)
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


def _zero_below_normal(kind: str, p1: np.ndarray, p2: np.ndarray, q: float,
                       x: np.ndarray) -> np.ndarray:
    """Quantiles below the smallest normal double are reported as 0 (in place on ``x``)."""
    near = np.flatnonzero(x < 1e-100)
    if near.size:
        at_zero = cdf(kind, p1[near], p2[near], np.full((near.size, 1), TINY)).mean(axis=1)
        x[near[at_zero >= q]] = 0.0
    return x


def quantile_draws(n_pairs: int, n_draws: int) -> int:
    """How many evenly thinned draws the per-unit quantiles use (all of them for small data)."""
    return int(min(n_draws, max(_QUANTILE_MIN_DRAWS, _QUANTILE_BUDGET // max(n_pairs, 1))))


def thin(n_all: int, n_keep: int) -> np.ndarray:
    """Indices of ``n_keep`` evenly spaced draws out of ``n_all``."""
    return np.linspace(0, n_all - 1, min(n_keep, n_all)).round().astype(int)


def adaptive_quantiles(kind: str, p1: np.ndarray, p2: np.ndarray, qs: Sequence[float],
                       mean: np.ndarray, var: np.ndarray, n_draws: int) -> np.ndarray:
    """Mixture quantiles from ``n_draws`` evenly thinned components, redone with more (up to
    all) for the rows whose thinning error exceeds :data:`QUANTILE_SE`.

    The thinning error of ``k`` of ``n`` components is estimated as the Monte Carlo standard
    error of the ``k``-component mixture CDF at the quantile times ``sqrt(1 - k / n)``; rows above the limit are
    solved again with the number of components the estimate asks for (at least twice as many)."""
    return _adaptive(kind, lambda rows, cols: (p1[rows][:, cols], p2[rows][:, cols]),
                     p1.shape[0], p1.shape[1], qs, mean, var, n_draws)


def _adaptive(kind: str, components, n_rows: int, n_all: int, qs: Sequence[float],
              mean: np.ndarray, var: np.ndarray, n_draws: int) -> np.ndarray:
    """:func:`adaptive_quantiles` with the components built on demand: ``components(rows,
    cols)`` gives ``(p1, p2)`` of those rows and draws, so only the thinned draws are ever
    materialized."""
    keep = thin(n_all, n_draws)
    rows = np.arange(n_rows)
    out, se = mixture_quantiles(kind, *components(rows, keep), qs, mean=mean, var=var,
                                return_se=True)
    while keep.size < n_all:
        k = keep.size
        ratio = (se[rows].max(axis=1) / QUANTILE_SE) ** 2 * k * (1.0 / k - 1.0 / n_all)
        rows = rows[ratio > 1.0]
        if rows.size == 0:
            break
        need = int(min(n_all, max(2 * k, k * float(np.median(ratio[ratio > 1.0])))))
        keep = thin(n_all, need)
        out[rows], se[rows] = mixture_quantiles(
            kind, *components(rows, keep), qs, mean=mean[rows], var=var[rows],
            return_se=True)
    return out


@njit(cache=True)
def _pair_moments(beta: bool, p1_base: np.ndarray, p2_base: np.ndarray, group: np.ndarray,
                  add1: np.ndarray, add2: np.ndarray) -> np.ndarray:
    """Per pair, over the draws of its components ``(p1_base[g] + add1, p2_base[g] + add2)``:
    the mixture's mean and variance and the extremes of p1 and p2 (for :func:`cdf_bounds`),
    in one pass without the (pairs x draws) arrays. Returns (pairs, 6)."""
    n_pairs, n_draws = group.size, p1_base.shape[1]
    out = np.empty((n_pairs, 6))
    for i in range(n_pairs):
        g = group[i]
        s_mean = 0.0
        s_sq = 0.0
        s_var = 0.0
        lo1, hi1, lo2, hi2 = np.inf, -np.inf, np.inf, -np.inf
        for s in range(n_draws):
            p1 = p1_base[g, s] + add1[i]
            p2 = p2_base[g, s] + add2[i]
            if beta:
                mean = p1 / (p1 + p2)
                var = mean * (1.0 - mean) / (p1 + p2 + 1.0)
            else:
                mean = p1 / p2
                var = mean / p2
            s_mean += mean
            s_sq += mean * mean
            s_var += var
            lo1, hi1 = min(lo1, p1), max(hi1, p1)
            lo2, hi2 = min(lo2, p2), max(hi2, p2)
        mixture_mean = s_mean / n_draws
        out[i, 0] = mixture_mean
        out[i, 1] = s_var / n_draws + max(s_sq / n_draws - mixture_mean * mixture_mean, 0.0)
        out[i, 2], out[i, 3], out[i, 4], out[i, 5] = lo1, hi1, lo2, hi2
    return out


def unit_summaries(st: Stats, params: dict[str, np.ndarray], qs: Sequence[float],
                   epsilon: float, n_quantile_draws: int | None = None) -> np.ndarray:
    """Per distinct pair: posterior mean, the quantiles ``qs`` and P(parameter < epsilon).

    Mean, variance (the Newton start) and ``p_dead`` use every draw in ``params`` (arrays
    (group, S)); the quantiles use ``n_quantile_draws`` evenly thinned draws (default
    :func:`quantile_draws`). Returns an array (pairs, 2 + len(qs))."""
    n_pairs = len(st.pair_x)
    s_all = next(iter(params.values())).shape[1]
    s_q = quantile_draws(n_pairs, s_all) if n_quantile_draws is None else n_quantile_draws
    x, m = st.pair_x.astype(float), st.pair_m.astype(float)
    if st.kind == "beta":
        base1, base2, add1, add2 = params["a"], params["b"], x, m - x
    else:
        base1, base2, add1, add2 = params["alpha"], params["beta"], x, m * st.window
    mom = _pair_moments(st.kind == "beta", np.ascontiguousarray(base1, dtype=float),
                        np.ascontiguousarray(base2, dtype=float),
                        st.pair_group.astype(np.int64), add1, add2)
    res = np.empty((n_pairs, 2 + len(qs)))
    res[:, 0] = mom[:, 0]
    # p_dead: the CDF at epsilon; rows whose components all lie beyond it are 0 or 1
    lo, hi = _bounds(st.kind, mom[:, 2], mom[:, 3], mom[:, 4], mom[:, 5], epsilon)
    res[:, -1] = _cdf_where_needed(st.kind, lo, hi, epsilon,
                                   lambda rows: component_params(st, params, rows), s_all)
    for chunk in np.array_split(np.arange(n_pairs), max(1, n_pairs * s_q // CHUNK)):
        if chunk.size == 0:
            continue

        def components(rows, cols, chunk=chunk):
            return component_params(st, {k: v[:, cols] for k, v in params.items()},
                                    chunk[rows])

        res[chunk, 1:-1] = _adaptive(st.kind, components, chunk.size, s_all, qs,
                                     mom[chunk, 0], mom[chunk, 1], s_q)
    return res
