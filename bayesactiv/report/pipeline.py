"""The pipeline behind ``bayesactiv report``: baselines, one joint fit and, for several
networks, their comparison, written as a report folder.

Examples
--------
>>> import xarray as xr
>>> from bayesactiv.report.pipeline import rules_subtitle
>>> rules_subtitle(["net"], [xr.Dataset(attrs={"threshold_rule": "activation > 0"})], None)
'bayesactiv report of 1 activation dataset; fired = activation > 0.'
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.bayes import fit as fit_model
from bayesactiv.comparison import compare, threshold_mismatch
from bayesactiv.data import check_int, check_prob, check_seed, combine, validate
from bayesactiv.report.bootstrap import layer_bootstrap
from bayesactiv.report.document import Report
from bayesactiv.report.errors import ReportError, check_out_dir
from bayesactiv.report.markdown import slugify
from bayesactiv.report.sections import group_frame, layer_section, threshold_rule, unit_frame
from bayesactiv.report.tables import UNIT_ID_PARTS
from bayesactiv.viz.layers import forest_figure
from bayesactiv.viz.trajectory import layer_trajectories_figure

__all__ = ["TRAJECTORY_DRAWS", "check_out_dir", "dataset_name", "report_from_datasets",
           "rules_subtitle", "training_trajectory"]

#: Posterior draws of the "Training trajectory" section (Monte Carlo error of a 90% bound
#: about a sixth of the interval's width: enough for a figure, and a report stays fast).
TRAJECTORY_DRAWS = 400


def dataset_name(ds: xr.Dataset, position: int) -> str:
    """A short name for a dataset in the report: its networks, else its position.

    Examples
    --------
    >>> import xarray as xr
    >>> dataset_name(xr.Dataset(), 1)
    'dataset 2'
    """
    networks = list(dict.fromkeys(ds["network"].values.astype(str))) if "network" in ds.coords else []
    return ", ".join(networks) if networks else f"dataset {position + 1}"


def rules_subtitle(names: Sequence[str], datasets: Sequence[xr.Dataset],
                   mismatch: str | None) -> str:
    """The report's subtitle: how many datasets, and the firing rule of each (once if shared)."""
    head = f"bayesactiv report of {len(datasets)} activation dataset{'s' if len(datasets) > 1 else ''}"
    if mismatch is None:
        return f"{head}; fired = {threshold_rule(datasets[0])}."
    rules = "; ".join(f"{name}: fired = {threshold_rule(ds)}"
                      for name, ds in zip(names, datasets, strict=True))
    return f"{head}, thresholded differently ({rules})."


def report_from_datasets(
    datasets: Sequence[xr.Dataset],
    out_dir: str | os.PathLike,
    *,
    prob: float = 0.9,
    seed: int | None = 0,
    progress: bool = True,
    draws: int = 1000,
    chains: int = 2,
    n_resamples: int = 1000,
) -> Path:
    """Baselines, a joint fit and (for several networks) a comparison, written as a report.

    What ``bayesactiv report`` runs on saved activation datasets: per network a layer
    table (posterior MFR/MF/fraction dead beside plug-in values with bootstrap
    intervals) and a per-unit table; per layer the detailed :func:`layer_section`; with
    two or more networks, their posterior differences against the first. A history
    (an ``epoch`` coordinate with more than one epoch, as a
    :class:`~bayesactiv.monitor.FiringMonitor` saves) adds a "Training trajectory"
    section: per network, every layer's MFR, fraction of dead units and MF against epoch
    (:func:`training_trajectory`), and the table behind it (``tables/trajectory.csv``).

    Parameters
    ----------
    datasets : sequence of xarray.Dataset
        Activation datasets (combined with :func:`bayesactiv.data.combine`).
    out_dir : str or path-like
        The report folder.
    prob : float
        Interval mass.
    seed : int, optional
    progress : bool
        One line per step on stderr.
    draws, chains : int
        Posterior draws per chain and chains.
    n_resamples : int
        Bootstrap resamples.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> path = report_from_datasets([ds], tempfile.mkdtemp() + "/report", progress=False,
    ...                             draws=2000, n_resamples=200)
    >>> sorted(p.name for p in path.iterdir())
    ['figures', 'report.html', 'report.md', 'tables']
    >>> sorted(p.name for p in (path / "tables").iterdir() if p.suffix == ".csv")
    ['dead_saturated_net_fc1.csv', 'layers.csv', 'units_net.csv']
    """
    prob = check_prob(prob)
    seed = check_seed(seed)
    draws = check_int(draws, "draws", minimum=1)
    chains = check_int(chains, "chains", minimum=1)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    datasets, names, mismatch = _checked_datasets(datasets)

    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    data = combine(datasets)
    group_by = ("network", "layer") + (("epoch",) if "epoch" in data.coords else ())
    say(f"fit: {data.sizes['unit']} units, groups by {', '.join(group_by)}")
    # the default model: clustered_beta_binomial for tokens and positions, else beta_binomial
    fit = fit_model(data, group_by=group_by, draws=draws, chains=chains, seed=seed)
    rep = Report("Firing of hidden units", subtitle=rules_subtitle(names, datasets, mismatch))
    settings = {"prob": prob, "seed": seed, "n_resamples": n_resamples}
    _overview(rep, datasets, fit, group_by, mismatch, draws=draws, chains=chains, **settings)
    if any(_is_history(ds) for ds in datasets):
        say("training trajectory")
        _trajectory_section(rep, datasets, prob=prob, seed=seed)
    networks = list(dict.fromkeys(data["network"].values.astype(str)))
    if len(networks) > 1 and "epoch" not in group_by:
        say("compare networks")
        _comparison(rep, fit, networks[0], mismatch, **settings)
    rep.section("Networks and layers")
    for ds in datasets:
        for network in dict.fromkeys(ds["network"].values.astype(str)):
            say(f"report {network}")
            _network_section(rep, ds, fit, network, **settings)
    path = rep.write(out_dir)
    say(f"report: {(Path(path) / 'report.html').resolve()}")
    return path


def _checked_datasets(datasets: Sequence[xr.Dataset] | xr.Dataset
                      ) -> tuple[list[xr.Dataset], list[str], str | None]:
    """The validated datasets, their names, and how their threshold rules differ (warned)."""
    if isinstance(datasets, xr.Dataset):
        datasets = [datasets]
    datasets = [validate(ds) for ds in datasets]
    if not datasets:
        raise ReportError("datasets: nothing to report")
    names = [dataset_name(ds, i) for i, ds in enumerate(datasets)]
    mismatch = threshold_mismatch(names, datasets)
    if mismatch is not None:
        warnings.warn(f"threshold_rule: {mismatch}", UserWarning, stacklevel=3)
    return datasets, names, mismatch


def _overview(rep: Report, datasets: Sequence[xr.Dataset], fit: Any, group_by: tuple[str, ...],
              mismatch: str | None, *, prob: float, seed: int, n_resamples: int, draws: int,
              chains: int) -> None:
    """The overview: the model and intervals in words, and the per-group table."""
    pct = f"{100 * prob:g}%"
    rep.section("Overview")
    if mismatch is not None:
        rep.warning(mismatch[0].upper() + mismatch[1:] + ".")
    clustered = fit.model == "clustered_beta_binomial"
    model = ("Hierarchical beta-binomial model of clustered events (tokens or positions: each "
             "unit's counts divided by its design effect, the events of one input being no "
             "independent trials)" if clustered else "Hierarchical beta-binomial model")
    rep.text(
        f"{model} per {' × '.join(group_by)} ({chains} chains × "
        f"{draws} draws); intervals are **{pct} equal-tailed** posterior intervals, beside Wald "
        f"and percentile-bootstrap intervals ({n_resamples} resamples"
        f"{' of whole inputs' if clustered else ''}) at **{pct}**."
    )
    gf = group_frame(fit, prob, group_by)
    boot = pd.concat([layer_bootstrap(ds, n_resamples=n_resamples, prob=prob, seed=seed)
                      for ds in datasets], ignore_index=True)
    rep.table(gf.merge(boot, on=["network", "layer"], how="left") if "epoch" not in group_by
              else gf, "layers", max_rows=80,
              caption=f"Per group: posterior mean, low and high end of the {pct} ETI of MFR, MF, "
                      f"fraction of dead units, μ and κ, and the plug-in MFR and MF with "
                      f"{pct} bootstrap intervals.")


def _comparison(rep: Report, fit: Any, reference: str, mismatch: str | None, *, prob: float,
                seed: int, n_resamples: int) -> None:
    """The networks' posterior differences against ``reference``: forest plot, table, verdicts."""
    pct = f"{100 * prob:g}%"
    cmp = compare(fit, by="network", reference=reference, prob=prob, seed=seed,
                  n_resamples=n_resamples)
    df = cmp.to_dataframe().reset_index()
    rep.section("Comparison")
    if mismatch is not None:
        rep.warning("These differences mix the networks with their threshold rules (see "
                    "the overview).")
    if "layer" in df:
        rep.figure(forest_figure(df, prob=prob), "compare_forest",
                   caption=f"Differences against {reference}: posterior {pct} ETI (blue) "
                           f"and bootstrap {pct} (orange).")
    several = df["level"].astype(str).nunique() > 1
    shown = [c for c in ("level", "layer", "quantity", "mean", "low", "high", "pd",
                         "boot_estimate", "boot_low", "boot_high", "boot_note")
             if c in df and (c != "level" or several)]
    level = "level" if several else str(df["level"].iloc[0])
    rep.table(df, "compare", max_rows=60, show=shown,
              caption=f"Posterior difference {level} − {reference} per layer: mean, {pct} "
                      "ETI and probability of direction, beside the plug-in difference and "
                      f"its {pct} bootstrap interval. The CSV also holds P(> 0), P(< 0) and "
                      "the verdicts below.")
    rep.text("\n".join(f"- {v}" for v in df["verdict"]))


def _network_section(rep: Report, ds: xr.Dataset, fit: Any, network: str, *, prob: float,
                     seed: int, n_resamples: int) -> None:
    """One network: its per-unit table, then the detailed section of each layer."""
    pct = f"{100 * prob:g}%"
    sub = ds.isel(unit=np.flatnonzero(ds["network"].values.astype(str) == network))
    units = unit_frame(sub, fit, prob=prob, n_resamples=n_resamples, seed=seed)
    rep.section(network, level=3)
    rep.table(units.drop(columns="network"), f"units_{re.sub(r'[^A-Za-z0-9_.-]', '_', network)}",
              max_rows=15, show=[c for c in units.columns if c not in UNIT_ID_PARTS],
              caption=f"Per-unit firing probability: posterior mean and {pct} ETI, "
                      f"P(dead) = P(θ < {float(getattr(fit, 'epsilon', 0.01)):g}), Wald "
                      f"and bootstrap {pct} intervals (the CSV also holds each unit's "
                      "layer and index).")
    if "epoch" in sub.coords:
        return
    for layer in dict.fromkeys(sub["layer"].values.astype(str)):
        layer_section(rep, sub, units, fit, network, layer, prob=prob)


def _is_history(ds: xr.Dataset) -> bool:
    """True when ``ds`` holds more than one epoch (a monitor's history)."""
    return "epoch" in ds.coords and len(np.unique(ds["epoch"].values)) > 1


def _recording_order(ds: xr.Dataset) -> dict[str, list[str]]:
    """Each network's layers, networks and layers in the order they first appear."""
    networks = ds["network"].values.astype(str)
    layers = ds["layer"].values.astype(str)
    return {net: list(dict.fromkeys(layers[networks == net])) for net in dict.fromkeys(networks)}


def training_trajectory(ds: xr.Dataset, *, prob: float = 0.9, draws: int = TRAJECTORY_DRAWS,
                        seed: int = 0) -> pd.DataFrame:
    """:func:`~bayesactiv.monitor.indicator.firing_trajectory` in recording order.

    The rows of each network, then each of its layers, in the order they first appear in
    ``ds`` (the order the monitor recorded them, not by name), and by epoch.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset, usually a monitor's history (``epoch`` coordinate).
    prob : float
        Interval mass.
    draws : int
        Posterior draws.
    seed : int

    Returns
    -------
    pandas.DataFrame
        The columns of ``firing_trajectory``.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([40, 60, 10, 12, 30, 50, 4, 6], 100, network="net",
    ...                      layer=["fc2", "fc2", "fc1", "fc1"] * 2, epoch=[0] * 4 + [1] * 4)
    >>> training_trajectory(ds, draws=100)[["layer", "epoch"]].values.tolist()
    [['fc2', 0], ['fc2', 1], ['fc1', 0], ['fc1', 1]]
    """
    from bayesactiv.monitor.indicator import firing_trajectory  # (bayesactiv.monitor needs torch)

    table = firing_trajectory(ds, prob=prob, draws=draws, seed=seed)
    order = _recording_order(ds)
    rank = {(net, layer): (i, j) for i, (net, layers) in enumerate(order.items())
            for j, layer in enumerate(layers)}
    keys = [rank[(net, layer)] for net, layer in zip(table["network"], table["layer"],
                                                      strict=True)]
    position = pd.DataFrame(keys, columns=["_net", "_layer"], index=table.index)
    return (pd.concat([table, position], axis=1)
            .sort_values(["_net", "_layer", "epoch"], kind="stable")
            .drop(columns=["_net", "_layer"]).reset_index(drop=True))


#: Headers of the trajectory table (its ``mfr`` and ``mf`` are posterior means, not the
#: plug-in values the other tables' columns of these names hold).
_TRAJECTORY_HEADERS = {
    "units": "units", "inputs": "probe inputs", "method": "MFR interval",
    "mfr": "MFR mean", "mfr_low": "MFR low", "mfr_high": "MFR high",
    "frac_dead": "fraction dead mean", "frac_dead_low": "fraction dead low",
    "frac_dead_high": "fraction dead high", "frac_silent": "never fired",
    "mf": "MF mean", "mf_low": "MF low", "mf_high": "MF high", "mf_plugin": "MF plug-in",
    "mf_null": "MF null",
}


def _section_id(rep: Report, base: str) -> str:
    """``base`` as a section id, numbered when another section has it already."""
    base = slugify(base)
    taken = set(rep.section_ids())
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    return slug


def _figure_name(network: str, taken: set[str]) -> str:
    base = "trajectory_" + re.sub(r"[^A-Za-z0-9_.-]", "_", network)
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _trajectory_section(rep: Report, datasets: Sequence[xr.Dataset], *, prob: float,
                        seed: int | None) -> None:
    """Per network of each history, its layers' firing against epoch, and the table."""
    pct = f"{100 * prob:g}%"
    seed = 0 if seed is None else seed
    rep.section("Training trajectory")
    rep.text(
        f"Each layer's firing at every observed epoch, from the saved history alone (no "
        f"model fit; {TRAJECTORY_DRAWS} posterior draws): **MFR**, the fraction of "
        f"(unit, event) pairs that fired; the **fraction of dead units** (firing probability "
        f"below 0.01, each unit's rate from its layer's empirical-Bayes beta posterior); and, "
        f"for histories recorded with `window_size`, **MF**, the mean Fano factor of the "
        f"window counts, beside its null of independent firing (dashed). Lines are posterior "
        f"means, bands **{pct} equal-tailed** intervals."
    )
    networks = [net for ds in datasets if _is_history(ds) for net in _recording_order(ds)]
    if any(net.endswith(":train") for net in networks):
        rep.text("A training-batch history (network `<name>:train`) counts the training "
                 "batches themselves, while the weights change within the epoch: its epochs "
                 "see different inputs, unlike the probe's.")
    tables, taken = [], set()
    for ds in datasets:
        if not _is_history(ds):
            continue
        table = training_trajectory(ds, prob=prob, seed=seed)
        tables.append(table)
        for network, layers in _recording_order(ds).items():
            rows = table[table["network"] == network]
            inputs = int(rows["inputs"].iloc[0])
            how = (f"MFR intervals by the Bayesian bootstrap over the probe's {inputs} inputs "
                   "(the same weights at every epoch)" if (rows["method"] == "inputs").all()
                   else "MFR intervals with the units taken as independent (no events kept: "
                   "too narrow when the units move together)")
            epochs = rows["epoch"].unique()
            rep.section(network, level=3, id=_section_id(rep, f"trajectory-{network}"))
            rep.figure(layer_trajectories_figure(rows, prob=prob, network=network,
                                                 layers=layers),
                       _figure_name(network, taken),
                       caption=f"{network}: {len(layers)} layer{'s' if len(layers) > 1 else ''} "
                               f"over {len(epochs)} epochs ({int(epochs.min())} to "
                               f"{int(epochs.max())}); {how}.")
    table = pd.concat(tables, ignore_index=True)
    shown = [c for c in ("network", "layer", "epoch", "units", "mfr", "mfr_low", "mfr_high",
                         "frac_dead", "frac_dead_low", "frac_dead_high", "mf", "mf_low",
                         "mf_high", "mf_null") if c in table]
    rep.table(table, "trajectory", max_rows=40, show=shown, headers=_TRAJECTORY_HEADERS,
              caption=f"Per network, layer and epoch: posterior mean and {pct} ETI of MFR, "
                      f"fraction of dead units and MF, and MF's null. The CSV also holds the "
                      f"probe's size, the method of the MFR interval and the fraction of "
                      f"units that never fired.")
