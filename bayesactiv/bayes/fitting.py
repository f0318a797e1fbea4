"""Fitting a firing model: the argument checks of :func:`fit`, and ``fit`` as named steps
(groups and statistics, model data, sampling, ArviZ groups, the :class:`FiringFit`).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from bayesactiv.bayes.arviz_groups import add_data_groups
from bayesactiv.bayes.result import FiringFit
from bayesactiv.bayes.sampling import SAMPLERS, rename_group_dims, sample
from bayesactiv.bayes.specs import GROUP_PARAMS, MODELS, RATE_MODELS, structure_of
from bayesactiv.bayes.sufficient import make_groups, unit_stats
from bayesactiv.data import validate
from bayesactiv.data.checks import (
    ArgumentError,
    check_choice,
    check_int,
    check_number,
    check_seed,
)
from bayesactiv.data.grouping import normalize_group_by

__all__ = ["FIT_DEFAULTS", "FIT_OPTIONS", "MAX_SEED", "ClusteredEventsWarning", "check_fit_args",
           "default_model", "fit"]


class ClusteredEventsWarning(UserWarning):
    """A model of independent events was asked for on events that come in clusters."""


def default_model(ds: xr.Dataset) -> str:
    """The model :func:`fit` uses when none is named: ``clustered_beta_binomial`` when some
    unit's events come in clusters (tokens, positions), ``beta_binomial`` otherwise.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> default_model(ba.make_dataset([1, 2], 10, network="n", layer="l"))
    'beta_binomial'
    """
    from bayesactiv.data import clustered

    return "clustered_beta_binomial" if clustered(ds).any() else "beta_binomial"


def _warn_if_clustered(ds: xr.Dataset, model: str) -> None:
    from bayesactiv.data import clustered

    if model == "beta_binomial" and clustered(ds).any():
        n = int(clustered(ds).sum())
        warnings.warn(
            f"model='beta_binomial' treats every event as an independent trial, but the events "
            f"of {n} units come in clusters (tokens of an input, positions of a feature map), "
            f"which share their input's context: its intervals are too narrow. "
            f"model='clustered_beta_binomial' (the default for such data) accounts for it.",
            ClusteredEventsWarning, stacklevel=3)


_METHODS = ("marginal", "full")
# keyword arguments of the samplers that fit sets itself, and fit's argument for each, if any
_FIT_SETS = {
    "nutpie": {"compiled_model": None, "progress_bar": "progress", "blocking": None,
               "return_raw_trace": None, "zarr_store": None},
    "pymc": {"random_seed": "seed", "progressbar": "progress", "nuts_sampler": "sampler",
             "return_inferencedata": None, "compute_convergence_checks": None},
}
# nutpie.sample's ``adaptation`` (the Literal of its signature) and the settings class of each
_NUTPIE_ADAPTATIONS = {"diag": "Diag", "draw_diag": "Diag", "low_rank": "LowRank", "flow": "Flow"}
# fit's own options besides the data, the sampler sizes and the seed (compare_models passes them on)
FIT_OPTIONS = ("method", "sampler", "epsilon", "pool_layers", "progress", "mu_prior",
               "rate_prior")
MAX_SEED = 2**64 - 1  # nutpie's seed is an unsigned 64-bit integer


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ArgumentError(f"{name}: expected True or False, got {value!r} "
                            f"({type(value).__name__})")
    return bool(value)


def _check_pair(value: Any, name: str, what: str) -> tuple[Any, Any]:
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 2:
        raise ArgumentError(f"{name}: expected {what}, got {value!r}")
    return value[0], value[1]


def _check_priors(mu_prior: Any, rate_prior: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    a, b = _check_pair(mu_prior, "mu_prior", "two positive Beta parameters (a, b)")
    mu = (check_number(a, "mu_prior", minimum=0, exclusive=True),
          check_number(b, "mu_prior", minimum=0, exclusive=True))
    mean, sd = _check_pair(rate_prior, "rate_prior", "(mean, sd > 0) of the Normal prior of log m")
    rate = (check_number(mean, "rate_prior"), check_number(sd, "rate_prior", minimum=0,
                                                           exclusive=True))
    return mu, rate


def _check_nutpie_settings(kwargs: dict[str, Any]) -> None:
    """Try the keyword arguments that ``nutpie.sample`` passes on to its sampler settings on a
    throwaway settings object, so that an unknown name or a wrong type is refused before the
    model is compiled. Skipped when this nutpie does not expose its settings classes."""
    import nutpie

    own = set(inspect.signature(nutpie.sample).parameters)
    if "cores" in kwargs:
        check_int(kwargs["cores"], "cores", minimum=1)
    adaptation = kwargs.get("adaptation", "diag")
    check_choice(adaptation, "adaptation", _NUTPIE_ADAPTATIONS)
    settings_keys = {k: v for k, v in kwargs.items() if k not in own}
    try:
        from nutpie import _lib

        settings = getattr(_lib.PyNutsSettings, _NUTPIE_ADAPTATIONS[adaptation])(0)
    except (ImportError, AttributeError):
        return
    for key, value in settings_keys.items():
        try:
            settings.update({key: value})
        except (AttributeError, TypeError, ValueError, OverflowError) as err:
            raise ArgumentError(f"sampler_kwargs: nutpie does not accept {key}={value!r} "
                                f"({err})") from None


def _check_sampler_kwargs(sampler: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    for key, own in _FIT_SETS[sampler].items():
        if key in kwargs:
            hint = f"; use fit(..., {own}=...)" if own else ""
            raise ArgumentError(f"sampler_kwargs: {key!r} is set by fit itself{hint}")
    if "target_accept" in kwargs:
        check_number(kwargs["target_accept"], "target_accept", minimum=0, maximum=1,
                     exclusive=True)
    if sampler == "nutpie":
        _check_nutpie_settings(kwargs)
    return dict(kwargs)


def _check_tune(tune: Any, sampler: str) -> int:
    tune = check_int(tune, "tune", minimum=0)
    if tune == 0 and sampler == "nutpie":  # its adaptation windows need a step (it panics)
        raise ArgumentError("tune: expected an integer >= 1 with sampler='nutpie', got 0 "
                            "(sampler='pymc' allows tune=0)")
    return tune


def check_fit_args(model: Any, group_by: Any, method: Any, draws: Any, tune: Any,
                   chains: Any, seed: Any, sampler: Any, epsilon: Any, pool_layers: Any,
                   progress: Any, mu_prior: Any, rate_prior: Any,
                   sampler_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check every argument of :func:`fit` (not the dataset); returns them normalized."""
    model = check_choice(model, "model", MODELS)
    sampler = check_choice(sampler, "sampler", SAMPLERS)
    eps_max = None if model in RATE_MODELS else 1  # a probability threshold is below 1
    mu, rate = _check_priors(mu_prior, rate_prior)
    args = {
        "model": model,
        "group_by": normalize_group_by(group_by),
        "method": check_choice(method, "method", _METHODS),
        "draws": check_int(draws, "draws", minimum=1),
        "tune": _check_tune(tune, sampler),
        "chains": check_int(chains, "chains", minimum=1),
        "seed": None if check_seed(seed) is None else check_int(seed, "seed", minimum=0,
                                                                maximum=MAX_SEED),
        "sampler": sampler,
        "epsilon": check_number(epsilon, "epsilon", minimum=0, maximum=eps_max, exclusive=True),
        "pool_layers": _check_bool(pool_layers, "pool_layers"),
        "progress": _check_bool(progress, "progress"),
        "mu_prior": mu,
        "rate_prior": rate,
        "sampler_kwargs": _check_sampler_kwargs(sampler, sampler_kwargs),
    }
    if args["pool_layers"] and "network" not in args["group_by"]:
        raise ArgumentError("pool_layers: needs 'network' in group_by (layers are pooled per "
                            "network)")
    return args



def fit(
    ds: xr.Dataset,
    model: str | None = None,
    *,
    group_by: Sequence[str] | str = ("network", "layer"),
    method: str = "marginal",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    sampler: str = "nutpie",
    epsilon: float = 0.01,
    pool_layers: bool = False,
    progress: bool = False,
    mu_prior: tuple[float, float] = (1.0, 1.0),
    rate_prior: tuple[float, float] = (math.log(0.1), 2.5),
    **sampler_kwargs: Any,
) -> FiringFit:
    """Fit a hierarchical firing model to an activation dataset.

    The models and their priors are written out in :mod:`bayesactiv.bayes.specs`.

    Parameters
    ----------
    ds : xarray.Dataset
        A valid activation dataset (see :mod:`bayesactiv.data`).
    model : {"beta_binomial", "clustered_beta_binomial", "gamma_poisson", \
"negative_binomial", "binomial_window"}, optional
        The statistical model (:mod:`bayesactiv.bayes.specs`). The last three need
        ``window_count``. Default (None): ``clustered_beta_binomial`` when the events of
        some unit come in clusters (tokens, per-position events), else ``beta_binomial``
        (:func:`default_model`); the two agree exactly on dense layers.
    group_by : sequence of str
        Unit coordinates (subset of ``network``, ``layer``, ``epoch``) whose distinct values
        form the groups; ``()`` puts all units in one group.
    method : {"marginal", "full"}
        ``"marginal"`` integrates the unit parameters out and samples only the group
        parameters on compressed data (fast, O(distinct statistics)); ``"full"`` samples
        every unit's parameter.
    draws, tune, chains : int
        Posterior draws and tuning steps per chain, and the number of chains (all >= 1;
        ``tune=0`` is allowed with ``sampler="pymc"`` only, nutpie's adaptation needs a step).
    seed : int, optional
        Seed of the sampler and of the derived-quantity draws, in ``[0, 2**64)``; same seed,
        same results.
    sampler : {"nutpie", "pymc"}
        NUTS implementation. With nutpie, the marginal models run on log densities
        compiled once per machine and cached on disk (:mod:`bayesactiv.bayes.native`);
        ``method="full"`` models are compiled once per process per structure and padded
        data size, and reused through ``with_data``.
    epsilon : float
        Firing threshold for "dead" units (theta_u or lambda_u below it): > 0, and < 1 for
        the probability models.
    pool_layers : bool
        Add a level pooling the groups (layers) within each network.
    progress : bool
        Show the sampler's progress bar.
    mu_prior : (float, float)
        Beta prior of mu_g (probability models without ``pool_layers``); the default
        Beta(1, 1) is uniform. A prior expectation of rare firing is e.g. ``(1, 300)``.
    rate_prior : (float, float)
        Normal prior (mean, sd) of log m_g, the log mean firing rate in events per input, of
        the rate models without ``pool_layers``; default ``(log 0.1, 2.5)``.
    **sampler_kwargs
        Passed to ``nutpie.sample`` (e.g. ``target_accept`` in (0, 1)) or ``pymc.sample``;
        names that nutpie does not know, and those fit sets itself (``progress_bar``,
        ``random_seed``, ...), are refused before anything is compiled.

    Returns
    -------
    FiringFit
        Its ``idata`` is an ArviZ DataTree: ``posterior`` and ``warmup_posterior`` (group-level
        variables on a ``group`` dimension), ``sample_stats``, ``observed_data``,
        ``constant_data`` and a per-unit ``log_likelihood``, so ``az.loo(f.idata)``,
        ``az.compare`` and ``az.plot_*`` work on it directly.

    Raises
    ------
    ArgumentError
        A bad argument (named in the message), before any compiling or sampling.
    DatasetError
        An invalid dataset, or one without the variables or coordinates the model needs.

    Warns
    -----
    ClusteredEventsWarning
        When ``model="beta_binomial"`` is asked for on clustered events.
    ConvergenceWarning
        When R-hat > 1.01, bulk or tail ESS < 400, or any divergent transition.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
    >>> f
    FiringFit(model='beta_binomial', method='marginal', groups=1, units=8, ...)
    >>> u = f.units()
    >>> int(u["p_dead"].values.argmax()), bool(u["p_dead"][0] > 0.05)  # the unit that never fired
    (0, True)
    >>> ba.fit(ds, tune=0)
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: tune: expected an integer >= 1 with sampler='nutpie', got 0 (sampler='pymc' allows tune=0)
    """
    validated = model is None
    if validated:
        validate(ds)
        model = default_model(ds)
    args = check_fit_args(model, group_by, method, draws, tune, chains, seed, sampler,
                          epsilon, pool_layers, progress, mu_prior, rate_prior, sampler_kwargs)
    if not validated:  # a named model: its arguments are checked before the dataset
        validate(ds)
    _warn_if_clustered(ds, args["model"])
    model, group_by, method = args["model"], args["group_by"], args["method"]
    pool_layers, seed = args["pool_layers"], args["seed"]
    groups = make_groups(ds, group_by, pool_layers)
    st = unit_stats(ds, model, groups)
    structure = structure_of(model)
    loc_prior = args["mu_prior"] if structure.startswith("beta") else args["rate_prior"]
    idata = sample(structure, method, groups, st, pool_layers, args["sampler"],
                   args["draws"], args["tune"], args["chains"], seed, args["progress"],
                   args["sampler_kwargs"], loc_prior)
    idata = rename_group_dims(idata, groups, GROUP_PARAMS, ds)
    idata = add_data_groups(idata, ds, model, st, groups)
    return FiringFit(idata=idata, ds=ds, model=model, method=method, group_by=group_by,
                     groups=groups, stats=st, epsilon=args["epsilon"], seed=seed,
                     pool_layers=pool_layers)


# the defaults of fit's options, which compare_models checks before fitting
FIT_DEFAULTS = {k: inspect.signature(fit).parameters[k].default for k in FIT_OPTIONS}
