"""Fast simulation-based calibration of the beta-binomial model (full run: benchmarks/calibration.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bayesactiv.bayes import calibration
from bayesactiv.data.checks import ArgumentError


@pytest.fixture(scope="module")
def sbc():
    # 24 datasets: every scenario simulates from the prior its fit uses, so the checks are exact
    return calibration.run(["prior", "few_inputs", "rare", "poisson"], 8, draws=300, tune=300,
                           chains=2, n_resamples=199, seed=11)


def test_simulate_poisson_follows_the_design():
    ds, truth = calibration.simulate("poisson", np.random.default_rng(0))
    assert int(ds["n"][0]) == 1000 and int(ds.attrs["window_size"]) == 50
    assert (ds["window_count"].values <= 50).all() and truth["theta"].shape == (40,)


def test_simulate_follows_the_design():
    ds, truth = calibration.simulate("rare", np.random.default_rng(0))
    assert ds.sizes["unit"] == 40 and int(ds["n"][0]) == 200
    assert ds["window_count"].sum("window").values.tolist() == ds["count"].values.tolist()
    assert truth["theta"].shape == (40,) and 0 <= truth["mu"] < 1


@pytest.mark.parametrize("level", [50, 90])
def test_posterior_intervals_cover_at_nominal_rate(sbc, level):
    cover = sbc[f"cover_bayes_{level}"].values.ravel()
    cover = cover[np.isfinite(cover)]
    # units within a dataset share group parameters: the honest standard error is over datasets
    se = cover.std(ddof=1) / math.sqrt(cover.size)
    assert abs(cover.mean() - level / 100) < 3 * se + 0.02, (cover.mean(), se)


def test_ranks_are_uniform(sbc):
    n_ranks = sbc.attrs["n_ranks"]
    assert int(sbc["rank_mu"].max()) <= n_ranks
    from scipy import stats

    for name in ("rank_mu", "rank_log_kappa", "rank_theta"):
        r = sbc[name].values.ravel()
        # uniform on 0..n_ranks: Kolmogorov-Smirnov on the jittered ranks
        u = (r + np.random.default_rng(0).uniform(size=r.size)) / (n_ranks + 1)
        assert stats.kstest(u, "uniform").pvalue > 0.001, name


def test_table_lists_every_method(sbc):
    table = calibration.coverage_table(sbc)
    for word in ("bayes 90%", "wald 50%", "wilson 90%", "bootstrap 90%", "rare", "few_inputs"):
        assert word in table


def test_truths_float64_cannot_place_are_not_scored():
    theta = np.array([0.0, 1e-200, 0.3, 1.0 - 1e-9, 1.0 - 1e-17, 1.0])
    assert calibration.scorable(theta).tolist() == [False, True, True, True, False, False]


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"scenarios": ["nope"]}, "scenarios"),
    ({"scenarios": "prior"}, "scenarios"),
    ({"scenarios": []}, "scenarios"),
    ({"scenarios": ["prior", "prior"]}, "scenarios"),
    ({"n_datasets": 0}, "n_datasets"),
    ({"draws": 0}, "draws"),
    ({"tune": 0}, "tune"),
    ({"chains": 1.5}, "chains"),
    ({"n_ranks": 0}, "n_ranks"),
    ({"n_resamples": "many"}, "n_resamples"),
    ({"baselines": "yes"}, "baselines"),
    ({"seed": -1}, "seed"),
])
def test_run_refuses_bad_arguments_before_simulating(monkeypatch, kwargs, name):
    def never(*args, **kw):
        raise AssertionError("simulated although an argument was bad")

    monkeypatch.setattr(calibration, "simulate", never)
    kwargs = {"scenarios": ["prior"], "n_datasets": 1, **kwargs}
    with pytest.raises(ArgumentError, match=f"^{name}"):
        calibration.run(**kwargs)


def test_simulate_refuses_unknown_scenarios_and_non_generators():
    with pytest.raises(ArgumentError, match="^scenario"):
        calibration.simulate("nope", np.random.default_rng(0))
    with pytest.raises(ArgumentError, match="^rng"):
        calibration.simulate("prior", 0)
