"""Tests of bayesactiv.bayes.ranking: compare_models by PSIS-LOO."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayesactiv as ba
from bayesactiv.bayes import models, ranking
from bayesactiv.data.checks import ArgumentError

KW = {"draws": 500, "tune": 500, "chains": 2}


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


@pytest.mark.slow
def test_compare_models_prefers_binomial_for_bernoulli_firing(windowed):
    ds, _ = windowed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        table = ba.compare_models(ds, seed=3, **KW)
    assert table.index[0] == "binomial_window"
    assert set(table.index) == {"gamma_poisson", "negative_binomial", "binomial_window"}
    assert set(table.attrs["pareto_k_max"]) == set(table.index)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"models": "gamma_poisson"}, "models"),
    ({"models": ("gamma_poisson",)}, "models"),
    ({"models": ("gamma_poisson", "gamma_poisson")}, "models"),
    ({"models": ("gamma_poisson", "beta_binomial")}, "models"),
    ({"models": ("gamma_poisson", "poisson")}, "models"),
    ({"tune": 0}, "tune"),
    ({"draws": -5}, "draws"),
    ({"seed": -1}, "seed"),
    ({"epsilon": 2.0}, "epsilon"),  # fine for the rate models, not for binomial_window
    ({"model": "gamma_poisson"}, "fit_kwargs"),
    ({"no_such_setting": 1}, "sampler_kwargs"),
    ({"group_by": ("colour",)}, "group_by"),
    ({"log": "stderr"}, "log"),
])
def test_compare_models_refuses_bad_arguments_before_fitting(windowed, monkeypatch, kwargs,
                                                             name):
    def never(*args, **kw):
        raise AssertionError("fitted although an argument was bad")

    monkeypatch.setattr(ranking, "fit", never)
    kwargs = {"models": ("gamma_poisson", "binomial_window"), **kwargs}
    with pytest.raises(ArgumentError, match=f"^{name}"):
        ba.compare_models(windowed[0], **kwargs)


def test_arviz_compare_agrees_with_compare_models(windowed):
    import arviz as az
    import pandas as pd

    ds, _ = windowed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        lines: list[str] = []
        table = ba.compare_models(ds, ("gamma_poisson", "binomial_window"), draws=300,
                                  tune=300, chains=2, seed=3, log=lines.append)
    # one line as each model's fit starts, one with its ELPD when its PSIS-LOO is done
    assert [line.split(":")[0] for line in lines] == ["[1/2] gamma_poisson"] * 2 + [
        "[2/2] binomial_window"] * 2
    for name, line in zip(table.attrs["loo"], lines[1::2], strict=True):
        assert f"elpd {float(table.attrs['loo'][name].elpd):.1f}, max Pareto k" in line
    fits = table.attrs["fits"]
    for name, f in fits.items():
        assert f.idata["log_likelihood"]["window_count"].dims == ("chain", "draw", "unit")
        np.testing.assert_array_equal(f.idata["observed_data"]["window_count"].values,
                                      ds["window_count"].values)
        assert az.loo(f.idata).elpd == table.attrs["loo"][name].elpd
    direct = az.compare({name: f.idata for name, f in fits.items()})
    pd.testing.assert_frame_equal(direct, table)
