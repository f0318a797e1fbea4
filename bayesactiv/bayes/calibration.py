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

Clustered scenarios (``CLUSTERED``; events that come in clusters, as the tokens of a
sequence): the group parameters and ``theta_u`` are drawn as above; each input ``i``
gives unit ``u`` a propensity ``p_ui ~ Beta(theta_u phi, (1 - theta_u) phi)``
(``phi=None``: ``p_ui = theta_u``, independent tokens), input ``i`` holds ``t_i`` tokens
(``tokens`` each, or uniform on ``1 .. 2 tokens`` with ``variable_lengths``) and
``c_ui ~ Binomial(t_i, p_ui)``; the dataset is :func:`bayesactiv.data.from_input_counts`.
``theta_u``, the population firing probability per token, is what every interval is
scored against. Scored per dataset: the posterior of :func:`bayesactiv.fit` with its
default model (``clustered_beta_binomial``; ``bayes``), the token-level
``beta_binomial`` fit that treats every token as an independent trial (``naive``, for
contrast), and the percentile intervals of :func:`bayesactiv.stats.baselines.bootstrap`
on the tokens' ``fired`` with their ``input`` coordinate, which resamples whole inputs
(``bootstrap``). The SBC ranks are those of the clustered fit: its likelihood is a
design-effect quasi-likelihood, so they are a check of the approximation, not an exact
test. Scenarios (40 units, 150 inputs unless named): ``tokens32_phi1``,
``tokens8_phi0.5``, ``tokens128_phi3``, ``tokens32_phi10``, ``tokens32_indep``
(``phi=None``), ``tokens1_phi1`` (one token per input: a dense layer, exactly),
``varlen_phi1`` (1 to 64 tokens), ``rare_tokens32_phi1`` (``mu ~ Beta(1, 300)``, in the fit's
prior too) and ``few_inputs_tokens32_phi1`` (20 inputs).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from bayesactiv.bayes.diagnostics import ConvergenceWarning
from bayesactiv.bayes.fitting import ClusteredEventsWarning, fit
from bayesactiv.data import from_input_counts, make_dataset
from bayesactiv.data.checks import ArgumentError, check_choice, check_int
from bayesactiv.stats import baselines as frequentist

__all__ = ["CLUSTERED", "DENSE", "SCENARIOS", "Scenario", "coverage_table", "rank_pvalues", "run",
           "scorable", "simulate", "token_dataset"]


@dataclass(frozen=True)
class Scenario:
    """A design for simulated recordings.

    ``n_units`` units per dataset, ``n_inputs`` inputs, ``n_windows`` windows (dense
    scenarios), the fit's ``mu_prior``, ``model`` (None: :func:`bayesactiv.fit`'s default)
    and ``rate_prior``. Clustered scenarios set ``tokens`` (tokens per input; with
    ``variable_lengths`` the lengths are uniform on ``1 .. 2 tokens``) and ``phi`` (the
    concentration of the per-input propensities; None: tokens fire independently).
    """

    name: str
    n_units: int
    n_inputs: int
    n_windows: int
    mu_prior: tuple[float, float] = (1.0, 1.0)
    model: str | None = "beta_binomial"
    rate_prior: tuple[float, float] = (math.log(0.1), 2.5)
    tokens: int | None = None
    phi: float | None = None
    variable_lengths: bool = False

    @property
    def clustered(self) -> bool:
        """Whether the scenario simulates tokens in inputs (``tokens`` set)."""
        return self.tokens is not None


def _clustered_scenario(name: str, tokens: int, phi: float | None, *, n_inputs: int = 150,
                        mu_prior: tuple[float, float] = (1.0, 1.0),
                        variable_lengths: bool = False) -> Scenario:
    return Scenario(name, 40, n_inputs, 0, mu_prior=mu_prior, model=None, tokens=tokens,
                    phi=phi, variable_lengths=variable_lengths)


SCENARIOS = {
    "prior": Scenario("prior", 40, 200, 10),
    "few_inputs": Scenario("few_inputs", 40, 20, 10),
    "many_units": Scenario("many_units", 2000, 200, 10),
    "rare": Scenario("rare", 40, 200, 10, mu_prior=(1.0, 300.0)),
    # gamma-Poisson: rates well below one event per input, so that Poisson window counts stay
    # below the window size (a recorded window cannot hold more events than inputs)
    "poisson": Scenario("poisson", 40, 1000, 20, model="gamma_poisson",
                        rate_prior=(math.log(0.002), 0.5)),
    # clustered events: tokens of an input share a propensity p_ui ~ Beta(theta phi, (1-theta) phi)
    "tokens32_phi1": _clustered_scenario("tokens32_phi1", 32, 1.0),
    "tokens8_phi0.5": _clustered_scenario("tokens8_phi0.5", 8, 0.5),
    "tokens128_phi3": _clustered_scenario("tokens128_phi3", 128, 3.0),
    "tokens32_phi10": _clustered_scenario("tokens32_phi10", 32, 10.0),
    "tokens32_indep": _clustered_scenario("tokens32_indep", 32, None),
    "tokens1_phi1": _clustered_scenario("tokens1_phi1", 1, 1.0),
    "varlen_phi1": _clustered_scenario("varlen_phi1", 32, 1.0, variable_lengths=True),
    "rare_tokens32_phi1": _clustered_scenario("rare_tokens32_phi1", 32, 1.0,
                                              mu_prior=(1.0, 300.0)),
    "few_inputs_tokens32_phi1": _clustered_scenario("few_inputs_tokens32_phi1", 32, 1.0,
                                                    n_inputs=20),
}
DENSE = tuple(name for name, sc in SCENARIOS.items() if not sc.clustered)
CLUSTERED = tuple(name for name, sc in SCENARIOS.items() if sc.clustered)


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
        Clustered scenarios: the dataset of :func:`bayesactiv.data.from_input_counts`
        (``count``, ``n`` and the ``cluster_*`` statistics), and the truth holds also the
        per-input propensities ``p`` (input, unit) and the data they gave:
        ``input_count`` (input, unit) and ``input_events`` (input,); see
        :func:`token_dataset`.

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
    >>> ds, truth = simulate("tokens8_phi0.5", np.random.default_rng(0))
    >>> int(ds["n"][0]), int(ds["cluster_n"][0]), truth["input_count"].shape
    (1200, 150, (150, 40))
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
    if sc.clustered:
        return _simulate_clustered(sc, rng, mu, kappa, theta)
    w = sc.n_inputs // sc.n_windows
    wc = rng.binomial(w, theta[None, :], size=(sc.n_windows, sc.n_units))
    ds = make_dataset(wc.sum(axis=0), sc.n_inputs, network="sim", layer="l",
                      window_count=wc, window_size=w)
    return ds, {"mu": mu, "kappa": kappa, "theta": theta}


def _scenario(scenario: Scenario | str) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    return SCENARIOS[check_choice(scenario, "scenario", SCENARIOS)]


def _simulate_clustered(sc: Scenario, rng: np.random.Generator, mu: float, kappa: float,
                        theta: np.ndarray) -> tuple[xr.Dataset, dict]:
    """Tokens in inputs: per-input propensities around theta, binomial token counts."""
    if sc.variable_lengths:
        events = rng.integers(1, 2 * sc.tokens + 1, size=sc.n_inputs)
    else:
        events = np.full(sc.n_inputs, sc.tokens, dtype=np.int64)
    shape = (sc.n_inputs, sc.n_units)
    if sc.phi is None:
        p = np.broadcast_to(theta, shape).copy()
    else:
        a = np.maximum(theta * sc.phi, 1e-300)
        b = np.maximum((1 - theta) * sc.phi, 1e-300)
        p = rng.beta(a, b, size=shape)
        p = np.where(np.isnan(p), (theta > 0.5).astype(float), p)
    counts = rng.binomial(events[:, None], p)
    ds = from_input_counts(counts, events, network="sim", layer="l")
    return ds, {"mu": mu, "kappa": kappa, "theta": theta, "p": p, "input_count": counts,
                "input_events": events}


def token_dataset(input_count: np.ndarray, input_events: np.ndarray) -> xr.Dataset:
    """The tokens behind per-input counts, as raw events: ``fired`` with its ``input``.

    Input ``i`` contributes ``input_events[i]`` events (``sample``), of which the first
    ``input_count[i, u]`` fired for unit ``u`` (the order of the tokens within an input
    does not matter to any statistic of whole inputs). ``attrs["spatial"]`` is
    ``"token"``, so :func:`bayesactiv.stats.baselines.bootstrap` resamples whole inputs.

    Parameters
    ----------
    input_count : numpy.ndarray of int, shape (input, unit)
    input_events : numpy.ndarray of int, shape (input,)

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    ArgumentError
        Shapes that disagree, or a count above its input's events.

    Examples
    --------
    >>> import numpy as np
    >>> ds = token_dataset(np.array([[2, 0], [1, 1]]), np.array([3, 1]))
    >>> ds["fired"].values.astype(int).T.tolist(), ds["input"].values.tolist()
    ([[1, 1, 0, 1], [0, 0, 0, 1]], [0, 0, 0, 1])
    """
    c = np.asarray(input_count, dtype=np.int64)
    t = np.asarray(input_events, dtype=np.int64)
    if c.ndim != 2 or t.shape != (c.shape[0],):
        raise ArgumentError(f"input_events: expected shape ({c.shape[0] if c.ndim else '?'},) "
                            f"beside input_count {c.shape} (input, unit), got {t.shape}")
    if (c < 0).any() or (c > t[:, None]).any():
        raise ArgumentError("input_count: expected counts between 0 and the input's events")
    inputs = np.repeat(np.arange(t.size), t)
    position = np.arange(inputs.size) - np.repeat(np.cumsum(t) - t, t)
    fired = position[:, None] < c[inputs]
    ds = make_dataset(fired.sum(axis=0), inputs.size, network="sim", layer="l", fired=fired,
                      attrs={"spatial": "token"})
    return ds.assign_coords(input=("sample", inputs))


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
        Also score the Wald, Wilson and bootstrap intervals (clustered scenarios: the
        bootstrap over whole inputs, and the naive token-level ``beta_binomial`` posterior;
        Wald and Wilson are not scored there).
    n_resamples : int
        Bootstrap resamples.
    seed : int

    Returns
    -------
    xarray.Dataset
        Dims ``(scenario, dataset)``: ranks ``rank_mu``, ``rank_log_kappa``, ``rank_theta``;
        ``cover_<method>_<level>`` (fraction of the dataset's units covered) for
        method in bayes, wald, wilson, bootstrap (and naive when a clustered scenario
        is run) and level in 50, 90 (NaN where a method does not apply); ``divergences``.
        Each scenario's numbers depend on the scenarios run before it (one random stream).

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
    if baselines and any(SCENARIOS[name].clustered for name in scenarios):
        methods.append("naive")
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
            if sc.clustered:
                for lv in (50, 90):
                    out[f"cover_bayes_{lv}"][i, j] = _covers(f.units(lv / 100), theta)
                if baselines:
                    _score_clustered(out, (i, j), ds, truth, rng, draws=draws, tune=tune,
                                     chains=chains, mu_prior=sc.mu_prior,
                                     n_resamples=n_resamples)
                continue
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


def _score_clustered(out: dict, at: tuple[int, int], ds: xr.Dataset, truth: dict,
                     rng: np.random.Generator, *, draws: int, tune: int, chains: int,
                     mu_prior: tuple[float, float], n_resamples: int) -> None:
    """The naive token-level posterior and the bootstrap over inputs, on one clustered dataset."""
    theta = truth["theta"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ClusteredEventsWarning)
        naive = fit(ds, "beta_binomial", draws=draws, tune=tune, chains=chains,
                    seed=int(rng.integers(2**31)), mu_prior=mu_prior)
    tokens = token_dataset(truth["input_count"], truth["input_events"])
    for lv in (50, 90):
        out[f"cover_naive_{lv}"][at] = _covers(naive.units(lv / 100), theta)
        bs = frequentist.bootstrap(tokens, n_resamples=n_resamples, confidence_level=lv / 100,
                                   seed=int(rng.integers(2**31)))
        out[f"cover_bootstrap_{lv}"][at] = _covers(bs, theta)


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

    One row per scenario; ``bayes`` is :func:`bayesactiv.fit` with its default model (the
    clustered one on clustered scenarios), ``naive`` the token-level ``beta_binomial``
    (clustered scenarios only), ``bootstrap`` the percentile bootstrap (over windows on
    dense scenarios, over whole inputs on clustered ones); "–" where a method does not
    apply.

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
    # a method scored in none of the scenarios (naive on dense ones) gets no column
    methods = [m for m in ("bayes", "naive", "wald", "wilson", "bootstrap")
               if f"cover_{m}_50" in res and np.isfinite(res[f"cover_{m}_50"].values).any()]
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
