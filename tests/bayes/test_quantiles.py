"""Tests of bayesactiv.bayes.quantiles: per-unit mixture CDFs and quantiles."""

from __future__ import annotations

import numpy as np

from bayesactiv.bayes import quantiles


def test_mixture_quantiles_exact_for_single_component():
    from scipy import stats

    a = np.array([[0.5], [3.0], [40.0]])
    b = np.array([[7.0], [3.0], [2.0]])
    q = quantiles.mixture_quantiles("beta", a, b, [0.05, 0.95])
    np.testing.assert_allclose(q, stats.beta.ppf([0.05, 0.95], a, b), rtol=1e-5, atol=1e-9)
    q = quantiles.mixture_quantiles("rate", a, b, [0.05, 0.95])
    np.testing.assert_allclose(q, stats.gamma.ppf([0.05, 0.95], a, scale=1 / b), rtol=1e-5)
    # a two-component mixture: the CDF at the returned quantile is the level asked
    a2, b2 = np.array([[2.0, 30.0]]), np.array([[30.0, 2.0]])
    x = quantiles.mixture_quantiles("beta", a2, b2, [0.3])[0, 0]
    assert abs(stats.beta.cdf(x, a2[0], b2[0]).mean() - 0.3) < 1e-6


def test_thinned_quantiles_close_to_all_draws():
    """Adaptive thinning keeps per-unit quantiles within 1e-3 of those from every draw, also
    when the components are spread (a loose group posterior)."""
    rng = np.random.default_rng(2)
    rows, n_draws = 60, 2000
    x = rng.integers(0, 31, rows)[:, None]
    a = np.exp(rng.normal(0.0, 0.8, n_draws))[None, :]
    b = np.exp(rng.normal(0.5, 0.8, n_draws))[None, :]
    p1, p2 = a + x, b + 30 - x
    comp_mean, comp_var = quantiles.moments("beta", p1, p2)
    mean, var = comp_mean.mean(axis=1), comp_var.mean(axis=1) + comp_mean.var(axis=1)
    qs = [0.05, 0.95]
    every = quantiles.mixture_quantiles("beta", p1, p2, qs)
    thinned = quantiles.adaptive_quantiles("beta", p1, p2, qs, mean, var, 100)
    assert np.abs(thinned - every).max() < 1e-3
    # without the adaptive redo, 100 draws would be visibly off for such spread components
    plain = quantiles.mixture_quantiles("beta", p1[:, ::20], p2[:, ::20], qs)
    assert np.abs(plain - every).max() > np.abs(thinned - every).max()


def test_mixture_cdf_skips_only_negligible_rows():
    rng = np.random.default_rng(3)
    x = np.array([0, 1, 5, 40, 200, 1000, 2000])[:, None]
    a, b = rng.gamma(2.0, 0.5, 500)[None, :], rng.gamma(20.0, 1.0, 500)[None, :]
    p1, p2 = a + x, b + 2000 - x
    exact = quantiles.cdf("beta", p1, p2, np.full(p1.shape, 0.01)).mean(axis=1)
    fast = quantiles.mixture_cdf_at("beta", p1, p2, 0.01)
    np.testing.assert_allclose(fast, exact, rtol=1e-12, atol=1e-12)
    assert fast[-1] == 0.0 and fast[0] > 0.99
