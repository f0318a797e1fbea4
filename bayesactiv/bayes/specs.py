"""The four firing models: their structures, priors and group-level parameters.

Four statistical models of the firing of units ``u`` in groups ``g`` (by default one
group per network x layer):

``beta_binomial`` (firing probability, from ``count``/``n``)::

    count_u ~ Binomial(n_u, theta_u)
    theta_u ~ Beta(mu_g kappa_g, (1 - mu_g) kappa_g)
    mu_g ~ Beta(1, 1)                        (uniform over the mean firing probability)
    log kappa_g ~ Normal(log 10, 2.5)        (95%: kappa in [0.07, 1340])

``clustered_beta_binomial`` (events in clusters: tokens of an input, positions of a
feature map; from ``count``/``n`` and the ``cluster_*`` statistics)::

    count_u / d_u ~ Binomial(n_u / d_u, theta_u)      (a quasi-likelihood; d_u >= 1)
    theta_u ~ Beta(mu_g kappa_g, (1 - mu_g) kappa_g),  mu_g, kappa_g as above

``theta_u`` is the population firing probability per event: over inputs drawn like the
recorded ones, the expected fraction of a unit's events in which it fires. Events of
one input share its context, so a unit's propensity varies from input to input (for
example ``p_ui ~ Beta(theta_u phi, (1 - theta_u) phi)`` with tokens firing independently
given ``p_ui``), and ``n_u`` tokens carry the information of ``n_u / d_u`` independent
events. ``d_u`` is the unit's design effect (Rao and Scott 1992, "A simple method for the
analysis of clustered binary data"): the cluster-robust variance of its count over the
binomial one, from the streamed per-input sums, pooled towards its layer's when the unit
fired in few inputs (:func:`bayesactiv.bayes.sufficient.design_effects`). The count and the
trials are divided by ``d_u``, so the conjugate machinery below applies unchanged and the
posterior of ``theta_u`` has the cluster-robust (sandwich) variance. With one event per
input (dense layers) every ``d_u`` is 1 and the model is ``beta_binomial`` exactly. Why
this model and not a beta-binomial over inputs nested in the layer's Beta: that one
needs every unit's histogram of per-input counts in the sampler (O(units x inputs) per
gradient, and a per-unit quadrature for theta_u), while the design effect needs five
sums per unit and keeps 10^5 units in seconds; the simulation-based calibration
(``benchmarks/calibration.py``, clustered scenarios) shows its intervals cover theta_u at
their nominal rate from phi = 0.5 to independence. Its model-implied Fano factor of a
unit's per-input counts is ``(1 - theta_u) d_u`` (the plug-in per-input Fano factor,
:func:`bayesactiv.stats.spikes.cluster_fano`, estimates the same).

``binomial_window`` (at most one event per input, from ``window_count``)::

    y_uw ~ Binomial(W, theta_u),  theta_u ~ Beta(mu_g kappa_g, (1 - mu_g) kappa_g)

``gamma_poisson`` (seed 002's Poisson process, from ``window_count``)::

    y_uw ~ Poisson(lambda_u W)
    lambda_u ~ Gamma(alpha_g, beta_g)        (shape alpha_g, rate beta_g; mean m_g = alpha_g / beta_g)
    log m_g ~ Normal(log 0.1, 2.5)           (events per input; 95%: [7e-4, 13])
    log alpha_g ~ Normal(0, 2.5)             (alpha << 1: many near-silent units; >> 1: alike)

``negative_binomial`` (over-dispersed windows, from ``window_count``)::

    y_uw ~ NegativeBinomial(mean lambda_u W, dispersion phi_g),  lambda_u ~ Gamma(alpha_g, beta_g)
    log phi_g ~ Normal(log 10, 2.5)          (phi -> infinity recovers the Poisson model)

Why these priors: ``kappa`` is the prior "number of inputs" of the unit-level Beta. A
concentration far below 1 puts the units at 0 and 1 (dead and saturated units, a bimodal
layer); a large one makes the units of a layer alike. ``log kappa ~ Normal(log 10, 2.5)``
covers both (kappa = 0.01 and kappa = 10^4 are 2.8 sd out) while keeping the sampler away from
the numerically empty extremes. The same reasoning applies to ``alpha`` (the Gamma shape) and
``phi``. With ``pool_layers=True`` the group locations are pooled within each network,
``logit mu_g ~ Normal(M_net, S_net)`` (rate models: ``log m_g``), ``M_net ~ Normal(0, 1.5)``
(rate models: ``Normal(log 0.1, 2.5)``), ``S_net ~ HalfNormal(1)``, non-centred.

Inference that scales: with ``method="marginal"`` (the default) the unit-level parameter is
integrated out in closed form (beta-binomial and Gamma-Poisson marginals; for the negative
binomial by 24-point Gauss-Hermite quadrature over log lambda), the data are compressed to the
distinct (group, sufficient statistic) pairs with multiplicities, and the sampler sees only the
group parameters. The beta-binomial marginals (``beta_binomial``, ``binomial_window``) are
evaluated in exact tail-sum form: ``sum_u lgamma(a + c_u) - lgamma(a) = sum_k T_k log(a + k)``
with ``T_k`` the number of units with ``c_u > k`` (likewise for ``b`` and ``a + b``), runs of
constant ``T`` longer than 8 taken as lgamma differences: cheap logs instead of lgamma and
digamma per distinct pair (about 10x less per gradient evaluation, ``benchmarks/fit.py``). Per-unit posteriors are recovered exactly by conjugacy, e.g.
``theta_u | mu, kappa, data ~ Beta(mu kappa + c_u, (1 - mu) kappa + n_u - c_u)``, and per-unit
summaries are mixtures over posterior draws computed once per distinct pair. ``method="full"``
samples the unit-level parameters explicitly (for checking, and for small data).

Intervals are **equal-tailed** (ETI): the ``(1 - prob) / 2`` and ``(1 + prob) / 2`` posterior
quantiles, for units and for groups alike.
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["COUNT_MODELS", "GROUP_PARAMS", "MODELS", "RATE_MODELS", "group_params", "structure_of"]

MODELS = ("beta_binomial", "clustered_beta_binomial", "gamma_poisson", "negative_binomial",
          "binomial_window")
# models of count / n, whose unit parameter is the firing probability per event
COUNT_MODELS = ("beta_binomial", "clustered_beta_binomial")
RATE_MODELS = ("gamma_poisson", "negative_binomial")
# posterior variables with one value per group (they get the ``group`` dimension)
GROUP_PARAMS = ("mu", "kappa", "log_kappa", "alpha", "beta", "phi", "log_alpha", "log_m",
                "log_phi", "z_group")


def structure_of(model: str) -> str:
    """The likelihood structure of a model: ``"beta"``, ``"gamma"`` or ``"nb"``.

    Examples
    --------
    >>> structure_of("binomial_window"), structure_of("negative_binomial")
    ('beta', 'nb')
    """
    return {"beta_binomial": "beta", "clustered_beta_binomial": "beta",
            "binomial_window": "beta", "gamma_poisson": "gamma", "negative_binomial": "nb"}[model]


def group_params(structure: str, n_groups: int, net_idx: Any, n_networks: int, pool: bool,
                 mu_prior: tuple[float, float] = (1.0, 1.0)):
    """Declare the group-level parameters inside the current PyMC model.

    ``mu_prior`` is the prior of the group location: Beta(a, b) of mu for the probability
    models, Normal(mean, sd) of log m for the rate models.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if pool:
        loc0, loc_sd = (0.0, 1.5) if structure.startswith("beta") else (math.log(0.1), 2.5)
        m_net = pm.Normal("M_network", loc0, loc_sd, shape=n_networks)
        s_net = pm.HalfNormal("S_network", 1.0, shape=n_networks)
        z = pm.Normal("z_group", 0.0, 1.0, shape=n_groups)
        loc = m_net[net_idx] + s_net[net_idx] * z
    if structure.startswith("beta"):
        if pool:
            mu = pm.Deterministic("mu", pt.sigmoid(loc))
        else:
            mu = pm.Beta("mu", mu_prior[0], mu_prior[1], shape=n_groups)
        log_kappa = pm.Normal("log_kappa", math.log(10.0), 2.5, shape=n_groups)
        kappa = pm.Deterministic("kappa", pt.exp(log_kappa))
        return {"a": mu * kappa, "b": (1.0 - mu) * kappa}
    log_m = pm.Deterministic("log_m", loc) if pool else pm.Normal(
        "log_m", mu_prior[0], mu_prior[1], shape=n_groups)
    log_alpha = pm.Normal("log_alpha", 0.0, 2.5, shape=n_groups)
    alpha = pm.Deterministic("alpha", pt.exp(log_alpha))
    beta = pm.Deterministic("beta", pt.exp(log_alpha - log_m))
    out = {"alpha": alpha, "beta": beta}
    if structure.startswith("nb"):
        log_phi = pm.Normal("log_phi", math.log(10.0), 2.5, shape=n_groups)
        out["phi"] = pm.Deterministic("phi", pt.exp(log_phi))
    return out
