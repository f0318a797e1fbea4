"""The report of the memorization study: one builder per report section.

:func:`build_report` turns a finished study (recordings, fits, comparisons; see
:class:`bayesactiv.studies.memorization.MemorizationStudy`) into a
:class:`~bayesactiv.report.Report`, section by section, in this order: overview,
memorization comparison, per-layer MFR and MF, MF against its binomial null, window-count
models, threshold sensitivity, training versus held-out inputs, epoch trajectories,
networks and layers, methods.

Examples
--------
>>> from bayesactiv.studies.memorization_report import SECTIONS
>>> [f.__name__ for f in SECTIONS][:3]
['_overview', '_comparison', '_per_layer']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data import combine
from bayesactiv.data.checks import ArgumentError
from bayesactiv.report import UNIT_ID_PARTS, Report, layer_bootstrap, layer_section, unit_frame
from bayesactiv.report.sections import group_frame
from bayesactiv.stats import baselines
from bayesactiv.viz import plots
from bayesactiv.viz.layers import forest_figure
from bayesactiv.viz.trajectory import trajectory_figure

__all__ = ["SECTIONS", "build_report"]


@dataclass
class _Build:
    """What the sections of one report share: the progress printer and the per-network
    bootstrap of the test inputs (used by the per-layer table and by the train/test table)."""

    study: Any
    log: Callable[[str], Any] | None = None
    _test_boot: dict[str, pd.DataFrame] = field(default_factory=dict)

    def note(self, text: str) -> None:
        if self.log is not None:
            self.log(text)

    def test_bootstrap(self, name: str) -> pd.DataFrame:
        """:func:`layer_bootstrap` of network ``name``'s test recording (computed once)."""
        if name not in self._test_boot:
            plan = self.study.plan
            self._test_boot[name] = layer_bootstrap(self.study.test[name],
                                                    n_resamples=plan.n_resamples,
                                                    prob=plan.prob, seed=self.study.seed)
        return self._test_boot[name].copy()


def build_report(study: Any, log: Callable[[str], Any] | None = None) -> Report:
    """The study's report: a title, then each section of :data:`SECTIONS` in turn.

    Parameters
    ----------
    study : MemorizationStudy
        A study that has run (:meth:`~bayesactiv.studies.memorization.MemorizationStudy.run`).
    log : callable, optional
        Called with one line of text as each section is done (and, in the long sections,
        as each network is), e.g. ``print``; None (default): silent.

    Returns
    -------
    Report

    Examples
    --------
    The study must have run (minutes); its argument checks come first:

    >>> build_report(object(), log="stderr")
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: log: expected a callable (e.g. print) or None, got 'stderr'
    """
    if log is not None and not callable(log):
        raise ArgumentError(f"log: expected a callable (e.g. print) or None, got {log!r}")
    plan = study.plan
    rep = Report(
        "How hidden units fire in generalizing and memorizing networks",
        subtitle=(
            "Bayesian analysis of hidden-unit firing (bayesactiv demo"
            f"{', quick run' if plan == type(plan).quick() else ''}): digits networks trained "
            "on true labels (generalizing) and on shuffled labels (memorizing)."
        ),
    )
    build = _Build(study, log)
    for i, add_section in enumerate(SECTIONS):
        t0 = time.perf_counter()
        add_section(rep, study, build)
        build.note(f"report section {i + 1}/{len(SECTIONS)} "
                   f"{add_section.__name__.strip('_').replace('_', ' ')} "
                   f"({time.perf_counter() - t0:.1f} s)")
    return rep


def _network_names(study: Any) -> list[str]:
    """Every network of the study: per architecture the generalizing, then the memorizing one."""
    return [n for a in study.plan.architectures for n in study.networks(a)]


# --------------------------------------------------------------------------- tables


def _pct(prob: float) -> str:
    return f"{100 * prob:g}%"


def _layer_table(study: Any, name: str, build: _Build) -> pd.DataFrame:
    """Per-layer MFR/MF/fraction dead: posterior (joint fit) beside the bootstrap."""
    plan = study.plan
    arch = name.removeprefix("digits-").removesuffix("-memorize")
    gf = group_frame(study.fits[arch], plan.prob, ("network", "layer"))
    gf = gf[gf["network"].astype(str) == name]
    boot = build.test_bootstrap(name)
    merged = boot.merge(gf, on=["network", "layer"], how="left")
    order = {lay: i for i, lay in enumerate(dict.fromkeys(study.test[name]["layer"].values))}
    merged = merged.sort_values("layer", key=lambda s: s.map(order)).reset_index(drop=True)
    return merged.rename(columns={"mfr": "mfr_plugin", "mf": "mf_plugin"})


def _mf_null_table(study: Any, names: list[str]) -> pd.DataFrame:
    """Plug-in MF beside its binomial null and a permutation p-value, per network and layer."""
    rows = []
    for name in names:
        ds = study.test[name]
        fano = baselines.fano_factor(ds)
        perm = baselines.order_permutation_test(ds, n_permutations=study.plan.n_permutations,
                                                seed=study.seed)
        for g in range(fano.sizes["group"]):
            layer = str(fano["group_layer"].values[g])
            if layer == "*":
                continue
            mf, null = float(fano["mf"].values[g]), float(fano["mf_null"].values[g])
            rows.append({"network": name, "layer": layer, "MF": mf, "MF null": null,
                         "MF / null": mf / null if null > 0 else float("nan"),
                         "permutation p": float(perm["mf_p_value"].values[g]),
                         "units with a Fano factor": int(fano["n_fano"].values[g])})
    return pd.DataFrame(rows)


def _plugin_by(ds: xr.Dataset, keys: list[str]) -> pd.DataFrame:
    """Plug-in MFR and MF (window Fano factor) per combination of unit coordinates."""
    frame = pd.DataFrame({k: ds[k].values for k in keys})
    rate = ds["count"].values / np.maximum(ds["n"].values, 1)
    unit_fano = baselines.fano(ds["window_count"].values) if "window_count" in ds else (
        np.full(rate.shape, np.nan))
    rows = []
    for key, idx in frame.groupby(keys, sort=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        defined = unit_fano[idx][np.isfinite(unit_fano[idx])]  # units that fired in a window
        rows.append({**dict(zip(keys, key, strict=True)), "mfr_plugin": float(rate[idx].mean()),
                     "mf_plugin": float(defined.mean()) if defined.size else float("nan")})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- sections


def _overview(rep: Report, study: Any, build: _Build) -> None:
    """Overview: the firing rule, models and intervals in words, the networks, the key results."""
    plan = study.plan
    pct = _pct(plan.prob)
    w = plan.window_size
    names = _network_names(study)
    from bayesactiv import zoo

    rep.section("Overview")
    rep.text(
        "A unit *fires* on an input when its ReLU activation is **> 0** (the paper's rule; "
        f"other rules in *Threshold sensitivity*). Inputs are the {study.test[names[0]].sizes['sample']} "
        "held-out (test) digits in a fixed order; window counts use consecutive windows of "
        f"**{w} inputs**. MFR is the mean over a layer's units of the firing probability; MF is "
        "the mean Fano factor of window counts.\n\n"
        f"- Bayesian: hierarchical beta-binomial model per network × layer, fitted jointly "
        f"for each generalizing/memorizing pair ({plan.chains} chains × {plan.draws} draws, "
        f"nutpie); intervals are **{pct} equal-tailed** posterior intervals (ETI).\n"
        f"- Frequentist: Wald and percentile-bootstrap intervals ({plan.n_resamples} "
        f"resamples of the inputs; MF resamples windows), also at **{pct}**.\n"
        "- The model-implied MF of a beta-binomial unit is 1 − θ (binomial windows); the "
        "plug-in MF from the windows is shown beside it: values above the model's mean "
        "bursty firing (inputs that make a unit fire cluster in time), below it regular firing."
    )
    rep.table(pd.DataFrame(study.cards), "networks",
              caption="The reference networks (accuracies at the final checkpoint).")
    findings = []
    for arch in plan.architectures:
        cmp = study.comparisons[arch]
        df = cmp.to_dataframe().reset_index()
        last = zoo.last_hidden_layer(study.networks(arch)[0])
        if "layer" in df:
            df = df[df["layer"].astype(str) == last]
        for _, row in df[df["quantity"].isin(["mfr", "mf"])].iterrows():
            line = row["verdict"]
            if row["quantity"] == "mf" and np.isfinite(row.get("boot_estimate", np.nan)):
                line += (f" Plug-in window Fano difference {row['boot_estimate']:.3f} "
                         f"({pct} bootstrap {row['boot_low']:.3f} to {row['boot_high']:.3f}).")
            findings.append(line)
    rep.text("**Key results (last hidden layer, memorizing − generalizing):**\n\n"
             + "\n".join(f"- {v}" for v in findings))


def _comparison(rep: Report, study: Any, build: _Build) -> None:
    """Memorizing − generalizing per layer: forest plot, table and verdicts per architecture."""
    plan = study.plan
    pct = _pct(plan.prob)
    rep.section("Memorization comparison")
    rep.text(
        "For each architecture the generalizing and memorizing networks are fitted jointly, and "
        "the posterior of each difference *memorizing − generalizing* is summarised per layer "
        f"by its mean, a {pct} ETI and the probability of direction (pd). The bootstrap columns "
        "are the frequentist counterpart (percentile bootstrap of the plug-in difference, "
        "resampling inputs within each network). A verdict calls a difference higher or lower "
        "only when its interval excludes 0."
    )
    for arch in plan.architectures:
        gen, mem = study.networks(arch)
        cmp = study.comparisons[arch]
        rep.section(f"{mem} vs {gen}", level=3, id=f"compare-{arch}")
        df = cmp.to_dataframe().reset_index()
        rep.figure(forest_figure(df, prob=plan.prob, title=f"{mem} − {gen}"),
                   f"compare_{arch}_forest",
                   caption=f"Differences {mem} − {gen} per layer: blue the posterior mean and "
                           f"{pct} ETI, orange the plug-in difference and its {pct} bootstrap "
                           "interval; dashed line at 0. MF: the model's MF is 1 − θ "
                           "(binomial windows), the bootstrap's is the window Fano factor.")
        keep = [c for c in ("layer", "quantity", "mean", "low", "high", "pd", "boot_estimate",
                            "boot_low", "boot_high", "boot_note", "verdict") if c in df]
        rep.table(df[keep], f"compare_{arch}", max_rows=60, show=keep[:-1],
                  caption="Posterior difference (mean, ETI, pd) and bootstrap counterpart; "
                          "the verdicts follow (and are in the CSV).")
        rep.text("\n".join(f"- {v}" for v in df["verdict"][df["quantity"].isin(
            ["mfr", "mf", "frac_dead"])]))


def _per_layer(rep: Report, study: Any, build: _Build) -> None:
    """Per-layer MFR/MF: posterior beside plug-in, and the dead/saturated units per layer."""
    plan = study.plan
    pct = _pct(plan.prob)
    w = plan.window_size
    names = _network_names(study)
    rep.section("Per-layer MFR and MF")
    rep.text(
        f"Per layer: posterior mean and {pct} ETI of MFR, MF (model-implied) and the fraction "
        "of dead units (θ < 0.01) from the joint fit, beside the plug-in MFR and MF (window "
        f"Fano factor, windows of {w}) with {pct} percentile-bootstrap intervals. κ is the "
        "concentration of a layer's firing probabilities: small κ means units near 0 and 1."
    )
    layer_frames = {n: _layer_table(study, n, build) for n in names}
    rep.table(pd.concat(layer_frames.values(), ignore_index=True), "layers", max_rows=80)
    rep.figure(plots.plot_dead_saturated(combine([study.test[n] for n in names])),
               "dead_saturated", caption="Dead (never fired) and saturated (always fired) "
               "units per layer on the test inputs.")


def _mf_null(rep: Report, study: Any, build: _Build) -> None:
    """MF against its binomial null, with a permutation test."""
    plan = study.plan
    names = _network_names(study)
    rep.section("MF against its binomial null")
    rep.text(
        "A Fano factor of 1 is the Poisson value, but one input gives at most one event: for "
        "independent firing with probability p in random order, window counts of W of the N "
        "inputs have Fano factor (1 − p)(N − W)/(N − 1), not 1. So MF says something beyond MFR "
        "only relative to this null. Per layer: the plug-in MF (mean over units with a defined "
        "Fano factor), the mean of the units' nulls, their ratio, and a permutation test that "
        f"shuffles the input order ({plan.n_permutations} permutations; p-value of MF under "
        "permutation, two-sided). A ratio near 1 with a large p-value means the window counts "
        "carry no information beyond the firing rates."
    )
    rep.table(_mf_null_table(study, names), "mf_null", max_rows=80)


def _window_models(rep: Report, study: Any, build: _Build) -> None:
    """Poisson, negative binomial or binomial windows, ranked by PSIS-LOO."""
    plan = study.plan
    w = plan.window_size
    rep.section("Poisson or not: window-count models")
    rep.text(
        "Seed 002 models firing as a Poisson process. One input gives at most one event, so a "
        f"window of {w} inputs holds at most {w} events; the careful alternatives are the "
        "negative binomial (over-dispersed windows) and the binomial per window (bounded). Each "
        "model is fitted to the window counts of the last hidden layer of both networks of an "
        "architecture (units share a Gamma or Beta prior per network) and ranked by PSIS-LOO "
        "over units (`bayesactiv.compare_models`): higher elpd predicts held-out units better; "
        "elpd_diff and its standard error dse are against the best model; a max Pareto k above "
        "0.7 would make a model's LOO estimate unreliable. The convergence of these fits is "
        "listed with the others in *Methods and run*."
    )
    rep.table(pd.concat(study.window_tables.values(), ignore_index=True), "window_models")


def _threshold_sensitivity(rep: Report, study: Any, build: _Build) -> None:
    """The last hidden layer under other firing rules: plug-in values and differences."""
    plan = study.plan
    pct = _pct(plan.prob)
    names = _network_names(study)
    rep.section("Threshold sensitivity")
    rep.text(
        "The paper leaves its threshold unstated, so the last hidden layer is recorded again "
        "with two other rules: fired when the activation exceeds **50% of the unit's maximum** "
        "(over the test inputs), and when it exceeds the **unit's own 90% quantile**. Under the "
        "quantile rule a unit fires on at most about 10% of the inputs by construction (less when "
        "ties at 0 fill its 90% quantile), so its MFR mostly reflects how many units are "
        "silent 90% of the time, and MF (how the firing clusters in time) carries the rest. "
        f"Plug-in values with {pct} bootstrap intervals."
    )
    sens_rows = []
    for name in names:
        for rule, ds in study.sens[name].items():
            row = layer_bootstrap(ds, n_resamples=plan.n_resamples, prob=plan.prob,
                                  seed=study.seed).iloc[0].to_dict()
            sens_rows.append({"rule": rule, **row})
    sens = pd.DataFrame(sens_rows)
    rep.table(sens, "threshold_sensitivity", max_rows=60)
    diff_rows = []
    for arch in plan.architectures:
        gen, mem = study.networks(arch)
        for rule in study.sens[gen]:
            a = sens[(sens["network"] == gen) & (sens["rule"] == rule)].iloc[0]
            b = sens[(sens["network"] == mem) & (sens["rule"] == rule)].iloc[0]
            diff_rows.append({"architecture": arch, "rule": rule,
                              "MFR memorizing − generalizing": b["mfr"] - a["mfr"],
                              "MF memorizing − generalizing": b["mf"] - a["mf"]})
    rep.table(pd.DataFrame(diff_rows), "threshold_sensitivity_differences",
              caption="Plug-in differences per rule: does the direction of the memorization "
                      "effect depend on the threshold?")


def _train_vs_test(rep: Report, study: Any, build: _Build) -> None:
    """The same networks on their training inputs."""
    plan = study.plan
    pct = _pct(plan.prob)
    w = plan.window_size
    names = _network_names(study)
    if plan.train_split:
        rep.section("Training versus held-out inputs")
        rep.text(
            "The same networks recorded on their training inputs (threshold 0, windows of "
            f"{w}). A memorizing network has seen these exact inputs with shuffled labels; "
            f"plug-in MFR and MF with {pct} bootstrap intervals."
        )
        rows = []
        for name in names:
            for split in ("test", "train"):
                b = build.test_bootstrap(name) if split == "test" else layer_bootstrap(
                    study.train[name], n_resamples=plan.n_resamples, prob=plan.prob,
                    seed=study.seed)
                b.insert(2, "split", split)
                rows.append(b)
        rep.table(pd.concat(rows, ignore_index=True), "train_vs_test", max_rows=80)


def _epochs(rep: Report, study: Any, build: _Build) -> None:
    """The last hidden layer over training, per architecture."""
    plan = study.plan
    pct = _pct(plan.prob)
    rep.section("Epoch trajectories")
    rep.text(
        "The last hidden layer recorded on the test inputs at the saved checkpoints of each "
        "network (epoch 0 = initial weights) and fitted jointly per architecture (groups = "
        f"network × epoch). Lines: posterior means; bands: {pct} ETI; crosses: plug-in values. "
        "Memorizing networks train longer (up to 200 epochs) to fit the shuffled labels."
    )
    for arch in plan.architectures:
        gf = group_frame(study.epoch_fits[arch], plan.prob, ("network", "layer", "epoch"),
                         ("mfr", "mf", "frac_dead"))
        plug = _plugin_by(study.epoch_data[arch], ["network", "layer", "epoch"])
        table = gf.merge(plug, on=["network", "layer", "epoch"], how="left")
        table = table.sort_values(["network", "epoch"]).reset_index(drop=True)
        rep.section(f"digits-{arch} over training", level=3, id=f"epochs-{arch}")
        rep.figure(trajectory_figure(table, plug, arch, plan.prob), f"epochs_{arch}",
                   caption=f"MFR, MF and fraction of dead units of the last hidden layer vs "
                           f"epoch; blue generalizing, red memorizing; bands {pct} ETI.")
        rep.table(table, f"epochs_{arch}", max_rows=40)


def _networks_and_layers(rep: Report, study: Any, build: _Build) -> None:
    """Per network its per-unit table, per layer the detailed section."""
    plan = study.plan
    pct = _pct(plan.prob)
    names = _network_names(study)
    from bayesactiv import zoo

    rep.section("Networks and layers")
    rep.text(
        "One subsection per network and layer: the firing posterior of every unit (sorted "
        f"caterpillar plot; blue the {pct} posterior ETI, orange the {pct} percentile "
        "bootstrap interval, open circle the observed rate), the dead and saturated units with "
        "their posterior probability, the distribution of activations, the co-activation "
        "matrix and a unit view. Per-unit tables hold every unit (CSV). In a convolution "
        "layer a unit is a channel, and it fires on an input when it fires at any position "
        "(`spatial=\"any\"`), so most channels fire on every input (saturated)."
    )
    for i, name in enumerate(names):
        t0 = time.perf_counter()
        arch = name.removeprefix("digits-").removesuffix("-memorize")
        ds = study.test[name]
        units = unit_frame(ds, study.fits[arch], prob=plan.prob, n_resamples=plan.n_resamples,
                           seed=study.seed)
        rep.section(name, level=3)
        rep.table(units.drop(columns="network"), f"units_{name}", max_rows=15,
                  show=[c for c in units.columns if c not in UNIT_ID_PARTS],
                  caption=f"Per-unit firing probability: posterior mean and {pct} ETI, "
                          f"P(dead) = P(θ < 0.01), Wald and bootstrap {pct} intervals (the CSV "
                          "also holds each unit's layer and index).")
        layers = list(dict.fromkeys(ds["layer"].values.astype(str)))
        if plan.detail_layers == "last":
            layers = layers[-1:]
        net = zoo.load(name)
        x, _ = zoo.dataset(name, "test")
        for layer in layers:
            layer_section(rep, ds, units, study.fits[arch], name, layer, prob=plan.prob,
                          module=net, inputs=x, images=lambda idx: zoo.digit_images(idx, "test"),
                          n_images=plan.topk)
        build.note(f"  network {i + 1}/{len(names)} {name}: units and {len(layers)} layer "
                   f"sections ({time.perf_counter() - t0:.1f} s)")


def _methods(rep: Report, study: Any, build: _Build) -> None:
    """Methods, convergence of every fit, its warnings, and the step timings."""
    plan = study.plan
    rep.section("Methods and run")
    rep.text(
        "Recording: `bayesactiv.record` with forward hooks on each ReLU module; a convolution "
        "channel fires for an input when any position does. Model: `bayesactiv.fit` "
        "(beta-binomial, unit parameters integrated out, per-unit posteriors by conjugacy). "
        "Comparison: `bayesactiv.compare` on the joint fit (no refit). Bootstrap: percentile, "
        f"{plan.n_resamples} resamples, seed {study.seed}."
    )
    rep.text(
        "Convergence of every fit (group-level parameters; ArviZ R-hat and effective sample "
        "sizes; bayesactiv warns above R-hat 1.01, below ESS 400 or at any divergence):"
    )
    rep.table(pd.DataFrame(study.diagnostics), "fit_diagnostics")
    if study.fit_warnings:
        rep.text("Warnings raised by the fits (treat those intervals with care):\n\n"
                 + "\n".join(f"- {label}: {msg}" for label, msg in study.fit_warnings))
    rep.text("Step timings of this run:")
    rep.table(pd.DataFrame(study.steps.timings, columns=["step", "seconds"]), "timings",
              max_rows=60)


#: The report's sections, in order; each adds its headings, text, tables and figures.
SECTIONS = (_overview, _comparison, _per_layer, _mf_null, _window_models, _threshold_sensitivity,
            _train_vs_test, _epochs, _networks_and_layers, _methods)
