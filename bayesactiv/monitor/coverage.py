"""Simulated truth for the indicator: do its intervals cover what they claim?

Layers with known firing, recorded as a probe would be, and the indicator's intervals
(:func:`bayesactiv.monitor.indicator.firing_trajectory`) scored against the truth:

* :func:`mfr_replicates`: units firing with probability ``sigmoid(bias_u + loading * z_i)``,
  ``z_i ~ N(0, 1)`` per input, so that ``loading > 0`` moves all units of an input together;
  optionally each input's events repeated over ``positions`` (the positions of a
  convolution that copy their input). The truth is the population MFR, the mean over units
  of ``E_z sigmoid(bias_u + loading * z)`` (Gauss-Hermite quadrature).
* :func:`dead_replicates`: rare units, 300 events, dead = rate below 0.01; ``"beta"``
  population: rates ~ Beta(0.3, 3), the prior's own family; ``"mixture"``: a third of the
  units at rate 0.002, the rest ~ Beta(2, 3) above 0.03 (a beta prior fits it badly). The
  truth is the fraction of these units whose rate is below 0.01.

``tests/monitor/test_indicator.py`` asserts the coverage; ``benchmarks/indicator_coverage.py``
prints it (the README's table).

Examples
--------
>>> from bayesactiv.monitor.coverage import mfr_replicates
>>> reps = mfr_replicates(loading=0.0, reps=20)
>>> len(reps), sorted(reps.columns)
(20, ['covered', 'inputs', 'method'])
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from bayesactiv.data.contract import make_dataset, set_epoch
from bayesactiv.monitor.indicator import firing_trajectory

__all__ = ["DEAD_POPULATIONS", "dead_replicates", "events_dataset", "latent_factor_firing",
           "mfr_replicates", "population_mfr"]

#: The populations of :func:`dead_replicates`.
DEAD_POPULATIONS = ("beta", "mixture")


def latent_factor_firing(rng: np.random.Generator, n_inputs: int, bias: np.ndarray,
                         loading: float) -> np.ndarray:
    """Events (inputs, units): fired with probability ``sigmoid(bias + loading * z)``.

    Examples
    --------
    >>> import numpy as np
    >>> latent_factor_firing(np.random.default_rng(0), 5, np.zeros(3), 1.0).shape
    (5, 3)
    """
    z = rng.standard_normal(n_inputs)
    p = special.expit(bias[None, :] + loading * z[:, None])
    return rng.random(p.shape) < p


def population_mfr(bias: np.ndarray, loading: float) -> float:
    """The mean over units of ``E_z sigmoid(bias + loading * z)``, ``z ~ N(0, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> population_mfr(np.zeros(4), 2.0)
    0.5
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    return float(weights @ special.expit(bias[None, :] + loading * nodes[:, None]).mean(1))


def events_dataset(fired: np.ndarray, inputs: np.ndarray | None = None) -> xr.Dataset:
    """One layer's events as a history of one epoch (epoch 0), as a monitor holds it.

    Examples
    --------
    >>> import numpy as np
    >>> ds = events_dataset(np.array([[True], [False]]), inputs=np.array([0, 0]))
    >>> int(ds["count"][0]), ds["input"].values.tolist(), int(ds["epoch"][0])
    (1, [0, 0], 0)
    """
    fired = np.asarray(fired, dtype=bool)
    ds = make_dataset(fired.sum(0), fired.shape[0], network="net", layer="l", fired=fired)
    if inputs is not None:
        ds = ds.assign_coords(input=("sample", np.asarray(inputs)))
    return set_epoch(ds, 0)


def mfr_replicates(*, loading: float, n_units: int = 40, n_inputs: int = 120,
                   positions: int = 1, bias_sd: float = 1.0, reps: int = 200,
                   method: str | None = None, events_as_inputs: bool = False, seed: int = 7,
                   draws: int = 400, prob: float = 0.9) -> pd.DataFrame:
    """Whether the MFR interval covers the population MFR, replicate by replicate.

    Parameters
    ----------
    loading : float
        How strongly one input moves all units (0: independent units).
    n_units, n_inputs, positions, bias_sd
        The layer: units (biases ~ N(0, bias_sd)), inputs, events per input.
    reps : int
        Replicates (new inputs each, the same units).
    method : {None, "inputs", "units"}
        As for :func:`~bayesactiv.monitor.indicator.firing_trajectory`.
    events_as_inputs : bool
        Drop the ``input`` coordinate: every position taken as an input of its own.
    seed, draws, prob
        The simulation's seed (the units, then each replicate's inputs); the indicator's
        draws (seeded by the replicate's index) and interval mass.

    Returns
    -------
    pandas.DataFrame
        Per replicate: ``covered``, ``method``, ``inputs``.
    """
    rng = np.random.default_rng(seed)
    bias = rng.normal(0.0, bias_sd, n_units)
    truth = population_mfr(bias, loading)
    rows = []
    for rep in range(reps):
        fired = np.repeat(latent_factor_firing(rng, n_inputs, bias, loading), positions, axis=0)
        inputs = None if positions == 1 or events_as_inputs else \
            np.repeat(np.arange(n_inputs), positions)
        row = firing_trajectory(events_dataset(fired, inputs), draws=draws, method=method,
                                seed=rep, prob=prob).iloc[0]
        rows.append({"covered": bool(row["mfr_low"] <= truth <= row["mfr_high"]),
                     "method": row["method"], "inputs": int(row["inputs"])})
    return pd.DataFrame(rows)


def dead_replicates(population: str, *, reps: int = 150, seed: int = 10, draws: int = 500,
                    prob: float = 0.9) -> pd.DataFrame:
    """Whether the interval of the fraction of dead units covers the truth, per replicate.

    Parameters
    ----------
    population : {"beta", "mixture"}
        See the module notes.
    reps, seed, draws, prob
        Replicates (new units and events each); the simulation's seed; the indicator's
        draws (seeded by the replicate's index) and interval mass.

    Returns
    -------
    pandas.DataFrame
        Per replicate: ``covered``, and ``plug_in_wrong`` (the fraction of units that never
        fired differs from the truth).
    """
    if population not in DEAD_POPULATIONS:
        raise ValueError(f"population: expected one of {DEAD_POPULATIONS}, got {population!r}")
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        if population == "beta":
            p = rng.beta(0.3, 3.0, 60)
        else:
            p = np.where(np.arange(60) < 20, 0.002, np.maximum(rng.beta(2, 3, 60), 0.03))
        truth = np.mean(p < 0.01)
        fired = rng.random((300, 60)) < p
        row = firing_trajectory(events_dataset(fired), draws=draws, seed=rep, prob=prob).iloc[0]
        rows.append({"covered": bool(row["frac_dead_low"] <= truth <= row["frac_dead_high"]),
                     "plug_in_wrong": bool(row["frac_silent"] != truth)})
    return pd.DataFrame(rows)
