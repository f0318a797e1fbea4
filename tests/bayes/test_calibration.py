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


# ----------------------------------------------------------------------------- clustered events


@pytest.fixture(scope="module")
def clustered_sbc():
    # the strongly clustered design (32 tokens per input, phi = 1: design effect about 16)
    return calibration.run(["tokens32_phi1"], 8, draws=300, tune=300, chains=2,
                           n_resamples=199, seed=5)


def test_every_clustered_scenario_runs_and_is_tabled():
    res = calibration.run(list(calibration.CLUSTERED), 1, draws=100, tune=100, chains=1,
                          n_ranks=19, n_resamples=49, seed=2)
    for method in ("bayes", "naive", "bootstrap"):
        for lv in (50, 90):
            v = res[f"cover_{method}_{lv}"].values
            assert np.isfinite(v).all() and ((v >= 0) & (v <= 1)).all(), (method, lv)
    # Wald and Wilson are not scored on clustered events, so the table has no column for them
    assert np.isnan(res["cover_wald_90"].values).all()
    table = calibration.coverage_table(res)
    assert "naive 90%" in table and "bootstrap 50%" in table and "wald" not in table
    assert len(table.splitlines()) == 2 + len(calibration.CLUSTERED)


def test_clustered_posterior_covers_where_the_token_level_one_does_not(clustered_sbc):
    pooled = {m: float(np.nanmean(clustered_sbc[f"cover_{m}_90"].values))
              for m in ("bayes", "naive", "bootstrap")}
    assert 0.8 <= pooled["bayes"] <= 0.98, pooled
    assert pooled["bayes"] > pooled["naive"] + 0.25, pooled
    # the bootstrap resamples whole inputs: far wider than the token-level intervals
    assert pooled["bootstrap"] > pooled["naive"] + 0.15, pooled
    assert 0.3 <= float(np.nanmean(clustered_sbc["cover_bayes_50"].values)) <= 0.7


def test_dense_tables_get_no_naive_column(sbc):
    assert "naive" not in calibration.coverage_table(sbc) and "cover_naive_90" not in sbc


@pytest.mark.parametrize("name", ["tokens32_phi1", "varlen_phi1", "tokens32_indep",
                                  "tokens1_phi1", "few_inputs_tokens32_phi1"])
def test_simulate_clustered_follows_the_design(name):
    sc = calibration.SCENARIOS[name]
    ds, truth = calibration.simulate(name, np.random.default_rng(3))
    c, t = truth["input_count"], truth["input_events"]
    assert c.shape == (sc.n_inputs, 40) and t.shape == (sc.n_inputs,)
    assert ds["count"].values.tolist() == c.sum(0).tolist()
    assert (ds["n"].values == t.sum()).all()
    if sc.variable_lengths:
        assert t.min() >= 1 and t.max() <= 64 and len(np.unique(t)) > 10
    else:
        assert (t == sc.tokens).all()
    if sc.phi is None:
        assert (truth["p"] == truth["theta"][None, :]).all()
    else:
        assert truth["p"].std(axis=0).max() > 0
    # one token per input is a dense layer: no cluster of more than one event
    assert bool((ds["cluster_n"] == ds["n"]).all()) == (sc.tokens == 1)


def test_simulate_clustered_propensities_vary_around_theta():
    # phi = 1: p_ui ~ Beta(theta, 1 - theta) has mean theta and variance theta (1 - theta) / 2
    sc = calibration.Scenario("big", 4, 20000, 0, model=None, tokens=2, phi=1.0)
    _, truth = calibration.simulate(sc, np.random.default_rng(0))
    theta, p = truth["theta"], truth["p"]
    ok = (theta > 0.05) & (theta < 0.95)
    assert ok.any()
    assert np.allclose(p.mean(0)[ok], theta[ok], atol=0.02)
    assert np.allclose(p.var(0)[ok], (theta * (1 - theta) / 2)[ok], rtol=0.1)


def test_token_dataset_holds_the_per_input_counts():
    from bayesactiv.stats.resampling import cluster_counts, event_clusters

    _, truth = calibration.simulate("varlen_phi1", np.random.default_rng(1))
    tokens = calibration.token_dataset(truth["input_count"], truth["input_events"])
    c, t = cluster_counts(tokens["fired"].values, event_clusters(tokens))
    assert (c == truth["input_count"]).all() and (t == truth["input_events"]).all()
    assert tokens.attrs["spatial"] == "token"
    with pytest.raises(ArgumentError, match="^input_count"):
        calibration.token_dataset(np.array([[3]]), np.array([2]))
    with pytest.raises(ArgumentError, match="^input_events"):
        calibration.token_dataset(np.array([[1]]), np.array([2, 2]))
