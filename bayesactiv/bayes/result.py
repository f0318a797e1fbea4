"""The fit object: a thin view of a fitted firing model's posterior.

The computations behind its methods live in :mod:`bayesactiv.bayes.summaries` (group and unit
summaries), :mod:`bayesactiv.bayes.diagnostics` and :mod:`bayesactiv.bayes.arviz_groups`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from bayesactiv.bayes.arviz_groups import add_data_groups, flat_draws
from bayesactiv.bayes.diagnostics import diagnose
from bayesactiv.bayes.likelihood import observed_name
from bayesactiv.bayes.specs import RATE_MODELS
from bayesactiv.bayes.sufficient import Groups, Stats, layer_design_effects
from bayesactiv.bayes.summaries import (
    clustered_fano_draws,
    draw_unit_parameters,
    full_group_averages,
    group_dataset,
    group_intervals,
    marginal_group_averages,
    unit_dataset,
    unit_estimates,
    unit_positions,
)
from bayesactiv.data.checks import check_int, check_prob

__all__ = ["FiringFit"]


class FiringFit:
    """The posterior of a firing model fitted to an activation dataset.

    Built by :func:`fit`; do not construct directly.

    Attributes
    ----------
    idata : xarray.DataTree
        The ArviZ view of the fit: what the sampler returned (``posterior``,
        ``sample_stats``, ``warmup_*``; the group-level variables carry a ``group``
        dimension), ``observed_data``, ``constant_data`` and ``log_likelihood`` (per unit,
        computed when first read), so ``az.loo(fit.idata)`` and ``az.plot_*`` work on it.
    ds : xarray.Dataset
        The activation dataset fitted.
    model : str
        The statistical model's name.
    method : str
        ``"marginal"`` or ``"full"``.
    group_by : tuple of str
        The unit coordinates that define the groups.
    epsilon : float
        Firing threshold below which a unit counts as dead.
    diagnostics : dict
        ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, ``ok`` and the
        per-parameter values (``rhat``, ``ess_bulk``, ``ess_tail`` as xr.Datasets).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
    >>> f.model, f.method, f.group_by
    ('beta_binomial', 'marginal', ('network', 'layer'))
    >>> bool(f.diagnostics["ok"]), f.diagnostics["divergences"]
    (True, 0)
    >>> sorted(f.idata.children)  # doctest: +NORMALIZE_WHITESPACE
    ['constant_data', 'log_likelihood', 'observed_data', 'posterior', 'sample_stats',
     'warmup_posterior', 'warmup_sample_stats']
    """

    def __init__(self, *, idata: xr.DataTree, ds: xr.Dataset, model: str, method: str,
                 group_by: tuple[str, ...], groups: Groups, stats: Stats, epsilon: float,
                 seed: int | None, pool_layers: bool):
        self.idata = idata
        self.ds = ds
        self.model = model
        self.method = method
        self.group_by = group_by
        self.epsilon = float(epsilon)
        self.pool_layers = pool_layers
        self._groups = groups
        self._stats = stats
        self._seed = seed
        self._group_draws: xr.Dataset | None = None
        self._units: dict[float, xr.Dataset] = {}
        self.diagnostics = diagnose(idata, self.param_names, model)

    # ---------------------------------------------------------------- basics

    @property
    def is_rate(self) -> bool:
        """Whether the unit-level parameter is a rate (events per input), not a probability."""
        return self.model in RATE_MODELS

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the group-level parameters in :meth:`group_draws`."""
        if self.is_rate:
            return ("alpha", "beta", "phi") if self.model == "negative_binomial" else ("alpha", "beta")
        return ("mu", "kappa")

    @property
    def _unit_name(self) -> str:
        return "lam" if self.is_rate else "theta"

    def _posterior(self) -> xr.Dataset:
        return self.idata["posterior"].to_dataset()

    def _flat(self, name: str) -> np.ndarray:
        """Posterior draws of a group-level parameter as (group, S)."""
        return flat_draws(self._posterior(), name)

    def _draw_params(self) -> dict[str, np.ndarray]:
        if self._stats.kind == "beta":
            mu, kappa = self._flat("mu"), self._flat("kappa")
            return {"a": mu * kappa, "b": (1 - mu) * kappa}
        return {"alpha": self._flat("alpha"), "beta": self._flat("beta")}

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng(None if self._seed is None else [self._seed, salt])

    # ---------------------------------------------------------------- group level

    def group_draws(self) -> xr.Dataset:
        """Posterior draws of the group-level parameters and derived quantities.

        Returns
        -------
        xarray.Dataset
            Dims ``(chain, draw, group)``. Variables ``mu``, ``kappa`` (probability models) or
            ``alpha``, ``beta`` (and ``phi`` for the negative binomial) (rate models), and:

            * ``mfr`` - mean firing rate: per draw, the mean over the group's units of the
              unit parameter theta_u (or lambda_u) drawn from its conditional posterior given
              the group parameters and the unit's data. In the marginal method the group
              average is drawn from the Beta (rate models: Gamma) matching its exact
              conditional mean and variance (the units are independent given the group
              parameters; exact for a group of one unit, and close to the exact, nearly
              normal, sum of many units). For ``clustered_beta_binomial`` the draws are
              then spread about their mean by ``sqrt(R_g)``, the layer design effect
              (:func:`bayesactiv.bayes.sufficient.layer_design_effects`): one input moves
              many units of a layer together, which the units' own posteriors do not see.
            * ``mf`` - mean over units of the model-implied Fano factor of window counts:
              ``1 - theta_u`` for the binomial models, ``1`` for the Poisson,
              ``1 + lambda_u W / phi`` for the negative binomial; for
              ``clustered_beta_binomial``, of the per-input counts (a window is one input):
              ``(1 - theta_u) d_u``, ``d_u`` the unit's design effect.
            * ``frac_dead`` - per draw, the fraction of the group's units whose theta_u
              (lambda_u) is below ``epsilon`` (drawn exactly: units sharing a statistic are a
              binomial draw; statistics whose P(theta_u < epsilon) is below 1e-12 in every
              draw count as alive, above 1 - 1e-12 as dead).

            Coordinates on ``group``: ``group`` (label such as ``"net/layer"``) and one per
            ``group_by`` key.

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> gd = f.group_draws()
        >>> gd["mu"].dims
        ('chain', 'draw', 'group')
        >>> dict(gd.sizes), gd["group"].values.tolist()
        ({'chain': 2, 'draw': 2000, 'group': 1}, ['net/fc1'])
        >>> sorted(gd.data_vars)
        ['frac_dead', 'kappa', 'mf', 'mfr', 'mu']
        """
        if self._group_draws is not None:
            return self._group_draws
        post = self._posterior()
        n_groups = len(self._groups.labels)
        rng = self._rng(1)
        clustered = self.model == "clustered_beta_binomial"
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        if self.method == "marginal":
            n_units = np.bincount(self._groups.index, minlength=n_groups).astype(float)
            # the clustered model's MF needs d-weighted sums of the same conditional moments
            weighted = ((np.zeros((n_groups, n_chain * n_draw)),
                         np.zeros((n_groups, n_chain * n_draw))) if clustered else None)
            mfr, frac = marginal_group_averages(self._stats, self._draw_params(), n_units,
                                                self.epsilon, rng, n_chain, n_draw, weighted)
        else:
            unit_draws = post[self._unit_name].transpose("chain", "draw", "unit").values
            mfr, frac = full_group_averages(unit_draws, self._groups.index, n_groups,
                                            self.epsilon)
        mf = None
        if clustered:
            # units of a layer move together from input to input: widen the layer's MFR
            # around its posterior mean by the layer design effect (1 without layer sums)
            spread = np.sqrt(layer_design_effects(self.ds, self._groups.index))
            center = mfr.mean(axis=(0, 1), keepdims=True)
            mfr = center + spread * (mfr - center)
            if self.method == "marginal":
                mf = clustered_fano_draws(self._stats, weighted, self._groups.index, n_groups,
                                          self._rng(3), n_chain, n_draw)
            else:
                d = self._stats.design_effect
                mf, _ = full_group_averages((1 - unit_draws) * d, self._groups.index, n_groups,
                                            self.epsilon)
        self._group_draws = group_dataset(post, self._groups, self.param_names, self.model,
                                          self._stats.window, self.epsilon, self.is_rate,
                                          mfr, frac, mf)
        return self._group_draws

    def groups(self, prob: float = 0.9) -> xr.Dataset:
        """Per-group posterior means and equal-tailed intervals.

        Parameters
        ----------
        prob : float
            Probability mass of the equal-tailed interval.

        Returns
        -------
        xarray.Dataset
            Dim ``group`` with ``<q>_mean``, ``<q>_low``, ``<q>_high`` for q in the group
            parameters (``mu``, ``kappa`` or ``alpha``, ``beta``[, ``phi``]) and ``mfr``,
            ``mf``, ``frac_dead``; plus ``n_units``; coords ``group`` and the group_by keys.

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> g = f.groups(0.9)
        >>> g["group"].values.tolist(), g["n_units"].values.tolist()
        (['net/fc1'], [8])
        >>> low, mean, high = (g[f"mfr_{s}"].item() for s in ("low", "mean", "high"))
        >>> bool(low < mean < high), bool(0.15 < mean < 0.35)  # 45 of 160 events fired
        (True, True)
        """
        prob = check_prob(prob)
        return group_intervals(self.group_draws(), self._groups, prob, self.model, self.epsilon)

    # ---------------------------------------------------------------- unit level

    def units(self, prob: float = 0.9) -> xr.Dataset:
        """Per-unit posterior mean, equal-tailed interval and probability of being dead.

        In the marginal method each unit's posterior is the mixture over posterior draws of
        its conjugate conditional (Beta or Gamma); its quantiles are solved once per distinct
        (group, statistic) pair by safeguarded Newton iteration on the mixture CDF, so the
        cost is O(distinct pairs x draws), not O(units x draws). The posterior mean and
        ``p_dead`` use every draw; the quantiles use ``min(draws, max(256, 250,000 / pairs))``
        evenly thinned draws (all of them for small data; their error from thinning is far
        below 1e-3, see ``benchmarks/fit.py``). For ``negative_binomial``
        the per-unit conditional used is Gamma(alpha + S_u, beta + K_u W), the Poisson
        conjugate: exact only as phi -> infinity, an approximation otherwise (the same holds for
        its ``mfr`` and ``frac_dead`` draws).

        Parameters
        ----------
        prob : float
            Probability mass of the equal-tailed interval.

        Returns
        -------
        xarray.Dataset
            Indexed by ``unit`` with the unit coordinates: ``mean``, ``low``, ``high`` of
            theta_u (probability models) or lambda_u (rate models, events per input),
            ``p_dead`` = P(theta_u < epsilon | data) (values below 1e-12 in every draw are
            reported as 0), and the data ``count``, ``n``; for ``clustered_beta_binomial``
            also ``design_effect`` (each unit's ``d_u``: its ``n`` events carry the
            information of ``n / d_u`` independent ones).

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> u = f.units(0.9)
        >>> u["unit"].values.tolist()[:3], u["count"].values.tolist()[:3]
        (['net/fc1/0', 'net/fc1/1', 'net/fc1/2'], [0, 2, 3])
        >>> bool(((u["low"] < u["mean"]) & (u["mean"] < u["high"])).all())
        True
        >>> int(u["p_dead"].values.argmax())  # the unit that never fired
        0
        """
        prob = check_prob(prob)
        if prob in self._units:
            return self._units[prob]
        qs = [(1 - prob) / 2, (1 + prob) / 2]
        per_unit = unit_estimates(
            self.method, self._stats, self._draw_params,
            lambda: self._posterior()[self._unit_name].transpose("unit", "chain", "draw").values,
            qs, self.epsilon)
        out = unit_dataset(self.ds, self._groups, per_unit)
        if self.model == "clustered_beta_binomial":
            out["design_effect"] = ("unit", self._stats.design_effect)
        out.attrs.update(prob=prob, interval="equal-tailed", model=self.model,
                         epsilon=self.epsilon,
                         parameter="lambda (events per input)" if self.is_rate
                         else "theta (firing probability)")
        self._units[prob] = out
        return out

    def unit_draws(self, units: Any = None, *, max_draws: int | None = None) -> xr.DataArray:
        """Posterior draws of the unit parameter (chain, draw, unit): this materializes them.

        Parameters
        ----------
        units : sequence of unit ids or int positions, optional
            Which units (default: all; beware of memory for large recordings).
        max_draws : int, optional
            Keep only the first ``max_draws`` draws per chain.

        Returns
        -------
        xarray.DataArray
            theta_u (or lambda_u) drawn from its conditional posterior given each draw of the
            group parameters (marginal method), or the sampled values (full method).

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> draws = f.unit_draws(["net/fc1/0"])
        >>> draws.dims, draws.shape
        (('chain', 'draw', 'unit'), (2, 2000, 1))
        >>> f.unit_draws([0, 7], max_draws=100).shape
        (2, 100, 2)
        """
        if max_draws is not None:
            max_draws = check_int(max_draws, "max_draws", minimum=1)
        idx = unit_positions(self.ds, units)
        post = self._posterior()
        if self.method == "full":
            return post[self._unit_name].isel(unit=idx, draw=slice(None, max_draws))
        return draw_unit_parameters(self._stats, self._draw_params(), post, self.ds, idx,
                                    max_draws, self._rng(2), self._unit_name)

    # ---------------------------------------------------------------- summaries

    def summary(self, prob: float = 0.9):
        """ArviZ summary of the group-level parameters, with the divergence count.

        Parameters
        ----------
        prob : float
            Mass of the equal-tailed interval (``ci_kind="eti"``).

        Returns
        -------
        pandas.DataFrame
            ``mean``, ``sd``, interval, ``ess_bulk``, ``ess_tail``, ``r_hat``, MCSE per
            parameter; ``.attrs["divergences"]`` and a ``divergences`` column.

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> table = f.summary()
        >>> table.index.tolist()
        ['mu[net/fc1]', 'kappa[net/fc1]']
        >>> {"mean", "sd", "ess_bulk", "ess_tail", "r_hat", "divergences"} <= set(table.columns)
        True
        """
        import arviz as az

        prob = check_prob(prob)
        names = [v for v in self.param_names if v in self._posterior().data_vars]
        table = az.summary(self.idata, var_names=names, ci_prob=prob, ci_kind="eti")
        table["divergences"] = self.diagnostics["divergences"]
        table.attrs["divergences"] = self.diagnostics["divergences"]
        table.attrs["ok"] = self.diagnostics["ok"]
        return table

    def log_likelihood(self) -> xr.DataArray:
        """Pointwise log-likelihood per unit (chain, draw, unit), marginal over theta/lambda.

        Each unit's log-likelihood is that of all its data given the group parameters, with
        the unit parameter integrated out (closed form; negative binomial by quadrature), so
        the unit is the exchangeable observation for PSIS-LOO. It is ``idata["log_likelihood"]``
        (variable ``count`` or ``window_count``, like the observed data), which ``fit`` only
        declares: this, or ArviZ reading it, computes it (once; O(units x draws) memory).

        Examples
        --------
        >>> import bayesactiv as ba
        >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
        >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
        >>> ll = f.log_likelihood()
        >>> ll.dims, ll.shape
        (('chain', 'draw', 'unit'), (2, 2000, 8))
        >>> bool((ll < 0).all())
        True
        """
        name = observed_name(self.model)
        if "log_likelihood" not in self.idata.children:
            self.idata = add_data_groups(self.idata, self.ds, self.model, self._stats,
                                         self._groups)
        return self.idata["log_likelihood"][name].load()

    def __repr__(self) -> str:
        d = self.diagnostics
        return (f"FiringFit(model={self.model!r}, method={self.method!r}, "
                f"groups={len(self._groups.labels)}, units={self.ds.sizes['unit']}, "
                f"rhat_max={d['rhat_max']:.3f}, ess_bulk_min={d['ess_bulk_min']:.0f}, "
                f"divergences={d['divergences']})")
