"""The frequentist counterpart of a comparison: a percentile bootstrap of each difference.

Each source dataset is resampled independently (inputs when it keeps ``fired``, else
window blocks), the groups within one dataset sharing its resampled inputs; the
resampling and the statistics are those of :mod:`bayesactiv.stats.resampling`. When
an input holds several events (tokens, positions) whole inputs are resampled with
their events, for the rates and for the Fano factor's windows, and the quantity's note
says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.comparison.levels import match_rows
from bayesactiv.stats.resampling import (
    cluster_counts,
    event_clusters,
    group_fano_replicates,
    group_input_fano_replicates,
    group_rate_replicates,
    level_differences,
    percentile_interval,
    resampled_statement,
    window_counts,
    windows_statement,
)

__all__ = ["KAPPA_NOTE", "bootstrap_contrasts", "bootstrap_groups"]

KAPPA_NOTE = (
    "no simple frequentist counterpart: kappa is the concentration of the hierarchical "
    "model's population of firing probabilities, not a statistic of the data (its "
    "method-of-moments estimate is unbounded when the between-unit variance is at or below "
    "the binomial noise)"
)
_RATE_QUANTITIES = ("mfr", "mu", "frac_dead")
_NO_COUNTS = ("needs fired events (record with keep_events=True) or window "
              "counts (window_size=...) to resample inputs")


def _rate_counts(ds: xr.Dataset, per_input: tuple[np.ndarray, np.ndarray] | None
                 ) -> tuple[np.ndarray | None, float | np.ndarray, str]:
    """The items to resample for rates: fired events per input, or counts per window.

    For clustered events (``per_input``: the fired events per input and unit and the
    events per input, :func:`~bayesactiv.stats.resampling.cluster_counts`) the items are
    whole inputs, the events of each input in place of the total.
    """
    if per_input is not None:
        counts, events = per_input
        return counts.astype(np.float64), events.astype(np.float64), "clusters"
    if "fired" in ds.data_vars:
        return ds["fired"].values.astype(np.float64), float(ds.sizes["sample"]), "inputs"
    if "window_count" in ds.data_vars:
        counts = ds["window_count"].values.astype(np.float64)
        return counts, float(counts.shape[0] * int(ds.attrs["window_size"])), "windows"
    return None, 0.0, ""


def _fano_note(ds: xr.Dataset, window_size: int | None) -> str:
    """What the window Fano factor's resampling means: ``""`` for windows over inputs in
    order; for windows of tokens or positions whose inputs are not known (clustered events
    with kept inputs take the per-input Fano factor instead), that the windows are
    resampled one by one."""
    if window_size is not None and "fired" in ds.data_vars:
        size = int(window_size)  # windows built from the kept events
    else:
        size = int(ds.attrs["window_size"])  # the recorded windows
    over = windows_statement(ds, size)
    if over == "inputs in order":
        return ""
    return (f"windows of {size} {over}; windows resampled one by one (the inputs of the "
            "windows' events are not known)")


def _present_groups(
    ds: xr.Dataset, key_tuples: dict[tuple, int], group_by: Sequence[str]
) -> tuple[list[np.ndarray], list[int]]:
    """The unit columns in ``ds`` of each group it holds, and those groups' positions."""
    frame = pd.DataFrame({k: ds[k].values for k in group_by})
    present = [(key, i) for key, i in key_tuples.items()
               if len(frame) and np.any(match_rows(frame, group_by, key))]
    units = [np.flatnonzero(match_rows(frame, group_by, key)) for key, _ in present]
    return units, [i for _, i in present]


def bootstrap_groups(
    dss: list[xr.Dataset],
    groups: pd.DataFrame,
    group_by: Sequence[str],
    quantities: Sequence[str],
    epsilon: float,
    window_size: int | None,
    n_resamples: int,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    """Observed statistic (group,) and replicates (resample, group) per quantity.

    Each source dataset is resampled independently; the groups within one dataset share
    its resampled inputs (or windows). Rates first, then the Fano factor, dataset by
    dataset, from one generator.

    Parameters
    ----------
    dss : list of xarray.Dataset
        The source datasets.
    groups : pandas.DataFrame
        The ``group_by`` keys of each group (the fit's groups, in order).
    group_by : sequence of str
    quantities : sequence of str
    epsilon : float
        Rate below which a unit is dead.
    window_size : int, optional
        Events per window for the Fano factor (see
        :func:`bayesactiv.stats.resampling.window_counts`).
    n_resamples : int
    rng : numpy.random.Generator

    Returns
    -------
    obs, reps, notes : dict
        Per quantity: the observed statistic, its replicates and why it is NaN ("" if not).

    Examples
    --------
    >>> import numpy as np, pandas as pd, bayesactiv as ba
    >>> f = np.random.default_rng(0).random((40, 2)) < 0.3
    >>> ds = ba.make_dataset(f.sum(0), 40, network="n", layer="l", fired=f)
    >>> groups = pd.DataFrame({"network": ["n"], "layer": ["l"]})
    >>> obs, reps, notes = bootstrap_groups([ds], groups, ["network", "layer"], ["mfr", "mf"],
    ...                                     0.01, None, 50, np.random.default_rng(0))
    >>> reps["mfr"].shape, notes["mf"][:21]
    ((50, 1), 'needs window counts: ')
    """
    n_groups = len(groups)
    obs = {q: np.full(n_groups, np.nan) for q in quantities}
    reps = {q: np.full((n_resamples, n_groups), np.nan) for q in quantities}
    notes = {q: "" for q in quantities}
    if "kappa" in notes:
        notes["kappa"] = KAPPA_NOTE
    key_tuples = {tuple(row): i for i, row in enumerate(groups[list(group_by)].itertuples(index=False))}
    rate_qs = [q for q in quantities if q in _RATE_QUANTITIES]
    for ds in dss:
        units, cols = _present_groups(ds, key_tuples, group_by)
        if not units:
            continue
        clusters = event_clusters(ds)
        per_input = None if clusters is None else cluster_counts(ds["fired"].values, clusters)
        if rate_qs:
            counts, total, how = _rate_counts(ds, per_input)
            if counts is not None and counts.shape[0] >= 2:
                o_m, o_d, r_m, r_d = group_rate_replicates(counts, total, units, epsilon, rng,
                                                           n_resamples)
                for q in rate_qs:
                    o, r = (o_d, r_d) if q == "frac_dead" else (o_m, r_m)
                    obs[q][cols] = o
                    reps[q][:, cols] = r
                    if how == "windows":
                        notes[q] = notes[q] or "resampled window blocks (no fired events kept)"
                    elif how == "clusters":
                        notes[q] = notes[q] or f"resampled whole {resampled_statement(ds)}"
            else:
                for q in rate_qs:
                    notes[q] = _NO_COUNTS
        if "mf" in quantities and per_input is not None:
            # the Fano factor of per-input counts, as the clustered model's
            o, r = group_input_fano_replicates(*per_input, units, rng, n_resamples)
            obs["mf"][cols] = o
            reps["mf"][:, cols] = r
            notes["mf"] = notes["mf"] or (f"Fano factor of per-input counts; resampled whole "
                                          f"{resampled_statement(ds)}")
        elif "mf" in quantities:
            wc, why = window_counts(ds, window_size)
            if wc is not None:
                o, r = group_fano_replicates(wc, units, rng, n_resamples)
                obs["mf"][cols] = o
                reps["mf"][:, cols] = r
                notes["mf"] = notes["mf"] or _fano_note(ds, window_size)
            else:
                notes["mf"] = why
    for q in quantities:
        if q != "kappa" and np.isnan(obs[q]).any() and not notes[q]:
            notes[q] = "not defined for some groups (e.g. no unit fired in any window)"
    return obs, reps, notes


def bootstrap_contrasts(
    obs: dict[str, np.ndarray],
    reps: dict[str, np.ndarray],
    notes: dict[str, str],
    table: pd.DataFrame,
    quantities: Sequence[str],
    prob: float,
    n_resamples: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """Bootstrap differences *level minus reference* of each contrast and their intervals.

    Parameters
    ----------
    obs, reps, notes : dict
        From :func:`bootstrap_groups`.
    table : pandas.DataFrame
        The contrasts, with ``level_pos`` and ``ref_pos`` (group positions).
    quantities : sequence of str
    prob : float
        Mass of the percentile interval.
    n_resamples : int
        0: no replicates (the intervals are NaN, the note says why).

    Returns
    -------
    estimate, low, high : numpy.ndarray, shape (contrast, quantity)
    replicates : numpy.ndarray, shape (resample, contrast, quantity)
    notes : dict

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> table = pd.DataFrame({"level_pos": [1], "ref_pos": [0]})
    >>> est, low, high, rep, notes = bootstrap_contrasts(
    ...     {"mfr": np.array([0.1, 0.3])}, {"mfr": np.array([[0.1, 0.3], [0.2, 0.3]])},
    ...     {"mfr": ""}, table, ["mfr"], 0.9, 2)
    >>> est.round(2).tolist(), rep.shape
    ([[0.2]], (2, 1, 1))
    """
    lp, rp = table["level_pos"].to_numpy(), table["ref_pos"].to_numpy()
    pairs = [level_differences(obs[q], reps[q], lp, rp) for q in quantities]
    est = np.stack([e for e, _ in pairs], axis=1)
    rep = np.stack([r for _, r in pairs], axis=2)
    if n_resamples == 0:
        rep = rep[:0]
        notes = {q: notes[q] or "n_resamples=0" for q in quantities}
    low, high = percentile_interval(est, rep, prob)
    return est, low, high, rep, notes
