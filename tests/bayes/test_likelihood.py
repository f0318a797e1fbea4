"""Tests of bayesactiv.bayes.likelihood: the tail-sum form and the pointwise log-likelihood."""

from __future__ import annotations

import numpy as np
import pytest

import bayesactiv as ba
from bayesactiv.bayes import likelihood, sampling, sufficient


def _two_groups(seed: int = 0, per_group: int = 100, n: int = 200):
    rng = np.random.default_rng(seed)
    theta = np.concatenate([rng.beta(0.2 * 5, 0.8 * 5, per_group),
                            rng.beta(0.6 * 20, 0.4 * 20, per_group)])
    count = rng.binomial(n, theta)
    ds = ba.make_dataset(count, n, network="net", layer=["a"] * per_group + ["b"] * per_group)
    return ds, theta


def test_tail_sum_form_equals_pair_form():
    """The sufficient-statistic (tail-sum) likelihood equals the per-pair betaln form."""
    from scipy import special

    rng = np.random.default_rng(11)
    n_groups = 3
    for log_run_max in (0, 1, 8, 10**9):
        size = 300
        g = rng.integers(0, n_groups, size)
        m = rng.choice([0, 1, 7, 2000, 10**6], size)
        x = np.floor(rng.random(size) * (m + 1)).astype(np.int64)
        w = rng.integers(1, 60, size).astype(float)
        st = sufficient.Stats("beta", x, m, np.zeros(size), 1.0)
        st.pair_group, st.pair_x, st.pair_m, st.pair_weight = g, x, m, w
        if log_run_max == 10**9:  # all logs: keep the offsets small
            st.pair_m = np.minimum(m, 50)
            st.pair_x = np.minimum(x, st.pair_m)
        t = likelihood.tail_terms(
            np.concatenate([g, n_groups + g, 2 * n_groups + g]),
            np.concatenate([st.pair_x, st.pair_m - st.pair_x, st.pair_m]),
            np.concatenate([w, w, -w]), 3 * n_groups, log_run_max)
        for _ in range(3):
            a, b = rng.gamma(1.0, 3.0, n_groups) + 0.01, rng.gamma(1.0, 3.0, n_groups) + 0.01
            slots = np.r_[a, b, a + b]
            tail = (t.log_w * np.log(slots[t.log_slot] + t.log_k)).sum() + (
                t.lg_w * special.gammaln(slots[t.lg_slot] + t.lg_k)).sum()
            gi, xi, mi = st.pair_group, st.pair_x, st.pair_m
            pair = (w * (special.betaln(xi + a[gi], mi - xi + b[gi])
                         - special.betaln(a[gi], b[gi]))).sum()
            assert abs(tail - pair) <= 1e-9 * abs(pair), (log_run_max, tail, pair)
    # the model's own data arrays agree with the pair form too (padding has weight 0)
    ds, _ = _two_groups(seed=4)
    groups = sufficient.make_groups(ds, ("network", "layer"), False)
    st = sufficient.unit_stats(ds, "beta_binomial", groups)
    data, sizes = sampling.model_data("beta", "marginal", st, groups)
    assert sizes[0] == "tail" and data["lw"].size == sizes[1] and data["gw"].size == sizes[2]
    a, b = np.array([1.3, 4.0]), np.array([5.0, 2.2])
    slots = np.r_[a, b, a + b]
    tail = (data["lw"] * np.log(slots[data["li"]] + data["lk"])).sum() + (
        data["gw"] * special.gammaln(slots[data["gi"]] + data["gk"])).sum()
    gi = st.pair_group
    pair = (st.pair_weight * (special.betaln(st.pair_x + a[gi], st.pair_m - st.pair_x + b[gi])
                              - special.betaln(a[gi], b[gi]))).sum()
    assert abs(tail - pair) <= 1e-9 * abs(pair)


def _window_dataset(seed: int = 0):
    rng = np.random.default_rng(seed)
    wc = rng.binomial(6, rng.beta(2, 5, 5)[None, :], size=(4, 5))
    wc[:, 0] = 0  # a silent unit
    return ba.make_dataset(wc.sum(0), 24, network="n", layer=["a", "a", "b", "b", "b"],
                           window_count=wc, window_size=6)


def _integrated_log_lik(model: str, y: np.ndarray, w: int, par: dict[str, float]) -> float:
    """log of the integral over the unit parameter of the likelihood of one unit's window
    counts ``y`` (window size ``w``) times the parameter's group-level density."""
    from scipy import integrate, stats

    if model == "beta_binomial":
        return float(stats.betabinom.logpmf(y.sum(), y.size * w, par["a"], par["b"]))
    if model == "binomial_window":
        def lik(t):
            return (np.exp(stats.binom.logpmf(y, w, t).sum())
                    * stats.beta.pdf(t, par["a"], par["b"]))
        upper = 1.0
    else:
        def lik(lam):
            if model == "gamma_poisson":
                data = stats.poisson.logpmf(y, lam * w).sum()
            else:  # mean lam W, dispersion phi
                data = stats.nbinom.logpmf(y, par["phi"], par["phi"] / (par["phi"] + lam * w)).sum()
            return np.exp(data) * stats.gamma.pdf(lam, par["alpha"], scale=1 / par["beta"])
        upper = np.inf
    return float(np.log(integrate.quad(lik, 0, upper, epsabs=0, epsrel=1e-11)[0]))


@pytest.mark.parametrize("model", ["beta_binomial", "binomial_window", "gamma_poisson",
                                   "negative_binomial"])
def test_pointwise_log_likelihood_integrates_the_unit_parameter_out(model):
    """Each unit's log-likelihood equals the integral of its data's likelihood over the
    unit parameter's group-level distribution, computed by adaptive quadrature."""
    ds = _window_dataset()
    groups = sufficient.make_groups(ds, ("layer",), False)
    st = sufficient.unit_stats(ds, model, groups)
    rng = np.random.default_rng(1)
    if st.kind == "beta":
        params = {"a": rng.gamma(2.0, 1.0, (2, 3)), "b": rng.gamma(4.0, 1.0, (2, 3))}
    else:
        params = {"alpha": rng.gamma(3.0, 1.0, (2, 3)), "beta": rng.gamma(3.0, 3.0, (2, 3)),
                  "phi": rng.gamma(4.0, 2.0, (2, 3))}
    got = likelihood.pointwise_log_lik(model, st, groups.index, params)
    assert got.shape == (3, 5)
    y, w = ds["window_count"].values, int(ds.attrs["window_size"])
    for s in range(3):
        for u in range(5):
            par = {k: v[groups.index[u], s] for k, v in params.items()}
            want = _integrated_log_lik(model, y[:, u], w, par)
            np.testing.assert_allclose(got[s, u], want, rtol=1e-7, err_msg=(model, s, u))
