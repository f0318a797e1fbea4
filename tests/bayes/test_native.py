"""The native log densities (bayesactiv.bayes.native) against PyMC's compiled models."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import special

import bayesactiv as ba
from bayesactiv.bayes import models, native, sampling
from bayesactiv.bayes.diagnostics import ConvergenceWarning
from bayesactiv.bayes.sufficient import make_groups, unit_stats


def _windows_dataset(seed: int = 0, units: int = 30):
    rng = np.random.default_rng(seed)
    parts = []
    for net in ("a", "b"):
        for layer in ("l1", "l2", "l3"):
            fired = rng.random((120, units)) < rng.beta(1, 8, units)
            windows = fired.reshape(12, 10, units).sum(axis=1)
            parts.append(ba.make_dataset(fired.sum(0), 120, network=net, layer=layer,
                                         window_count=windows, window_size=10))
    return ba.combine(parts)


def _clustered_dataset(seed: int = 1):
    rng = np.random.default_rng(seed)
    units, inputs, tokens = 40, 30, 12
    theta = rng.beta(0.5, 4, units)
    p = rng.beta(theta * 2 + 1e-3, (1 - theta) * 2 + 1e-3, (inputs, units))
    counts = rng.binomial(tokens, p)
    return ba.data.from_input_counts(counts, np.full((inputs, units), tokens),
                                     network="n", layer="attn")


CASES = [  # (dataset maker, model, pool_layers, location prior)
    (_windows_dataset, "binomial_window", False, (1.0, 1.0)),
    (_windows_dataset, "binomial_window", True, (1.0, 1.0)),
    (_windows_dataset, "gamma_poisson", False, (np.log(0.1), 2.5)),
    (_windows_dataset, "gamma_poisson", True, (np.log(0.1), 2.5)),
    (_windows_dataset, "negative_binomial", False, (np.log(0.1), 2.5)),
    (_windows_dataset, "negative_binomial", True, (np.log(0.1), 2.5)),
    (_windows_dataset, "beta_binomial", False, (2.0, 30.0)),
    (_clustered_dataset, "clustered_beta_binomial", False, (1.0, 1.0)),
]


@pytest.mark.parametrize(("make", "model", "pool", "prior"), CASES)
def test_log_density_and_gradient_equal_pymc(make, model, pool, prior):
    """Value and gradient at random points equal PyMC's compiled model of the same fit
    (normalizing constants and transform Jacobians included), in PyMC's parameter order."""
    import pymc as pm

    ds = make()
    structure = {"gamma_poisson": "gamma", "negative_binomial": "nb"}.get(model, "beta")
    groups = make_groups(ds, ("network", "layer"), pool)
    st = unit_stats(ds, model, groups)
    nm = sampling.native_model(structure, "marginal", st, groups, pool, prior)
    data, _ = sampling.model_data(structure, "marginal", st, groups)
    pm_model = sampling.build_model(structure, "marginal", len(groups.labels),
                                    len(groups.networks), pool, data, prior)
    if pool:
        with pm_model:
            pm.set_data({"net_idx": groups.network_index})
    logp, dlogp = pm_model.compile_logp(), pm_model.compile_dlogp()
    sizes = [int(np.prod(pm_model.initial_point()[v.name].shape)) or 1
             for v in pm_model.value_vars]
    assert sum(sizes) == nm.n_dim
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = rng.normal(0.0, 1.5, nm.n_dim)
        point = dict(zip([v.name for v in pm_model.value_vars],
                         np.split(x, np.cumsum(sizes)[:-1]), strict=True))
        value, grad = nm.logp(x)
        # rel 1e-8: PyTensor's betaln in the Beta prior's constant is off by ~2e-6 (here
        # exact, math.lgamma); with Beta(1, 1) the two agree to 1e-11
        assert value == pytest.approx(float(logp(point)), rel=1e-8)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-8, atol=1e-8)


def test_expanded_variables_are_the_models_variables():
    """The stored variables are PyMC's: mu, log_kappa, kappa (and the pooling level)."""
    ds = _windows_dataset()
    for pool, names in ((False, ("mu", "log_kappa", "kappa")),
                        (True, ("M_network", "S_network", "z_group", "mu", "log_kappa",
                                "kappa"))):
        groups = make_groups(ds, ("network", "layer"), pool)
        st = unit_stats(ds, "binomial_window", groups)
        nm = sampling.native_model("beta", "marginal", st, groups, pool, (1.0, 1.0))
        assert nm.names == names
        x = np.linspace(-1, 1, nm.n_dim)
        out = nm.expand(x)
        if pool:
            loc = (x[:2][groups.network_index]
                   + np.exp(x[2:4])[groups.network_index] * x[4:10])
            np.testing.assert_allclose(out["S_network"], np.exp(x[2:4]))
        else:
            loc = x[:6]
        np.testing.assert_allclose(out["mu"], special.expit(loc))
        np.testing.assert_allclose(out["kappa"], np.exp(out["log_kappa"]))


def test_digamma_and_log_runs():
    xs = np.array([1e-8, 0.3, 1.0, 5.999, 6.0, 17.5, 1e3, 1e8])
    got = np.array([native.digamma(float(x)) for x in xs])
    np.testing.assert_allclose(got, special.digamma(xs), rtol=1e-12, atol=1e-12)
    assert np.isnan(native.digamma(0.0)) and np.isnan(native.digamma(-1.0))
    slot, k, length, w = native.log_runs(np.array([0, 0, 1, 1, 1, 1]),
                                         np.array([3.5, 4.5, 0.0, 1.0, 5.0, 6.0]),
                                         np.array([1.0, 1.0, 2.0, 2.0, 2.0, -1.0]))
    assert slot.tolist() == [0, 1, 1, 1] and k.tolist() == [3.5, 0.0, 5.0, 6.0]
    assert length.tolist() == [2, 2, 1, 1] and w.tolist() == [1.0, 2.0, 2.0, -1.0]


def test_products_out_of_range_fall_back_to_logs():
    """A run whose product overflows (huge kappa in early warm-up) still gives the sum of
    its logs."""
    ds = ba.make_dataset([5, 7, 9], 20, network="n", layer="l")
    groups = make_groups(ds, ("network", "layer"), False)
    st = unit_stats(ds, "beta_binomial", groups)
    nm = sampling.native_model("beta", "marginal", st, groups, False, (1.0, 1.0))
    for log_kappa in (2.0, 60.0, 300.0):
        value, grad = nm.logp(np.array([0.3, log_kappa]))
        mu, kappa = special.expit(0.3), np.exp(log_kappa)
        a, b = mu * kappa, (1 - mu) * kappa
        c, n = np.array([5, 7, 9]), 20
        lik = (special.betaln(a + c, b + n - c) - special.betaln(a, b)).sum()
        prior = (np.log(mu) + np.log1p(-mu)  # Beta(1, 1) and the log-odds Jacobian
                 - 0.5 * ((log_kappa - np.log(10)) / 2.5) ** 2 - np.log(2.5)
                 - 0.5 * np.log(2 * np.pi))
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        assert value == pytest.approx(lik + prior, rel=1e-9, abs=1e-7)


def test_native_fit_compiles_nothing_and_matches_the_pymc_path():
    """A native fit adds no compile; its posterior agrees with the PyMC-compiled path."""
    ds = _windows_dataset(units=60)
    before = dict(models.COMPILE_COUNT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fast = ba.fit(ds, "gamma_poisson", seed=3, draws=1000, tune=1000, chains=2)
        assert models.COMPILE_COUNT == before
        sampling.NATIVE_MODELS = False
        try:
            slow = ba.fit(ds, "gamma_poisson", seed=3, draws=1000, tune=1000, chains=2)
        finally:
            sampling.NATIVE_MODELS = True
    post_a, post_b = fast.idata["posterior"], slow.idata["posterior"]
    assert set(post_a.data_vars) == set(post_b.data_vars)
    for name in ("log_m", "log_alpha"):
        a, b = post_a[name], post_b[name]
        sd = float(np.sqrt((a.var(("chain", "draw")) + b.var(("chain", "draw"))).max()))
        diff = float(abs(a.mean(("chain", "draw")) - b.mean(("chain", "draw"))).max())
        assert diff < 0.25 * sd, (name, diff, sd)  # MC error of 2 x 2,000 draws is ~0.03 sd


def test_callbacks_load_from_the_disk_cache_in_a_new_process():
    """The C callbacks are compiled once per machine: a new process loads both from numba's
    on-disk cache (a cache hit each, no compile)."""
    code = ("from bayesactiv.bayes import native\n"
            "print(native._logp_callback._cache_hits, native._expand_callback._cache_hits)\n")
    run = [sys.executable, "-c", code]
    subprocess.run(run, check=True, capture_output=True)  # fills the cache if it was empty
    out = subprocess.run(run, check=True, capture_output=True, text=True).stdout
    assert out.split() == ["1", "1"]
