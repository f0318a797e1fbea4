"""Tests of bayesactiv.bayes.fitting and the fit object: the hierarchical firing models, against simulated truth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import bayesactiv as ba
from bayesactiv.bayes import fitting, models
from bayesactiv.data import DatasetError
from bayesactiv.data.checks import ArgumentError

KW = {"draws": 500, "tune": 500, "chains": 2}


def _two_groups(seed: int = 0, per_group: int = 100, n: int = 200):
    rng = np.random.default_rng(seed)
    theta = np.concatenate([rng.beta(0.2 * 5, 0.8 * 5, per_group),
                            rng.beta(0.6 * 20, 0.4 * 20, per_group)])
    count = rng.binomial(n, theta)
    ds = ba.make_dataset(count, n, network="net", layer=["a"] * per_group + ["b"] * per_group)
    return ds, theta


@pytest.fixture(scope="session")
def sim():
    return _two_groups()


@pytest.fixture(scope="session")
def marginal(sim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        return ba.fit(sim[0], seed=1, **KW)


@pytest.fixture(scope="session")
def full(sim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        return ba.fit(sim[0], method="full", seed=2, draws=1000, tune=700, chains=2)


@pytest.fixture(scope="session")
def windowed():
    """Bernoulli firing (at most one event per input) recorded in windows of 20 inputs."""
    rng = np.random.default_rng(5)
    k, w = 10, 20
    theta = np.concatenate([rng.beta(0.5 * 4, 0.5 * 4, 60), rng.beta(0.3 * 10, 0.7 * 10, 60)])
    wc = rng.binomial(w, theta[None, :], size=(k, theta.size))
    ds = ba.make_dataset(wc.sum(0), k * w, network="net", layer=["a"] * 60 + ["b"] * 60,
                         window_count=wc, window_size=w)
    return ds, theta


def test_contract_group_draws(marginal):
    gd = marginal.group_draws()
    assert set(gd.data_vars) == {"mu", "kappa", "mfr", "mf", "frac_dead"}
    for name in gd.data_vars:
        assert gd[name].dims == ("chain", "draw", "group")
    assert gd["group"].values.tolist() == ["net/a", "net/b"]
    assert gd["network"].values.tolist() == ["net", "net"]
    assert gd["layer"].values.tolist() == ["a", "b"]
    assert marginal.model == "beta_binomial" and marginal.group_by == ("network", "layer")
    assert marginal.ds is not None and gd.sizes["chain"] == 2 and gd.sizes["draw"] == 500
    np.testing.assert_allclose(gd["mf"], 1 - gd["mfr"])


def test_contract_units_groups(marginal, sim):
    ds, _ = sim
    u = marginal.units(0.9)
    for name in ("mean", "low", "high", "p_dead", "count", "n"):
        assert u[name].dims == ("unit",)
    assert u["unit"].values.tolist() == ds["unit"].values.tolist()
    assert {"network", "layer", "index"} <= set(u.coords)
    assert (u["low"] <= u["mean"]).all() and (u["mean"] <= u["high"]).all()
    g = marginal.groups(0.9)
    for q in ("mu", "kappa", "mfr", "mf", "frac_dead"):
        for s in ("mean", "low", "high"):
            assert g[f"{q}_{s}"].dims == ("group",)
    assert g["n_units"].values.tolist() == [100, 100]
    assert g.attrs["interval"] == "equal-tailed"


def test_recovers_truth(marginal, sim):
    _ds, theta = sim
    u = marginal.units(0.9)
    covered = ((u["low"].values <= theta) & (theta <= u["high"].values)).mean()
    # 200 units at nominal 0.9: binomial sd 0.021; allow 3.5 sd
    assert covered > 0.9 - 3.5 * np.sqrt(0.09 / 200)
    g = marginal.groups(0.99)
    assert g["mu_low"][0] < 0.2 < g["mu_high"][0]
    assert g["mu_low"][1] < 0.6 < g["mu_high"][1]
    assert g["kappa_low"][1] < 20 < g["kappa_high"][1]
    true_mfr = [theta[:100].mean(), theta[100:].mean()]
    assert np.all((g["mfr_low"].values < true_mfr) & (true_mfr < g["mfr_high"].values))
    # p_dead agrees with the truth on clear cases
    assert u["p_dead"].values[theta > 0.1].max() < 1e-3


def test_marginal_matches_full(marginal, full):
    import arviz as az

    for name in ("mu", "kappa"):
        a = marginal.idata["posterior"][name]
        b = full.idata["posterior"][name]
        mcse_a = az.mcse(marginal.idata["posterior"].to_dataset()[[name]])[name]
        mcse_b = az.mcse(full.idata["posterior"].to_dataset()[[name]])[name]
        diff = np.abs(a.mean(("chain", "draw")) - b.mean(("chain", "draw")))
        assert (diff < 3 * np.sqrt(mcse_a**2 + mcse_b**2)).all(), name
    ua, ub = marginal.units(0.9), full.units(0.9)
    assert float(np.abs(ua["low"] - ub["low"]).max()) < 0.01
    assert float(np.abs(ua["high"] - ub["high"]).max()) < 0.01
    ga, gb = marginal.groups(), full.groups()
    np.testing.assert_allclose(ga["mfr_mean"], gb["mfr_mean"], atol=0.003)
    np.testing.assert_allclose(ga["frac_dead_mean"], gb["frac_dead_mean"], atol=0.01)


def test_reproducible_and_compiled_once(sim):
    ds, _ = sim
    small = ds.isel(unit=slice(0, 150))
    f1 = ba.fit(small, seed=7, draws=200, tune=200, chains=2)
    before = dict(models.COMPILE_COUNT)
    f2 = ba.fit(small, seed=7, draws=200, tune=200, chains=2)
    other = ds.isel(unit=slice(20, 130))  # another size, same padded bucket
    ba.fit(other, seed=3, draws=200, tune=200, chains=2)
    assert models.COMPILE_COUNT == before
    xr.testing.assert_equal(f1.idata["posterior"].to_dataset(),
                                f2.idata["posterior"].to_dataset())
    xr.testing.assert_equal(f1.group_draws(), f2.group_draws())


def test_edge_groups():
    """All dead, always firing, one unit, never observed: fit without crashing, sensibly."""
    count = [0] * 50 + [200] * 50 + [37] + [0] * 5
    n = [200] * 50 + [200] * 50 + [200] + [0] * 5
    layer = ["dead"] * 50 + ["sat"] * 50 + ["one"] + ["empty"] * 5
    ds = ba.make_dataset(count, n, network="net", layer=layer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        f = ba.fit(ds, seed=4, **KW)
    g = f.groups(0.9).set_index(group="layer")
    # mu can stay off 0 when kappa is small (all theta_u near 0 anyway); the units' mean cannot
    assert float(g["mu_high"].sel(group="dead")) < 0.05
    assert float(g["mfr_high"].sel(group="dead")) < 0.01
    assert float(g["mu_low"].sel(group="sat")) > 0.95
    assert float(g["mfr_low"].sel(group="sat")) > 0.99
    assert float(g["frac_dead_mean"].sel(group="dead")) > 0.9
    assert float(g["frac_dead_high"].sel(group="sat")) == 0.0
    # one unit: its interval covers its own rate; never observed: the prior mean 1/2
    u = f.units(0.9)
    one = u.isel(unit=100)
    assert one["low"] < 37 / 200 < one["high"]
    assert 0.3 < float(g["mu_mean"].sel(group="empty")) < 0.7
    assert np.isfinite(u["low"]).all() and np.isfinite(u["high"]).all()
    dead_u = u.isel(unit=slice(0, 50))
    assert (dead_u["high"] < 0.03).all() and (dead_u["low"] >= 0).all()


def test_bad_input(sim):
    ds, _ = sim
    bad = ds.copy()
    bad["count"] = bad["count"].astype(float) + 0.5
    with pytest.raises(DatasetError, match="count"):
        ba.fit(bad)
    bad = ds.copy()
    bad["count"] = bad["n"] + 1
    with pytest.raises(DatasetError, match="exceeds"):
        ba.fit(bad)
    with pytest.raises(ValueError, match="model"):
        ba.fit(ds, "poisson")
    with pytest.raises(ValueError, match="group_by"):
        ba.fit(ds, group_by=("colour",))
    with pytest.raises(DatasetError, match="window_count"):
        ba.fit(ds, "gamma_poisson")
    with pytest.raises(ValueError, match="method"):
        ba.fit(ds, method="laplace")
    with pytest.raises(ValueError, match="pool_layers"):
        ba.fit(ds, group_by=("layer",), pool_layers=True)


def test_convergence_warning(sim):
    with pytest.warns(models.ConvergenceWarning, match="ESS"):
        f = ba.fit(sim[0].isel(unit=slice(0, 150)), seed=0, draws=30, tune=30, chains=2)
    assert not f.diagnostics["ok"]
    table = f.summary()
    assert {"r_hat", "ess_bulk", "ess_tail", "divergences"} <= set(table.columns)


def test_window_models_recover_truth(windowed):
    ds, theta = windowed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        fb = ba.fit(ds, "binomial_window", seed=1, **KW)
        fg = ba.fit(ds, "gamma_poisson", seed=1, **KW)
    ub, ug = fb.units(0.9), fg.units(0.9)
    assert ((ub["low"].values <= theta) & (theta <= ub["high"].values)).mean() > 0.8
    # the Poisson rate is events per input, the same quantity as theta here
    np.testing.assert_allclose(ug["mean"], ub["mean"], atol=0.05)
    gd = fg.group_draws()
    assert {"alpha", "beta", "mfr", "mf", "frac_dead"} <= set(gd.data_vars)
    assert (gd["mf"] == 1).all()
    g = fb.groups(0.99)
    true_mfr = [theta[:60].mean(), theta[60:].mean()]
    assert np.all((g["mfr_low"].values < true_mfr) & (true_mfr < g["mfr_high"].values))


def test_pool_layers(sim):
    ds, _ = sim
    ds2 = ba.combine([ds, ds.assign_coords(network=("unit", ["net2"] * ds.sizes["unit"]),
                                           unit=("unit", [u.replace("net/", "net2/")
                                                          for u in ds["unit"].values]))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        f = ba.fit(ds2, pool_layers=True, seed=5, **KW)
    g = f.groups()
    assert g.sizes["group"] == 4
    assert "M_network" in f.idata["posterior"]
    np.testing.assert_allclose(g["mu_mean"].values[[0, 1]], g["mu_mean"].values[[2, 3]], atol=0.03)


def test_quantiles_of_near_dead_units_are_exact_on_the_probability_scale():
    """Intervals of units that never fired sit orders of magnitude below the posterior sd;
    their bounds must still be the mixture's quantiles (regressions: a convergence test on the
    absolute step, then Newton steps in x itself, stopped far from the quantile)."""
    from scipy import special

    from bayesactiv.bayes import calibration
    rng = np.random.default_rng(2)
    for _ in range(2):  # the second draw of this stream has units with quantiles near 1e-55
        ds, _truth = calibration.simulate("rare", rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        f = ba.fit(ds, draws=500, tune=500, chains=2, seed=1, mu_prior=(1.0, 300.0))
    post = f.idata["posterior"]
    mu, kappa = post["mu"].values.ravel(), post["kappa"].values.ravel()
    c, n = ds["count"].values, ds["n"].values
    for prob in (0.5, 0.9):
        u = f.units(prob)
        for bound, level in (("low", (1 - prob) / 2), ("high", (1 + prob) / 2)):
            x = u[bound].values
            # the exact mixture CDF over every draw at the reported bound
            cdf = special.betainc(mu[None] * kappa[None] + c[:, None],
                                  (1 - mu[None]) * kappa[None] + (n - c)[:, None],
                                  x[:, None]).mean(axis=1)
            positive = x > 0
            assert (np.abs(cdf[positive] - level) < 5e-3).all(), (prob, bound)
            # a bound of exactly 0 is right only when the quantile lies below 1e-300
            at_tiny = special.betainc(mu[None] * kappa[None] + c[~positive, None],
                                      (1 - mu[None]) * kappa[None] + (n - c)[~positive, None],
                                      1e-300).mean(axis=1)
            assert (at_tiny >= level - 5e-3).all(), (prob, bound)


BAD_FIT_ARGS = [
    ({"draws": 0}, "draws"),
    ({"draws": 1.5}, "draws"),
    ({"draws": "100"}, "draws"),
    ({"tune": 0}, "tune"),  # nutpie panics on it ("Poisoned sampler state mutex")
    ({"tune": -1, "sampler": "pymc"}, "tune"),
    ({"chains": 0}, "chains"),
    ({"chains": True}, "chains"),
    ({"seed": -1}, "seed"),
    ({"seed": "1"}, "seed"),
    ({"seed": 2**64}, "seed"),
    ({"sampler": "stan"}, "sampler"),
    ({"method": "laplace"}, "method"),
    ({"model": "poisson"}, "model"),
    ({"epsilon": 0}, "epsilon"),
    ({"epsilon": 1.0}, "epsilon"),
    ({"epsilon": float("nan")}, "epsilon"),
    ({"epsilon": "0.01"}, "epsilon"),
    ({"mu_prior": (0, 1)}, "mu_prior"),
    ({"mu_prior": "12"}, "mu_prior"),
    ({"mu_prior": (1, 2, 3)}, "mu_prior"),
    ({"rate_prior": (0.0, 0.0)}, "rate_prior"),
    ({"rate_prior": (float("inf"), 1.0)}, "rate_prior"),
    ({"group_by": ("colour",)}, "group_by"),
    ({"group_by": ("layer", "layer")}, "group_by"),
    ({"pool_layers": "yes"}, "pool_layers"),
    ({"pool_layers": True, "group_by": ("layer",)}, "pool_layers"),
    ({"progress": 1}, "progress"),
    ({"target_accept": 1.0}, "target_accept"),
    ({"target_accept": 0}, "target_accept"),
    ({"target_accept": 0.9, "sampler": "pymc", "random_seed": 1}, "sampler_kwargs"),
    ({"progress_bar": True}, "sampler_kwargs"),
    ({"no_such_setting": 1}, "sampler_kwargs"),
    ({"maxdepth": "deep"}, "sampler_kwargs"),
    ({"cores": 0}, "cores"),
    ({"adaptation": "newton"}, "adaptation"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD_FIT_ARGS)
def test_fit_refuses_bad_arguments_before_compiling(sim, monkeypatch, kwargs, name):
    def never(*args, **kw):
        raise AssertionError("sampled although an argument was bad")

    monkeypatch.setattr(fitting, "sample", never)
    with pytest.raises(ArgumentError, match=f"^{name}"):
        ba.fit(sim[0], **kwargs)


def test_fit_accepts_numpy_scalars_and_its_real_minimum_tune(sim):
    """tune=1 is nutpie's minimum (0 panics); numpy integers and floats are numbers."""
    small = sim[0].isel(unit=slice(0, 150))  # the model test_reproducible_... compiles
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        f = ba.fit(small, draws=np.int64(10), tune=1, chains=np.int32(1), seed=np.uint64(3),
                   epsilon=np.float32(0.02), target_accept=0.9)
    assert f.idata["posterior"].sizes["draw"] == 10 and f.epsilon == float(np.float32(0.02))
    # the other sampler may skip tuning
    args = fitting.check_fit_args("beta_binomial", "layer", "marginal", 10, 0, 1, None, "pymc",
                                  0.01, False, False, (1, 1), (0.0, 1.0), {})
    assert args["tune"] == 0 and args["group_by"] == ("layer",)


def test_one_prob_check_everywhere(marginal):
    for call in (marginal.units, marginal.groups, marginal.summary):
        for bad in ("0.9", 1.0, 0, None, True):
            with pytest.raises(ArgumentError, match="^prob"):
                call(bad)
    u = marginal.units(np.float32(0.9))  # numpy numbers are numbers
    assert u.attrs["prob"] == float(np.float32(0.9))
    assert marginal.groups(np.float64(0.5)).attrs["prob"] == 0.5
    with pytest.raises(ArgumentError, match="^max_draws"):
        marginal.unit_draws([0], max_draws=0)


def test_arviz_reads_the_fit(marginal, sim):
    import arviz as az
    from scipy import stats

    ds, _ = sim
    idata = marginal.idata
    obs, const = idata["observed_data"], idata["constant_data"]
    np.testing.assert_array_equal(obs["count"].values, ds["count"].values)
    np.testing.assert_array_equal(const["n"].values, ds["n"].values)
    assert obs["count"]["unit"].values.tolist() == ds["unit"].values.tolist()
    ll = idata["log_likelihood"]["count"]
    assert ll.dims == ("chain", "draw", "unit")
    assert ll["unit"].values.tolist() == ds["unit"].values.tolist()
    # each unit's log-likelihood is the beta-binomial pmf of its count at the draw's (a, b)
    post = idata["posterior"]
    for chain, draw in ((0, 0), (1, 123)):
        mu = post["mu"].isel(chain=chain, draw=draw).values
        kappa = post["kappa"].isel(chain=chain, draw=draw).values
        g = marginal._groups.index
        want = stats.betabinom.logpmf(ds["count"].values, ds["n"].values, mu[g] * kappa[g],
                                      (1 - mu[g]) * kappa[g])
        np.testing.assert_allclose(ll.isel(chain=chain, draw=draw).values, want, rtol=1e-10)
    loo = az.loo(idata)
    assert loo.n_data_points == ds.sizes["unit"] and np.isfinite(loo.elpd)
    np.testing.assert_allclose(loo.elpd, az.loo(idata, var_name="count").elpd)


def test_warmup_draws_carry_the_group_dimension(marginal):
    post, warm = marginal.idata["posterior"], marginal.idata["warmup_posterior"]
    for name in ("mu", "kappa", "log_kappa"):
        assert warm[name].dims == post[name].dims == ("chain", "draw", "group")
    assert warm["group"].values.tolist() == post["group"].values.tolist() == ["net/a", "net/b"]
    assert warm["group_layer"].values.tolist() == ["a", "b"]
    stats_, warm_stats = marginal.idata["sample_stats"], marginal.idata["warmup_sample_stats"]
    for name in stats_.data_vars:
        assert warm_stats[name].dims == stats_[name].dims


def test_arviz_plots_the_fit(marginal):
    import matplotlib

    matplotlib.use("Agg")
    import arviz as az
    import matplotlib.pyplot as plt

    try:
        az.plot_forest(marginal.idata, var_names=["mu", "kappa"])
        az.plot_trace(marginal.idata, var_names=["mu"])
        az.plot_khat(az.loo(marginal.idata, pointwise=True))
    finally:
        plt.close("all")


def test_convergence_warning_points_at_the_callers_line():
    import warnings as _w

    ds = ba.make_dataset(np.array([0, 1, 2, 3]), 5, network="n", layer="l")
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        ba.fit(ds, draws=20, tune=5, chains=1, seed=0, progress=False)
    conv = [w for w in caught if issubclass(w.category, ba.models.ConvergenceWarning)]
    assert conv, "a 20-draw single-chain fit should fail the convergence checks"
    assert all(w.filename == __file__ for w in conv)
