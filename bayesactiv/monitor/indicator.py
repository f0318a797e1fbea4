"""The monitor's indicator: per layer and epoch, posterior firing summaries and their change.

A monitor's history (:meth:`bayesactiv.monitor.FiringMonitor.dataset`) holds, per epoch, the
firing of the same probe inputs. :func:`firing_trajectory` summarizes each layer at each epoch
with posterior draws, cheap enough to redo after every epoch:

``mfr``
    The layer's mean firing rate on the input distribution the probe was drawn from: the
    fraction of (unit, event) pairs that fire. With the probe's events kept
    (``keep_events=True``), its posterior is the Bayesian bootstrap over the probe inputs
    (Rubin 1981): Dirichlet(1, ..., 1) weights ``w`` over the inputs and
    ``MFR = sum_j w_j S_j / sum_j w_j E_j``, with ``S_j`` the layer's firing events on input
    ``j`` and ``E_j`` its (unit, event) pairs. Whole inputs are the exchangeable units, so the
    correlation between the units of a layer (one input moves them together) and between the
    positions or tokens of one input is in the interval. The *same* weights serve every epoch
    (the probe is the same inputs), so differences between epochs are paired: what is left
    of the input-sampling noise in them is what the inputs' firing changed. Without events
    (``method="units"``), each unit's rate has the conjugate posterior
    ``Beta(1/2 + count, 1/2 + n - count)`` (Jeffreys) and ``mfr`` is their mean; the units
    are then taken as independent, which makes the interval too narrow when units move
    together (the ``method`` column says which was used).
``frac_dead``
    The fraction of the layer's units whose firing probability is below ``dead_below``, with
    each unit's rate drawn from ``Beta(a + count, b + n - count)``, where ``Beta(a, b)`` is
    the layer's prior shared by its units: fitted per layer and epoch by the method of
    moments of the beta-binomial, its concentration capped at a unit's mean events so that
    the prior never weighs more than one unit's data (an empirical-Bayes prior, conjugate,
    so the update is exact). A unit never seen firing on 300 inputs is not called dead
    outright: it is dead with the probability its posterior gives ``rate < dead_below``.
``mf``, ``mf_null``
    With ``window_count`` (``window_size=`` at recording): the mean over units of the Fano
    factor of the window counts, its posterior by the Bayesian bootstrap over windows
    (at most :data:`MF_DRAWS` draws), and
    its plug-in null of independent firing in random order
    (:func:`bayesactiv.stats.spikes.fano_null`).

:func:`mfr_change` puts each epoch's MFR beside a reference epoch's and gives the posterior
of the difference and the probability that it exceeds a margin; :class:`FiringAlarm` turns
that into an alarm (the first epoch at which the probability stays above a level for some
epochs in a row). Its false-alarm rate is what the validation study
(:mod:`bayesactiv.studies.watching`) measures on generalizing runs; see the README's
"Watching training".

Examples
--------
>>> import bayesactiv as ba
>>> from bayesactiv.monitor.indicator import firing_trajectory
>>> ds = ba.make_dataset([0, 30, 60, 90, 0, 10, 20, 30], 100, network="n", layer="l",
...                      epoch=[0, 0, 0, 0, 1, 1, 1, 1])
>>> t = firing_trajectory(ds, draws=400)
>>> t[["epoch", "method", "mfr"]].round(2).values.tolist()
[[0, 'units', 0.45], [1, 'units', 0.15]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from bayesactiv.data.checks import ArgumentError, check_choice, check_int, check_number, check_prob
from bayesactiv.data.contract import DatasetError, validate
from bayesactiv.data.grouping import group_units
from bayesactiv.data.lazy import input_starts

__all__ = ["DEAD_BELOW", "DIRECTIONS", "AlarmResult", "FiringAlarm", "calibrate_margin", "change_from_draws",
           "consecutive_runs", "firing_trajectory", "join_draws", "mfr_change", "round_up_margin",
           "summarize_draws", "trajectory_draws"]

#: Directions of change an alarm can watch.
DIRECTIONS = ("down", "up", "either")
_KEYS = ("network", "layer", "epoch")
#: The default rate below which a unit is dead (``dead_below``).
DEAD_BELOW = 0.01
#: at most this many draws of MF (each costs windows x units; its interval is a guide)
MF_DRAWS = 200


def _check_method(method: Any, ds: xr.Dataset) -> str:
    if method not in (None, "inputs", "units"):
        raise ArgumentError(f"method: expected None, 'inputs' or 'units', got {method!r}")
    has_events = "fired" in ds.data_vars
    if method == "inputs" and not has_events:
        raise DatasetError("fired: method='inputs' needs the probe's events; record them with "
                           "keep_events=True (FiringMonitor(..., keep_events=True))")
    return method or ("inputs" if has_events else "units")


@dataclass
class _Groups:
    """The (network, layer, epoch) groups of a dataset's units."""

    index: np.ndarray  # group of each unit
    frame: pd.DataFrame  # network, layer, epoch, units per group

    @classmethod
    def of(cls, ds: xr.Dataset) -> _Groups:
        keys = tuple(k for k in _KEYS if k in ds.coords)
        g = group_units(ds, keys)
        frame = pd.DataFrame({k: g.coords[k] for k in keys})
        if "epoch" not in frame:
            frame["epoch"] = -1
        frame["network"] = frame["network"].astype(str)
        frame["layer"] = frame["layer"].astype(str)
        frame["epoch"] = frame["epoch"].astype(np.int64)
        frame["units"] = np.bincount(g.index, minlength=len(frame))
        return cls(g.index, frame)


def _group_sums(values: np.ndarray, groups: _Groups) -> np.ndarray:
    """Sum ``values`` (..., units) over the units of each group: (..., groups)."""
    counts = np.bincount(groups.index, minlength=len(groups.frame))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    if np.any(np.diff(groups.index) < 0):  # (a monitor's units come sorted already)
        values = values[..., np.argsort(groups.index, kind="stable")]
    out = np.add.reduceat(values, np.minimum(starts, values.shape[-1] - 1), axis=-1)
    return np.where(counts > 0, out, 0.0)


def _input_sums(ds: xr.Dataset, groups: _Groups) -> tuple[np.ndarray, np.ndarray]:
    """Per input, each group's firing events ``S`` (inputs, groups) and (unit, event) pairs ``E``."""
    fired = np.asarray(ds["fired"].values)
    starts = input_starts(ds)
    if starts is not None:
        events = np.diff(np.r_[starts, fired.shape[0]])
        per_input = np.add.reduceat(fired.astype(np.int64), starts, axis=0)
    else:
        events = np.ones(fired.shape[0], dtype=np.int64)
        per_input = fired.astype(np.int64)
    sums = _group_sums(per_input.astype(np.float64), groups)
    pairs = events[:, None] * groups.frame["units"].to_numpy()[None, :]
    return sums, pairs.astype(np.float64)


def _layer_prior(count: np.ndarray, n: np.ndarray, index: np.ndarray, n_groups: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) per group by the beta-binomial method of moments (clipped to proper priors)."""
    tot_k = np.bincount(index, count, n_groups)
    tot_n = np.bincount(index, n, n_groups)
    mean = np.clip(tot_k / np.maximum(tot_n, 1), 1e-6, 1 - 1e-6)
    rate = count / np.maximum(n, 1)
    units = np.bincount(index, minlength=n_groups)
    var = np.bincount(index, (rate - mean[index]) ** 2, n_groups) / np.maximum(units, 1)
    n_bar = tot_n / np.maximum(units, 1)
    # Var(k/n) = m(1-m)/n (1 + (n-1) rho), rho = 1 / (kappa + 1)
    rho = (var * n_bar / (mean * (1 - mean)) - 1) / np.maximum(n_bar - 1, 1)
    rho = np.clip(rho, 1e-4, 1 - 1e-4)
    kappa = np.minimum(1 / rho - 1, np.maximum(n_bar, 1))  # (worth at most one unit's events)
    return mean * kappa, (1 - mean) * kappa


def _window_fano_draws(ds: xr.Dataset, groups: _Groups, weights: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MF draws (draws, groups) by the Bayesian bootstrap over windows, plug-in MF and null."""
    from bayesactiv.stats.spikes import fano, fano_null

    wc = ds["window_count"].values.astype(np.float64)
    n_windows = wc.shape[0]
    mean = weights @ wc
    var = weights @ wc**2 - mean**2
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_fano = np.where(mean > 0, np.maximum(var, 0) / mean, np.nan)
    active = (ds["count"].values > 0).astype(np.float64)
    defined = _group_sums(active, groups)
    per = np.maximum(defined, 1)

    def mean_over_active(values: np.ndarray) -> np.ndarray:
        return np.where(defined > 0, _group_sums(np.nan_to_num(values) * active, groups) / per,
                        np.nan)

    p = ds["count"].values / np.maximum(ds["n"].values, 1)
    null = fano_null(p, ds["n"].values, int(ds.attrs["window_size"]), n_windows)
    return mean_over_active(unit_fano), mean_over_active(fano(wc)), mean_over_active(null)


def trajectory_draws(ds: xr.Dataset, *, draws: int = 1000, dead_below: float = DEAD_BELOW,
                     method: str | None = None, seed: int = 0, epoch_seed: int | None = None
                     ) -> tuple[pd.DataFrame, dict]:
    """The groups of :func:`firing_trajectory` and the posterior draws behind it.

    Each epoch is drawn alone: the Dirichlet weights over the probe's inputs (and windows)
    come from ``seed`` and are the same at every epoch; the other draws of epoch ``e`` come
    from the stream ``(seed, e + 1)``. So the draws of one epoch do not depend on which
    other epochs are in ``ds``, and a monitor can draw each epoch once, as it arrives.

    Parameters
    ----------
    ds : xarray.Dataset
    draws, dead_below, method, seed
        As for :func:`firing_trajectory`.
    epoch_seed : int, optional
        Draw ``ds`` as the single epoch ``epoch_seed`` (what the monitor does per epoch).

    Returns
    -------
    frame : pandas.DataFrame
        One row per (network, layer, epoch): ``network``, ``layer``, ``epoch``, ``units``,
        ``method``.
    draws : dict of numpy.ndarray
        ``mfr`` and ``frac_dead`` (and ``mf``), each (draws, groups), the columns in the
        order of ``frame``'s rows; draws of the same index share the input weights across
        epochs (method "inputs"), so differences between epochs are paired.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([3, 5], 10, network="n", layer="l", epoch=[0, 1])
    >>> frame, d = trajectory_draws(ds, draws=50)
    >>> frame["epoch"].tolist(), d["mfr"].shape
    ([0, 1], (50, 2))
    """
    validate(ds)
    draws = check_int(draws, "draws", minimum=2)
    dead_below = check_number(dead_below, "dead_below", minimum=0, maximum=1, exclusive=True)
    method = _check_method(method, ds)
    shared = _shared_weights(ds, method, draws, seed)
    if "epoch" not in ds.coords or epoch_seed is not None:  # (one epoch, as the monitor draws)
        stream = 0 if epoch_seed is None else int(epoch_seed) + 1
        return _epoch_draws(ds, shared, draws, method, dead_below,
                            np.random.default_rng([seed, stream]))
    epochs = ds["epoch"].values
    frames, parts = [], []
    for epoch in pd.unique(epochs):  # (each epoch alone: what the monitor caches is the same)
        f, d = _epoch_draws(ds.isel(unit=np.flatnonzero(epochs == epoch)), shared, draws,
                            method, dead_below, np.random.default_rng([seed, int(epoch) + 1]))
        frames.append(f)
        parts.append(d)
    return join_draws(frames, parts)


def _shared_weights(ds: xr.Dataset, method: str, draws: int, seed: int
                    ) -> dict[str, np.ndarray]:
    """The Dirichlet weights every epoch shares: over the probe's inputs and its windows."""
    rng = np.random.default_rng(seed)
    out = {}
    if method == "inputs":
        starts = input_starts(ds)
        n_inputs = ds.sizes["sample"] if starts is None else len(starts)
        out["inputs"] = rng.dirichlet(np.ones(n_inputs), size=draws)
    if "window_count" in ds.data_vars and "window_size" in ds.attrs:
        out["windows"] = rng.dirichlet(np.ones(ds.sizes["window"]), size=min(draws, MF_DRAWS))
    return out


def join_draws(frames: Sequence[pd.DataFrame], parts: Sequence[dict[str, np.ndarray]]
               ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Put the groups and draws of several epochs (from :func:`trajectory_draws`) together.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> f0, d0 = trajectory_draws(ba.make_dataset([3], 10, network="n", layer="l", epoch=0))
    >>> f1, d1 = trajectory_draws(ba.make_dataset([5], 10, network="n", layer="l", epoch=1))
    >>> frame, d = join_draws([f0, f1], [d0, d1])
    >>> frame["epoch"].tolist(), d["mfr"].shape
    ([0, 1], (1000, 2))
    """
    frame = pd.concat(frames, ignore_index=True)
    keys = set.intersection(*(set(p) for p in parts))
    return frame, {k: np.concatenate([p[k] for p in parts], axis=-1) for k in sorted(keys)}


def _epoch_draws(ds: xr.Dataset, shared: dict[str, np.ndarray], draws: int, method: str,
                 dead_below: float, rng: np.random.Generator
                 ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    groups = _Groups.of(ds)
    frame = groups.frame.copy()
    frame["method"] = method
    n_groups = len(frame)
    count = ds["count"].values.astype(np.float64)
    n = ds["n"].values.astype(np.float64)
    units = frame["units"].to_numpy()
    frame["frac_silent"] = _group_sums((count == 0).astype(np.float64), groups) / units
    out: dict[str, np.ndarray] = {}
    if method == "inputs":
        sums, pairs = _input_sums(ds, groups)
        frame["inputs"] = sums.shape[0]
        weights = shared["inputs"]
        out["mfr"] = (weights @ sums) / (weights @ pairs)
    else:  # (Jeffreys per unit: the layer's mean must not lean on its own prior)
        frame["inputs"] = -1
        rates = rng.beta(0.5 + count, 0.5 + n - count, size=(draws, len(count)))
        out["mfr"] = _group_sums(rates, groups) / units
    a, b = _layer_prior(count, n, groups.index, n_groups)
    post_a, post_b = a[groups.index] + count, b[groups.index] + n - count
    dead_prob = special.betainc(post_a, post_b, dead_below)
    dead = (rng.random((draws, len(count))) < dead_prob).astype(np.float64)
    out["frac_dead"] = _group_sums(dead, groups) / units
    if "windows" in shared:
        out["mf"], frame["mf_plugin"], frame["mf_null"] = _window_fano_draws(
            ds, groups, shared["windows"])
    return frame, out


def _summaries(values: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tail = (1 - prob) / 2
    with np.errstate(all="ignore"):
        lo, hi = np.nanquantile(values, [tail, 1 - tail], axis=0)
        return np.nanmean(values, axis=0), lo, hi


def firing_trajectory(ds: xr.Dataset, *, prob: float = 0.9, dead_below: float = DEAD_BELOW,
                      draws: int = 1000, method: str | None = None, seed: int = 0
                      ) -> pd.DataFrame:
    """Posterior MFR, fraction of dead units and MF per network, layer and epoch.

    See the module notes for the model of each quantity.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset, usually a monitor's history (``epoch`` coordinate; without
        one, ``epoch`` is -1).
    prob : float
        Mass of the equal-tailed intervals.
    dead_below : float
        A unit is dead when its firing probability is below this.
    draws : int
        Posterior draws (Monte Carlo error of a 90% bound: about 0.1 of the interval's
        width at 1,000).
    method : {None, "inputs", "units"}
        How the MFR's posterior is drawn: over the probe inputs (needs ``fired``), or units
        as independent (conjugate beta per unit). None: "inputs" when the events are there.
    seed : int
        Seed of the draws.

    Returns
    -------
    pandas.DataFrame
        One row per (network, layer, epoch), sorted by network, layer and epoch:
        ``network``, ``layer``, ``epoch``, ``units``, ``inputs`` (-1 without events),
        ``method``, ``mfr``, ``mfr_low``, ``mfr_high``, ``frac_dead``, ``frac_dead_low``,
        ``frac_dead_high``, ``frac_silent`` (plug-in: ``count == 0``) and, with
        ``window_count``, ``mf``, ``mf_low``, ``mf_high``, ``mf_plugin``, ``mf_null``.

    Raises
    ------
    ArgumentError
        A probability outside (0, 1), ``draws < 2``, an unknown method.
    DatasetError
        ``method="inputs"`` without events; an invalid dataset.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 0, 40, 60], 200, network="n", layer="l", epoch=[3, 3, 3, 3])
    >>> row = firing_trajectory(ds, draws=2000).iloc[0]
    >>> round(float(row["mfr"]), 2), float(row["frac_silent"]), bool(0.4 < row["frac_dead"] <= 0.5)
    (0.13, 0.5, True)
    """
    prob = check_prob(prob, "prob")
    frame, d = trajectory_draws(ds, draws=draws, dead_below=dead_below, method=method,
                                seed=seed)
    return summarize_draws(frame, d, prob=prob)


def summarize_draws(frame: pd.DataFrame, draws: dict[str, np.ndarray], *, prob: float = 0.9
                    ) -> pd.DataFrame:
    """:func:`firing_trajectory`'s table from :func:`trajectory_draws`' groups and draws.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> frame, d = trajectory_draws(ba.make_dataset([3], 10, network="n", layer="l"))
    >>> summarize_draws(frame, d)[["mfr_low", "mfr_high"]].round(2).values.tolist()
    [[0.12, 0.55]]
    """
    prob = check_prob(prob, "prob")
    frame = frame.copy()
    for q in ("mfr", "frac_dead", "mf"):
        if q in draws:
            frame[q], frame[f"{q}_low"], frame[f"{q}_high"] = _summaries(draws[q], prob)
    columns = ["network", "layer", "epoch", "units", "inputs", "method", "mfr", "mfr_low",
               "mfr_high", "frac_dead", "frac_dead_low", "frac_dead_high", "frac_silent"]
    if "mf" in draws:
        columns += ["mf", "mf_low", "mf_high", "mf_plugin", "mf_null"]
    return frame[columns].sort_values(["network", "layer", "epoch"],
                                      kind="stable").reset_index(drop=True)


def _check_margin(margin: Any) -> float:
    margin = check_number(margin, "margin", minimum=0)
    if margin >= 1:
        raise ArgumentError(f"margin: expected a change of MFR in [0, 1), got {margin!r}")
    return margin


def _check_change(reference: Any, direction: Any, margin: Any, prob: Any,
                  prob_name: str = "prob") -> tuple[str, float, float]:
    """The checked ``direction``, ``margin`` and ``prob`` of a change (before any draw)."""
    direction = check_choice(direction, "direction", DIRECTIONS)
    if reference == "peak" and direction == "either":
        raise ArgumentError("reference: 'peak' needs direction 'down' (highest level so far) "
                            "or 'up' (lowest); give an epoch for direction 'either'")
    return direction, _check_margin(margin), check_prob(prob, prob_name)


def _check_layers(watched: Sequence[str] | None, present: Any) -> None:
    """Refuse watched layers that are not among ``present``, naming them."""
    if watched is None:
        return
    present = sorted(set(np.asarray(present).astype(str)))
    missing = sorted(set(watched) - set(present))
    if missing:
        raise DatasetError(f"layers: {missing} not in the history (layers {present})")


def round_up_margin(value: float) -> float:
    """``value`` rounded up to a multiple of 0.005 (how calibrated margins are stated).

    Examples
    --------
    >>> round_up_margin(0.0412), round_up_margin(0.045)
    (0.045, 0.045)
    """
    return float(np.ceil(value / 0.005 - 1e-9) * 0.005)


def consecutive_runs(hit: Sequence[bool], consecutive: int) -> np.ndarray:
    """Where ``hit`` has held for ``consecutive`` entries in a row, ending there.

    Examples
    --------
    >>> consecutive_runs([True, True, False, True, True, True], 2).tolist()
    [False, True, False, False, True, True]
    """
    out = np.zeros(len(hit), dtype=bool)
    run = 0
    for i, h in enumerate(hit):
        run = run + 1 if h else 0
        out[i] = run >= consecutive
    return out


def mfr_change(ds: xr.Dataset, *, reference: int | str | None = None, start: int | None = None,
               margin: float = 0.02, direction: str = "down", prob: float = 0.9,
               draws: int = 1000, method: str | None = None, seed: int = 0) -> pd.DataFrame:
    """Each layer's MFR at each epoch against a reference epoch's, as a posterior.

    ``delta = MFR(epoch) - MFR(reference)``, from paired draws (the same input weights at
    both epochs, see the module notes). ``p_change`` is the posterior probability of a
    change beyond ``margin`` in ``direction``: ``P(delta < -margin)`` ("down"),
    ``P(delta > margin)`` ("up") or ``P(|delta| > margin)`` ("either").

    Parameters
    ----------
    ds : xarray.Dataset
        A history with an ``epoch`` coordinate.
    reference : int or "peak" or None
        The reference: an epoch; None, the first watched epoch (``start``); ``"peak"``, at
        each epoch the layer's most extreme epoch so far from ``start`` on (highest posterior
        mean MFR for ``direction="down"``, lowest for ``"up"``): "has the layer fallen below
        the highest level it reached?".
    start : int, optional
        The first epoch watched; earlier epochs are neither watched nor references (the
        first steps from the initialization move every rate). Default: the first observed.
    margin : float
        The change of MFR (absolute, in firing probability) that counts.
    direction : {"down", "up", "either"}
    prob : float
        Mass of the interval of ``delta``.
    draws, method, seed
        As for :func:`firing_trajectory`.

    Returns
    -------
    pandas.DataFrame
        Per (network, layer, epoch) from ``start`` on: ``network``, ``layer``, ``epoch``,
        ``reference`` (the epoch compared with), ``mfr`` (posterior mean), ``delta``,
        ``delta_low``, ``delta_high``, ``p_change``.

    Raises
    ------
    DatasetError
        No ``epoch`` coordinate, or a reference or start epoch that the history passed by
        without observing it (one after the last epoch observed gives an empty table: not
        watched yet).
    ArgumentError
        ``reference="peak"`` with ``direction="either"``; a margin outside [0, 1).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([50, 50, 20, 20], 100, network="n", layer="l", epoch=[0, 0, 1, 1])
    >>> ch = mfr_change(ds, margin=0.1)
    >>> ch[["epoch", "reference"]].values.tolist(), bool(ch["p_change"].iloc[1] > 0.99)
    ([[0, 0], [1, 0]], True)
    >>> ds = ba.make_dataset([30, 30, 60, 60, 40, 40], 100, network="n", layer="l",
    ...                      epoch=[0, 0, 1, 1, 2, 2])
    >>> mfr_change(ds, reference="peak", margin=0.1)["reference"].tolist()
    [0, 1, 1]
    """
    if "epoch" not in ds.coords:
        raise DatasetError("epoch: mfr_change needs a history with an 'epoch' coordinate "
                           "(FiringMonitor.dataset(), or ba.dataset.set_epoch and combine)")
    direction, margin, prob = _check_change(reference, direction, margin, prob)
    frame, d = trajectory_draws(ds, draws=draws, method=method, seed=seed)
    return change_from_draws(frame, d, reference=reference, start=start, margin=margin,
                             direction=direction, prob=prob)


def change_from_draws(frame: pd.DataFrame, draws: dict[str, np.ndarray], *,
                      reference: int | str | None = None, start: int | None = None,
                      margin: float = 0.02, direction: str = "down", prob: float = 0.9
                      ) -> pd.DataFrame:
    """:func:`mfr_change`'s table from :func:`trajectory_draws`' groups and draws.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([50, 20], 100, network="n", layer="l", epoch=[0, 1])
    >>> frame, d = trajectory_draws(ds)
    >>> change_from_draws(frame, d, margin=0.1)["p_change"].round(2).tolist()
    [0.0, 1.0]
    """
    direction, margin, prob = _check_change(reference, direction, margin, prob)
    epochs = np.unique(frame["epoch"])
    start = int(epochs[0]) if start is None else start
    columns = ["network", "layer", "epoch", "reference", "mfr", "delta", "delta_low",
               "delta_high", "p_change"]
    for value, name in ((start, "start"), (reference, "reference")):
        if value is None or (name == "reference" and value == "peak"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ArgumentError(f"{name}: expected an epoch (an integer), got {value!r}")
        if value > epochs[-1]:  # (not reached yet: nothing is watched so far)
            return pd.DataFrame({c: [] for c in columns})
        if value not in epochs:
            raise DatasetError(f"{name}: epoch {value!r} is not in the history (epochs "
                               f"{epochs.tolist()})")
    fixed = start if reference is None else reference
    mfr = draws["mfr"]
    mean = mfr.mean(axis=0)
    sign = 1.0 if direction == "down" else -1.0
    rows = []
    for (net, layer), sub in frame.groupby(["network", "layer"], sort=True):
        sub = sub[sub["epoch"] >= start].sort_values("epoch")
        ref = None
        if fixed != "peak":
            at = sub.index[sub["epoch"] == fixed]
            if len(at) == 0:
                continue
            ref = at[0]
        for i in sub.index:
            if fixed == "peak" and (ref is None or sign * mean[i] > sign * mean[ref]):
                ref = i
            delta = mfr[:, i] - mfr[:, ref]
            if direction == "down":
                p = np.mean(delta < -margin)
            elif direction == "up":
                p = np.mean(delta > margin)
            else:
                p = np.mean(np.abs(delta) > margin)
            dm, lo, hi = _summaries(delta[:, None], prob)
            rows.append({"network": net, "layer": layer, "epoch": int(frame.at[i, "epoch"]),
                         "reference": int(frame.at[ref, "epoch"]), "mfr": float(mean[i]),
                         "delta": float(dm[0]), "delta_low": float(lo[0]),
                         "delta_high": float(hi[0]), "p_change": float(p)})
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["network", "layer", "epoch"], kind="stable").reset_index(drop=True)


@dataclass
class AlarmResult:
    """What a :class:`FiringAlarm` found in a history.

    Attributes
    ----------
    epoch : int or None
        The epoch at which the alarm fired (the last of the ``consecutive`` epochs), or None.
    layer : str or None
        The layer that fired it first (ties: the first in the table's order).
    table : pandas.DataFrame
        :func:`mfr_change`'s table, with an ``alarm`` column (the epochs where the condition
        held for ``consecutive`` epochs in a row).
    """

    epoch: int | None
    layer: str | None
    table: pd.DataFrame = field(repr=False)

    @property
    def fired(self) -> bool:
        """True when the alarm fired."""
        return self.epoch is not None


@dataclass
class FiringAlarm:
    """An alarm on the posterior change of a layer's MFR against an early epoch.

    It fires at the first epoch ``e`` at which, for ``consecutive`` observed epochs in a row
    ending at ``e``, ``P(change beyond margin in direction) >= level`` in some watched layer
    (:func:`mfr_change`). Epochs before ``reference`` are not watched.

    Parameters
    ----------
    margin : float
        Change of MFR that counts (absolute firing probability). The default 0.05 lies
        between the margins calibrated for the digits MLP (0.055) and CNN (0.045) in the
        validation study (README, "Watching training"); calibrate your own on a run known to
        generalize (:func:`calibrate_margin`).
    level : float
        Posterior probability the change must reach.
    direction : {"down", "up", "either"}
    reference : int or "peak" or None
        As for :func:`mfr_change`; the default: each layer's highest level since ``start``.
    start : int, optional
        The first epoch watched (as for :func:`mfr_change`); default 5, since the first
        epochs from the initialization move every rate. None: the first observed.
    consecutive : int
        Epochs in a row the condition must hold.
    layers : sequence of str, optional
        The layers watched (default: all).
    draws, method, seed
        As for :func:`firing_trajectory`.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([50, 50, 48, 48, 20, 20, 20, 20], 100, network="n", layer="l",
    ...                      epoch=[0, 0, 1, 1, 2, 2, 3, 3])
    >>> result = FiringAlarm(margin=0.1, start=0).check(ds)
    >>> result.epoch, result.layer
    (3, 'l')
    """

    margin: float = 0.05
    level: float = 0.95
    direction: str = "down"
    reference: int | str | None = "peak"
    start: int | None = 5
    consecutive: int = 2
    layers: Sequence[str] | None = None
    draws: int = 1000
    method: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.direction, self.margin, self.level = _check_change(
            self.reference, self.direction, self.margin, self.level, "level")
        self.consecutive = check_int(self.consecutive, "consecutive", minimum=1)
        if self.layers is not None:
            if isinstance(self.layers, str):
                self.layers = [self.layers]
            self.layers = [str(x) for x in self.layers]

    def check(self, ds: xr.Dataset) -> AlarmResult:
        """Look for the alarm in a history (call it again as epochs arrive).

        Parameters
        ----------
        ds : xarray.Dataset
            A history with an ``epoch`` coordinate (one network).

        Returns
        -------
        AlarmResult

        Raises
        ------
        DatasetError
            A watched layer that is not in the history, or more than one network.
        """
        networks = np.unique(ds["network"].values.astype(str))
        if len(networks) != 1:
            raise DatasetError(f"network: an alarm watches one network; the history holds "
                               f"{networks.tolist()}")
        _check_layers(self.layers, ds["layer"].values)
        table = mfr_change(ds, reference=self.reference, start=self.start, margin=self.margin,
                           direction=self.direction, draws=self.draws, method=self.method,
                           seed=self.seed)
        return self.check_table(table)

    def check_table(self, table: pd.DataFrame) -> AlarmResult:
        """The alarm on a table of :func:`mfr_change` (or :func:`change_from_draws`) made
        with this alarm's ``reference``, ``start``, ``margin`` and ``direction``.

        Examples
        --------
        >>> import pandas as pd
        >>> t = pd.DataFrame({"layer": ["l"] * 3, "epoch": [0, 1, 2],
        ...                   "p_change": [0.0, 0.97, 0.99]})
        >>> FiringAlarm(consecutive=2).check_table(t).epoch
        2
        """
        if self.layers is not None and len(table):
            _check_layers(self.layers, table["layer"])
            table = table[table["layer"].isin(self.layers)].reset_index(drop=True)
        hit = (table["p_change"] >= self.level).to_numpy()
        alarm = np.zeros(len(table), dtype=bool)
        for idx in table.groupby("layer", sort=False).groups.values():
            idx = sorted(idx, key=lambda j: table.at[j, "epoch"])
            alarm[idx] = consecutive_runs(hit[idx], self.consecutive)
        table = table.assign(alarm=alarm)
        if not alarm.any():
            return AlarmResult(None, None, table)
        first = table[table["alarm"]].sort_values("epoch", kind="stable").iloc[0]
        return AlarmResult(int(first["epoch"]), str(first["layer"]), table)


def calibrate_margin(histories: Sequence[xr.Dataset], *, level: float = 0.95,
                     reference: int | str | None = "peak", start: int | None = None,
                     direction: str = "down", slack: float = 0.01, draws: int = 1000,
                     seed: int = 0) -> float:
    """The margin a :class:`FiringAlarm` needs not to fire on these (generalizing) histories.

    The smallest margin at which ``P(change beyond margin) >= level`` holds at no epoch of
    any layer of any history, plus ``slack``, rounded up to 0.005. Calibrate it on runs known
    to generalize (a run of the same network and data with clean labels, say), then watch
    new runs with it; the false-alarm rate on *other* generalizing runs must be measured
    apart (the validation study does, on held-out seeds).

    Parameters
    ----------
    histories : sequence of xarray.Dataset
        Histories with an ``epoch`` coordinate.
    level, reference, start, direction
        As for :class:`FiringAlarm`.
    slack : float
        Added to the largest change seen.
    draws, seed
        As for :func:`mfr_change`.

    Returns
    -------
    float

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([600, 600, 570, 570, 550, 550], 1000, network="n", layer="l",
    ...                      epoch=[0, 0, 1, 1, 2, 2])
    >>> m = calibrate_margin([ds], slack=0.0)
    >>> bool(0.0 < m < 0.05)
    True
    >>> FiringAlarm(margin=m, start=None).check(ds).fired
    False
    """
    level = check_prob(level, "level")
    if direction == "either":
        raise ArgumentError("direction: calibrate 'down' and 'up' apart")
    slack = check_number(slack, "slack", minimum=0)
    if isinstance(histories, xr.Dataset) or len(histories) == 0:
        raise ArgumentError("histories: expected a non-empty sequence of histories")
    worst = 0.0
    for ds in histories:
        table = mfr_change(ds, reference=reference, start=start, margin=0.0,
                           direction=direction, prob=2 * level - 1, draws=draws, seed=seed)
        # P(delta < -m) >= level  <=>  the level-quantile of delta is below -m
        bound = -table["delta_high"] if direction == "down" else table["delta_low"]
        worst = max(worst, float(bound.max()))
    return round_up_margin(worst + slack)
