"""Ranking firing models of the window counts by PSIS-LOO (``arviz.compare``)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from bayesactiv.bayes.diagnostics import ConvergenceWarning
from bayesactiv.bayes.fitting import FIT_DEFAULTS, FIT_OPTIONS, MAX_SEED, check_fit_args, fit
from bayesactiv.bayes.specs import COUNT_MODELS, MODELS
from bayesactiv.data import require, validate
from bayesactiv.data.checks import ArgumentError, check_choice, check_int, check_seed

__all__ = ["compare_models"]


def _check_compared_models(models: Any) -> tuple[str, ...]:
    if isinstance(models, str | bytes) or not hasattr(models, "__iter__"):
        raise ArgumentError(f"models: expected a sequence of model names, got {models!r}")
    models = tuple(models)
    if len(models) < 2:
        raise ArgumentError("models: need at least two models to compare")
    if len(set(models)) != len(models):
        raise ArgumentError(f"models: repeated names in {models}")
    for name in models:
        check_choice(name, "models", MODELS)
        if name in COUNT_MODELS:
            raise ArgumentError(f"models: {name!r} describes count/n, not the window "
                                "counts; use 'binomial_window' to compare on the same data")
    return models


def compare_models(
    ds: xr.Dataset,
    models: Sequence[str] = ("gamma_poisson", "negative_binomial", "binomial_window"),
    *,
    group_by: Sequence[str] | str = ("network", "layer"),
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    log: Callable[[str], Any] | None = None,
    **fit_kwargs: Any,
):
    """Rank firing models of the window counts by PSIS-LOO (``arviz.compare``).

    Each model is fitted with :func:`fit` (marginal method), and the pointwise
    log-likelihood is per unit: the likelihood of all of a unit's window counts given
    the group parameters, the unit's own rate integrated out (the unit is the exchangeable
    observation). All models must describe the same data (``window_count``), so compare
    ``gamma_poisson``, ``negative_binomial`` and ``binomial_window`` (``beta_binomial``
    describes ``count``, not the windows, and cannot be ranked against them).

    Parameters
    ----------
    ds : xarray.Dataset
        Activation dataset with ``window_count``.
    models : sequence of str
        Names from :data:`MODELS` describing the window counts.
    group_by, draws, tune, chains, seed, **fit_kwargs
        As in :func:`fit`.
    log : callable, optional
        Called with one line of text when each model's fit starts and when its PSIS-LOO is
        done (its seconds, ELPD and largest Pareto k), e.g. ``print``; None (default): silent.

    Returns
    -------
    pandas.DataFrame
        ``arviz.compare``'s table (ranked by ELPD-LOO), with ``.attrs["loo"]`` holding each
        model's ELPD object (with Pareto k per unit), ``.attrs["pareto_k_max"]`` and
        ``.attrs["fits"]`` the FiringFit objects.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> rng = np.random.default_rng(0)
    >>> fired = rng.random((100, 60)) < rng.beta(1, 10, 60)  # 100 inputs, 60 units
    >>> windows = fired.reshape(10, 10, 60).sum(axis=1)  # events per block of 10 inputs
    >>> ds = ba.make_dataset(fired.sum(axis=0), 100, network="net", layer="fc1",
    ...                      window_count=windows, window_size=10)
    >>> table = ba.compare_models(ds, ["gamma_poisson", "binomial_window"], draws=2000,
    ...                           tune=1000, chains=2, seed=0)
    >>> sorted(table.index), sorted(table.attrs["fits"])
    (['binomial_window', 'gamma_poisson'], ['binomial_window', 'gamma_poisson'])
    >>> {"rank", "elpd", "elpd_diff", "weight"} <= set(table.columns)
    True
    >>> ba.compare_models(ds, ["gamma_poisson", "binomial_window"], log="stderr")
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: log: expected a callable (e.g. print) or None, got 'stderr'
    """
    import arviz as az

    if log is not None and not callable(log):
        raise ArgumentError(f"log: expected a callable (e.g. print) or None, got {log!r}")
    models, seed = _check_compare_args(ds, models, group_by, draws, tune, chains, seed,
                                       fit_kwargs)
    fits, loos, failed = {}, {}, {}
    for i, name in enumerate(models):
        t0 = time.perf_counter()
        if log is not None:
            log(f"[{i + 1}/{len(models)}] {name}: fit and PSIS-LOO ...")
        fits[name], loo, err = _fit_with_loo(ds, name, i, group_by, draws, tune, chains, seed,
                                             fit_kwargs, log)
        if loo is None:
            failed[name] = err
        else:
            loos[name] = loo
        if log is not None:
            done = (f"elpd {float(loo.elpd):.1f}, max Pareto k "
                    f"{float(np.nanmax(np.asarray(loo.pareto_k))):.2f}" if loo is not None
                    else f"PSIS-LOO failed ({err})")
            log(f"[{i + 1}/{len(models)}] {name}: {done} "
                f"({time.perf_counter() - t0:.1f} s)")
    if failed:
        warnings.warn(
            "compare_models: PSIS-LOO failed for "
            + "; ".join(f"{name} ({msg})" for name, msg in failed.items())
            + ", even after refitting with longer tuning; those models are left out of the "
            "ranking (check their diagnostics in table.attrs['fits'])",
            ConvergenceWarning, stacklevel=2)
    if len(loos) < 2:
        raise RuntimeError(f"compare_models: fewer than two models have a PSIS-LOO estimate "
                           f"(failed: {sorted(failed)})")
    table = az.compare(loos)
    table.attrs["loo"] = loos
    table.attrs["failed"] = failed
    table.attrs["fits"] = fits
    table.attrs["pareto_k_max"] = {name: float(np.nanmax(np.asarray(lo.pareto_k)))
                                   for name, lo in loos.items()}
    return table


def _check_compare_args(ds: xr.Dataset, models: Any, group_by: Any, draws: Any, tune: Any,
                        chains: Any, seed: Any, fit_kwargs: dict[str, Any]
                        ) -> tuple[tuple[str, ...], int | None]:
    """Check every argument of :func:`compare_models` and the dataset before any fit; returns
    the model names and the seed."""
    models = _check_compared_models(models)
    seed = check_seed(seed)
    if seed is not None:  # the refits use seed + i + 100
        check_int(seed, "seed", minimum=0, maximum=MAX_SEED - 100 - len(models))
    if "model" in fit_kwargs:
        raise ArgumentError("fit_kwargs: 'model' is not an option here; name the models in "
                            "models=")
    options = {k: fit_kwargs.get(k, default) for k, default in FIT_DEFAULTS.items()}
    sampler_kwargs = {k: v for k, v in fit_kwargs.items() if k not in FIT_OPTIONS}
    for name in models:
        check_fit_args(name, group_by, options["method"], draws, tune, chains, seed,
                       options["sampler"], options["epsilon"], options["pool_layers"],
                       options["progress"], options["mu_prior"], options["rate_prior"],
                       sampler_kwargs)
    validate(ds)
    require(ds, "window_count", "compare_models",
            "record(..., window_size=W) or make_dataset(..., window_count=, window_size=)")
    return models, seed


def _fit_with_loo(ds: xr.Dataset, name: str, i: int, group_by: Any, draws: int, tune: int,
                  chains: int, seed: int | None, fit_kwargs: dict[str, Any],
                  log: Callable[[str], Any] | None = None):
    """Fit model ``name`` (the ``i``-th) and its PSIS-LOO; when PSIS cannot smooth the
    importance ratios (e.g. a chain that barely moved repeats its draws), once more with
    longer tuning and smaller steps. Returns the last fit, the ELPD object or None, and the
    last error message."""
    import arviz as az

    kwargs = dict(fit_kwargs)
    err = None
    for attempt in range(2):
        f = fit(ds, name, group_by=group_by, draws=draws, tune=tune * (1 + attempt),
                chains=chains, seed=None if seed is None else seed + i + 100 * attempt,
                **kwargs)
        try:
            return f, az.loo(f.idata), None
        except ValueError as error:
            err = str(error)
            kwargs["target_accept"] = 0.95
            if log is not None and attempt == 0:
                log(f"      {name}: PSIS-LOO failed ({err}); refitting with longer tuning")
    return f, None, err
