"""Simulation-based calibration of the firing models, against the baselines.

Each simulated dataset draws the group parameters from the model's prior
(``mu ~ Beta(1, 1)`` or the scenario's ``mu_prior``, ``log kappa ~ Normal(log 10, 2.5)``), the units' firing probabilities
``theta_u ~ Beta(mu kappa, (1 - mu) kappa)`` and the counts ``count_u ~ Binomial(n, theta_u)``,
then fits :func:`bayesactiv.fit` and records

* SBC ranks (Talts et al. 2018) of the true ``mu``, ``log kappa`` and one unit's ``theta``
  among ``L`` thinned posterior draws: uniform on ``0..L`` when the inference is calibrated;
* whether each unit's equal-tailed 50% and 90% posterior interval covers its true theta;
* the same coverage for the Wald and Wilson intervals and the window-block bootstrap of
  :mod:`bayesactiv.stats.baselines`.

Scenarios (``SCENARIOS``): ``prior`` (n = 200 inputs, 40 units), ``few_inputs`` (n = 20),
``many_units`` (2,000 units) and ``rare`` (``mu ~ Beta(1, 300)`` in the simulation and
in the fit's prior, ``fit(..., mu_prior=(1, 300))``: firing probabilities mostly below 0.01).
The ``poisson`` scenario calibrates the ``gamma_poisson`` model the same way: ``log m ~
Normal(log 0.002, 0.5)`` (the fit's ``rate_prior``), ``log alpha ~ Normal(0, 2.5)``,
``lambda_u ~ Gamma(alpha, alpha / m)``, window counts ``~ Poisson(lambda_u W)``; its ranks are of
``log m``, ``log alpha`` and one unit's ``lambda``, and the binomial baselines do not apply.
Every scenario simulates from the prior the fit uses, so ranks and coverage are exact tests.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from bayesactiv.bayes.diagnostics import ConvergenceWarning
from bayesactiv.bayes.fitting import fit
from bayesactiv.data import make_dataset
from bayesactiv.data.checks import ArgumentError, check_choice, check_int
from bayesactiv.stats import baselines as frequentist

__all__ = ["SCENARIOS", "Scenario", "coverage_table", "rank_pvalues", "run", "scorable", "simulate"]


@dataclass(frozen=True)
class Scenario:
    """A design for simulated recordings: units per dataset, inputs per unit, mu cap."""

    name: str
    n_units: int
    n_inputs: int
    n_windows: int
    mu_prior: tuple[float, float] = (1.0, 1.0)
    model: str = "beta_binomial"
    rate_prior: tuple[float, float] = (math.log(0.1), 2.5)


SCENARIOS = {
    "prior": Scenario("prior", 40, 200, 10),
    "few_inputs": Scenario("few_inputs", 40, 20, 10),
    "many_units": Scenario("many_units", 2000, 200, 10),
    "rare": Scenario("rare", 40, 200, 10, mu_prior=(1.0, 300.0)),
    # gamma-Poisson: rates well below one event per input, so that Poisson window counts stay
    # below the window size (a recorded window cannot hold more events than inputs)
    "poisson": Scenario("poisson", 40, 1000, 20, model="gamma_poisson",
                        rate_prior=(math.log(0.002), 0.5)),
}


def simulate(scenario: Scenario | str, rng: np.random.Generator) -> tuple[xr.Dataset, dict]:
    """Simulate one activation dataset from the beta-binomial model's prior.

    Parameters
    ----------
    scenario : Scenario or str
        A design from :data:`SCENARIOS` or its name.
    rng : numpy.random.Generator

    Returns
    -------
    (xarray.Dataset, dict)
        The dataset (with ``window_count``) and the truth: ``mu``, ``kappa``, ``theta``.

    Raises
    ------
    ArgumentError
        An unknown scenario name, or ``rng`` not a numpy Generator.

    Examples
    --------
    >>> import numpy as np
    >>> ds, truth = simulate("few_inputs", np.random.default_rng(0))
    >>> int(ds["n"][0]), truth["theta"].shape
    (20, (40,))
    """
    sc = _scenario(scenario)
    if not isinstance(rng, np.random.Generator):
        raise ArgumentError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if sc.model == "gamma_poisson":
        return _simulate_poisson(sc, rng)
    mu = rng.beta(*sc.mu_prior)
    kappa = math.exp(rng.normal(math.log(10.0), 2.5))
    a, b = max(mu * kappa, 1e-300), max((1 - mu) * kappa, 1e-300)
    theta = rng.beta(a, b, size=sc.n_units)
    theta = np.nan_to_num(theta, nan=float(mu > 0.5))
    w = sc.n_inputs // sc.n_windows
    wc = rng.binomial(w, theta[None, :], size=(sc.n_windows, sc.n_units))
    ds = make_dataset(wc.sum(axis=0), sc.n_inputs, network="sim", layer="l",
                      window_count=wc, window_size=w)
    return ds, {"mu": mu, "kappa": kappa, "theta": theta}


def _scenario(scenario: Scenario | str) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    return SCENARIOS[check_choice(scenario, "scenario", SCENARIOS)]


def _simulate_poisson(sc: Scenario, rng: np.random.Generator) -> tuple[xr.Dataset, dict]:
    """Simulate from the gamma-Poisson model's prior (with ``sc.rate_prior`` on log m).

    A draw whose Poisson window counts exceed the window size cannot be an activation
    dataset; it is drawn again (at these rates that happens in well under 1% of draws).
    """
    w = sc.n_inputs // sc.n_windows
    while True:
        m = math.exp(rng.normal(*sc.rate_prior))
        alpha = math.exp(rng.normal(0.0, 2.5))
        lam = rng.gamma(alpha, m / alpha, size=sc.n_units)
        wc = rng.poisson(lam[None, :] * w, size=(sc.n_windows, sc.n_units))
        if (wc <= w).all():
            break
    ds = make_dataset(wc.sum(axis=0), sc.n_inputs, network="sim", layer="l",
                      window_count=wc, window_size=w)
    return ds, {"mu": math.log(m), "kappa": alpha, "theta": lam}


def _rank(draws: np.ndarray, truth: float, n_ranks: int) -> int:
    idx = np.linspace(0, draws.size - 1, n_ranks).round().astype(int)
    return int((draws[idx] < truth).sum())


def run(
    scenarios: Sequence[str] = ("prior", "few_inputs", "many_units", "rare", "poisson"),
    n_datasets: int = 100,
    *,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    n_ranks: int = 99,
    baselines: bool = True,
    n_resamples: int = 999,
    seed: int = 0,
) -> xr.Dataset:
    """Run simulation-based calibration; returns ranks and per-dataset coverage.

    Parameters
    ----------
    scenarios : sequence of str
        Names in :data:`SCENARIOS`.
    n_datasets : int
        Simulated datasets per scenario.
    draws, tune, chains : int
        Sampler settings of each fit.
    n_ranks : int
        Thinned posterior draws per rank statistic (ranks lie in ``0..n_ranks``).
    baselines : bool
        Also score the Wald, Wilson and bootstrap intervals.
    n_resamples : int
        Bootstrap resamples.
    seed : int

    Returns
    -------
    xarray.Dataset
        Dims ``(scenario, dataset)``: ranks ``rank_mu``, ``rank_log_kappa``, ``rank_theta``;
        ``cover_<method>_<level>`` (fraction of the dataset's units covered) for
        method in bayes, wald, wilson, bootstrap and level in 50, 90; ``divergences``.

    Raises
    ------
    ArgumentError
        A bad argument (named in the message), before anything is simulated.

    Examples
    --------
    >>> res = run(["few_inputs"], 2, draws=500, tune=500, n_resamples=200)
    >>> dict(res.sizes), res["scenario"].values.tolist()
    ({'scenario': 1, 'dataset': 2}, ['few_inputs'])
    >>> bool(((res["rank_mu"] >= 0) & (res["rank_mu"] <= res.attrs["n_ranks"])).all())
    True
    >>> sorted(v for v in res.data_vars if v.endswith("_90"))
    ['cover_bayes_90', 'cover_bootstrap_90', 'cover_wald_90', 'cover_wilson_90']
    >>> run(["few_inputs"], 0)
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: n_datasets: expected an integer >= 1, got 0 (int)
    """
    scenarios = _check_scenarios(scenarios)
    n_datasets = check_int(n_datasets, "n_datasets", minimum=1)
    draws = check_int(draws, "draws", minimum=1)
    tune = check_int(tune, "tune", minimum=1)  # the fits sample with nutpie
    chains = check_int(chains, "chains", minimum=1)
    n_ranks = check_int(n_ranks, "n_ranks", minimum=1)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    if not isinstance(baselines, bool | np.bool_):
        raise ArgumentError(f"baselines: expected True or False, got {baselines!r}")
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    methods = ["bayes"] + (["wald", "wilson", "bootstrap"] if baselines else [])
    shape = (len(scenarios), n_datasets)
    out = {f"cover_{m}_{lv}": np.full(shape, np.nan) for m in methods for lv in (50, 90)}
    for name in ("rank_mu", "rank_log_kappa", "rank_theta", "divergences"):
        out[name] = np.zeros(shape, dtype=np.int64)
    for i, sc_name in enumerate(scenarios):
        for j in range(n_datasets):
            ds, truth = simulate(sc_name, rng)
            sc = SCENARIOS[sc_name]
            rate = sc.model == "gamma_poisson"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                f = fit(ds, sc.model, draws=draws, tune=tune, chains=chains,
                        seed=int(rng.integers(2**31)), mu_prior=sc.mu_prior,
                        rate_prior=sc.rate_prior)
            post = f.idata["posterior"]
            # ranks of the group location (mu; rate models: log m) and spread (log kappa;
            # rate models: log alpha)
            loc = post["log_m" if rate else "mu"].values.ravel()
            spread = post["alpha" if rate else "kappa"].values.ravel()
            out["rank_mu"][i, j] = _rank(loc, truth["mu"], n_ranks)
            out["rank_log_kappa"][i, j] = _rank(np.log(spread), math.log(truth["kappa"]),
                                                n_ranks)
            # a unit whose true theta is not representable next to 0 or 1 (see scorable)
            # cannot be ranked or scored; pick among the others
            kept = np.flatnonzero(scorable(truth["theta"]))
            k = int(kept[rng.integers(kept.size)]) if kept.size else 0
            out["rank_theta"][i, j] = _rank(f.unit_draws([k]).values.ravel(),
                                            truth["theta"][k], n_ranks)
            out["divergences"][i, j] = f.diagnostics["divergences"]
            theta = truth["theta"]
            for lv in (50, 90):
                u = f.units(lv / 100)
                out[f"cover_bayes_{lv}"][i, j] = _covers(u, theta)
                if baselines and not rate:
                    for m in ("wald", "wilson"):
                        ci = frequentist.intervals(ds, m, confidence_level=lv / 100)
                        out[f"cover_{m}_{lv}"][i, j] = _covers(ci, theta)
                    bs = frequentist.bootstrap(ds, n_resamples=n_resamples,
                                               confidence_level=lv / 100,
                                               seed=int(rng.integers(2**31)))
                    out[f"cover_bootstrap_{lv}"][i, j] = _covers(bs, theta)
    res = xr.Dataset({k: (("scenario", "dataset"), v) for k, v in out.items()},
                     coords={"scenario": list(scenarios)})
    res.attrs.update(n_ranks=n_ranks, draws=draws, tune=tune, chains=chains, seed=seed)
    return res


def _check_scenarios(scenarios: Sequence[str]) -> list[str]:
    if isinstance(scenarios, str | bytes) or not hasattr(scenarios, "__iter__"):
        raise ArgumentError(f"scenarios: expected a sequence of names from {tuple(SCENARIOS)}, "
                            f"got {scenarios!r}")
    names = [check_choice(name, "scenarios", SCENARIOS) for name in scenarios]
    if not names:
        raise ArgumentError("scenarios: expected at least one scenario")
    if len(set(names)) != len(names):
        raise ArgumentError(f"scenarios: repeated names in {names}")
    return names


def scorable(theta: np.ndarray) -> np.ndarray:
    """Units whose true theta float64 can tell from 0 and 1.

    With a concentration kappa far below 1 the Beta draws pile up at 0 and 1: a truth of
    1 - 1e-20 is stored as 1.0 and lies above every interval that does not end at exactly 1,
    although in exact arithmetic it is covered at the nominal rate. Such truths (within 1e-12
    of 1, or below 1e-300) say nothing about the intervals and are left out of the scores.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesactiv.bayes.calibration import scorable
    >>> scorable(np.array([0.0, 0.5, 1 - 1e-20])).tolist()
    [False, True, False]
    """
    return (theta > 1e-300) & (1.0 - theta > 1e-12)


def _covers(ci: xr.Dataset, theta: np.ndarray) -> float:
    low, high = ci["low"].values, ci["high"].values
    ok = scorable(theta)
    if not ok.any():
        return float("nan")
    return float(((low <= theta) & (theta <= high))[ok].mean())


def rank_pvalues(res: xr.Dataset) -> xr.Dataset:
    """Chi-square p-values of rank uniformity (10 equal bins) per scenario and parameter.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ranks = np.arange(0, 100, 10)[None, :]  # one rank in each tenth of 0..99
    >>> res = xr.Dataset({name: (("scenario", "dataset"), ranks)
    ...                   for name in ("rank_mu", "rank_log_kappa", "rank_theta")},
    ...                  coords={"scenario": ["prior"]}, attrs={"n_ranks": 99})
    >>> pv = rank_pvalues(res)  # ranks spread evenly: no sign of miscalibration
    >>> sorted(pv.data_vars), pv["rank_mu"].values.tolist()
    (['rank_log_kappa', 'rank_mu', 'rank_theta'], [1.0])
    """
    from scipy import stats

    n_ranks = int(res.attrs["n_ranks"])
    out = {}
    for name in ("rank_mu", "rank_log_kappa", "rank_theta"):
        pv = []
        for sc in res["scenario"].values:
            r = res[name].sel(scenario=sc).values
            bins = np.minimum((r * 10) // (n_ranks + 1), 9)
            counts = np.bincount(bins, minlength=10)
            expected = np.full(10, r.size / 10)
            pv.append(stats.chisquare(counts, expected).pvalue)
        out[name] = ("scenario", np.array(pv))
    return xr.Dataset(out, coords={"scenario": res["scenario"].values})


def coverage_table(res: xr.Dataset) -> str:
    """A Markdown table: mean coverage (+- 2 standard errors over datasets) per method.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ranks = np.arange(0, 100, 10)[None, :]  # one rank in each tenth of 0..99
    >>> res = xr.Dataset({name: (("scenario", "dataset"), ranks)
    ...                   for name in ("rank_mu", "rank_log_kappa", "rank_theta")},
    ...                  coords={"scenario": ["prior"]}, attrs={"n_ranks": 99})
    >>> res["cover_bayes_50"] = ("scenario", "dataset"), np.full((1, 10), 0.5)
    >>> res["cover_bayes_90"] = ("scenario", "dataset"), np.full((1, 10), 0.9)
    >>> print(coverage_table(res))
    | scenario | bayes 50% | bayes 90% | SBC p (mu, log kappa, theta) |
    |---|---|---|---|
    | prior | 0.500 ± 0.000 | 0.900 ± 0.000 | 1.00, 1.00, 1.00 |
    """
    methods = [m for m in ("bayes", "wald", "wilson", "bootstrap") if f"cover_{m}_50" in res]
    pv = rank_pvalues(res)
    head = "| scenario | " + " | ".join(f"{m} 50% | {m} 90%" for m in methods) + \
        " | SBC p (mu, log kappa, theta) |"
    lines = [head, "|" + "---|" * (2 * len(methods) + 2)]
    for sc in res["scenario"].values:
        cells = []
        for m in methods:
            for lv in (50, 90):
                v = res[f"cover_{m}_{lv}"].sel(scenario=sc).values
                v = v[np.isfinite(v)]
                if v.size == 0:
                    cells.append("–")
                    continue
                se = v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else float("nan")
                cells.append(f"{v.mean():.3f} ± {2 * se:.3f}")
        p = ", ".join(f"{float(pv[n].sel(scenario=sc)):.2f}"
                      for n in ("rank_mu", "rank_log_kappa", "rank_theta"))
        lines.append(f"| {sc} | " + " | ".join(cells) + f" | {p} |")
    return "\n".join(lines)
