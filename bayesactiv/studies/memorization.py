"""The main job: the memorization study on the reference networks, written as a report.

:func:`run_demo` records every hidden layer of the generalizing and memorizing
digits networks (MLP, CNN, DenseNet-style; :mod:`bayesactiv.zoo`) on the held-out
and the training inputs, computes the frequentist baselines, fits the hierarchical
firing model, compares generalizing against memorizing networks per architecture
and across training epochs, and writes a report folder (see
:mod:`bayesactiv.report.document`) whose ``report.html`` is one self-contained file.

Steps (one progress line each)::

    record   every hidden layer, threshold 0, windows of 20 inputs, events kept,
             on test and train inputs; the last hidden layer again with the
             50%-of-max and the 90%-quantile rules (threshold sensitivity)
    fit      one joint fit per architecture (generalizing + memorizing networks,
             groups = network x layer), reused by the comparison
    compare  memorizing - generalizing, per layer: MFR, MF, fraction dead, mu, kappa
    epochs   the last hidden layer at every checkpoint, one joint fit per architecture
    report   tables, figures, unit views, report.html

Examples
--------
>>> from bayesactiv.studies.memorization import DemoPlan
>>> plan = DemoPlan.quick()
>>> plan.architectures, plan.max_epochs, plan.draws
(('mlp',), 3, 500)

The run itself is not executed here: even the quick one records, fits and compares
the networks for a minute or more (``make demo`` and the test suite run it).

>>> import tempfile
>>> from bayesactiv.studies.memorization import run_demo
>>> path = run_demo(tempfile.mkdtemp() + "/report", quick=True)  # doctest: +SKIP
>>> (path / "report.html").exists()  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data.checks import ArgumentError, check_choice, check_int, check_prob, check_seed

__all__ = ["ARCHITECTURES", "DemoPlan", "run_demo"]

#: architecture families studied (network names ``digits-<arch>`` and ``digits-<arch>-memorize``)
ARCHITECTURES: tuple[str, ...] = ("mlp", "cnn", "densenet")


@dataclass(frozen=True)
class DemoPlan:
    """What :func:`run_demo` does; :meth:`full` and :meth:`quick` are the two presets.

    Parameters
    ----------
    architectures : tuple of str
        Families from :data:`ARCHITECTURES`.
    max_epochs : int or None
        Checkpoints per network in the epoch study (None: all; otherwise the first,
        the last and evenly spaced ones between).
    draws, chains : int
        Posterior draws per chain and chains of every fit.
    n_resamples : int
        Bootstrap resamples.
    n_permutations : int
        Input-order permutations in the test of MF against its null.
    window_size : int
        Inputs per window for the window counts (Fano factor).
    prob : float
        Mass of every interval in the report.
    topk : int
        Top inputs kept per unit (unit views).
    train_split : bool
        Also record on the training inputs.
    detail_layers : {"all", "last"}
        Layers that get a detailed per-layer section.

    Examples
    --------
    >>> DemoPlan.quick().architectures
    ('mlp',)
    """

    architectures: tuple[str, ...] = ARCHITECTURES
    max_epochs: int | None = None
    draws: int = 1000
    chains: int = 2
    n_resamples: int = 1000
    n_permutations: int = 999
    window_size: int = 20
    prob: float = 0.9
    topk: int = 8
    train_split: bool = True
    detail_layers: str = "all"

    def __post_init__(self) -> None:
        bad = [a for a in self.architectures if a not in ARCHITECTURES]
        if bad or not self.architectures:
            raise ArgumentError(f"architectures: unknown {bad}; choose from {ARCHITECTURES}")
        if self.max_epochs is not None:
            check_int(self.max_epochs, "max_epochs", minimum=1)
        for name in ("draws", "chains", "n_resamples", "n_permutations", "window_size", "topk"):
            check_int(getattr(self, name), name, minimum=1)
        check_prob(self.prob)
        check_choice(self.detail_layers, "detail_layers", ("all", "last"))

    @classmethod
    def full(cls) -> DemoPlan:
        """All three architectures, all checkpoints."""
        return cls()

    @classmethod
    def quick(cls) -> DemoPlan:
        """The MLPs only, three checkpoints, fewer draws and resamples (for tests)."""
        return cls(architectures=("mlp",), max_epochs=3, draws=500, chains=2, n_resamples=200,
                   n_permutations=199, detail_layers="last")


@dataclass
class _Steps:
    """Progress display: one line per step with its duration, to stderr."""

    total: int
    enabled: bool = True
    done: int = 0
    timings: list[tuple[str, float]] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        self.done += 1
        t0 = time.perf_counter()
        if self.enabled:
            print(f"[{self.done:>2}/{self.total}] {what} ...", file=sys.stderr, flush=True)
        yield
        dt = time.perf_counter() - t0
        self.timings.append((what, dt))
        if self.enabled:
            total = time.perf_counter() - self.start
            print(f"        done in {dt:.1f} s (total {total:.0f} s)", file=sys.stderr, flush=True)


def _diagnostics(fit: Any, label: str) -> dict[str, Any]:
    """Worst-case convergence diagnostics of a fit's group-level parameters."""
    table = fit.summary()
    return {
        "fit": label,
        "groups": int(fit.groups()["n_units"].size),
        "max R-hat": float(table["r_hat"].max()),
        "min bulk ESS": float(table["ess_bulk"].min()),
        "min tail ESS": float(table["ess_tail"].min()),
        "divergences": int(table.attrs.get("divergences", 0)),
    }


def _pick_epochs(available: list[int], max_epochs: int | None) -> list[int]:
    if max_epochs is None or len(available) <= max_epochs:
        return list(available)
    pos = np.unique(np.round(np.linspace(0, len(available) - 1, max_epochs)).astype(int))
    return [available[i] for i in pos]


def _card_row(name: str) -> dict[str, Any]:
    from bayesactiv import zoo
    card = zoo.card(name)
    last = card["checkpoints"][-1]
    return {
        "network": name,
        "architecture": (card["architecture"].get("description", "")
                         if isinstance(card.get("architecture"), dict)
                         else str(card.get("architecture", ""))),
        "training labels": "shuffled (memorizing)" if name.endswith("-memorize") else "true",
        "epochs": int(last["epoch"]),
        "train accuracy": float(last.get("train_accuracy", np.nan)),
        "test accuracy": float(last.get("test_accuracy", np.nan)),
        "checkpoints": ", ".join(str(c["epoch"]) for c in card["checkpoints"]),
    }


def run_demo(
    out_dir: str | os.PathLike = "report",
    *,
    quick: bool = False,
    progress: bool = True,
    seed: int = 0,
    plan: DemoPlan | None = None,
) -> Path:
    """Run the memorization study on the reference networks and write the report folder.

    Parameters
    ----------
    out_dir : str or path-like
        Report folder (created; a previous report there is replaced atomically).
    quick : bool
        A reduced run (:meth:`DemoPlan.quick`: the MLPs only, three checkpoints,
        fewer draws) that finishes in about a minute.
    progress : bool
        Print one line per step (and where the report is) to stderr.
    seed : int
        Seeds every fit and bootstrap.
    plan : DemoPlan, optional
        Overrides ``quick`` with a custom plan.

    Returns
    -------
    pathlib.Path
        The report folder, holding ``report.html``, ``report.md``, ``tables/`` and
        ``figures/``.

    Examples
    --------
    Not executed here: even the quick run takes a minute or more (``make demo`` and the
    test suite run it). Its arguments are checked before any work starts:

    >>> import tempfile
    >>> from bayesactiv.studies.memorization import run_demo
    >>> path = run_demo(tempfile.mkdtemp() + "/report", quick=True, progress=False)  # doctest: +SKIP
    >>> run_demo(tempfile.mkdtemp() + "/report", plan="quick")
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: plan: expected a DemoPlan, got str
    """
    seed = check_seed(seed)
    plan = plan or (DemoPlan.quick() if quick else DemoPlan.full())
    if not isinstance(plan, DemoPlan):
        raise ArgumentError(f"plan: expected a DemoPlan, got {type(plan).__name__}")
    out = Path(out_dir)
    from bayesactiv.report.document import check_out_dir

    check_out_dir(out)  # fail before minutes of work, not after
    study = _Study(plan, seed, _Steps(total=6 * len(plan.architectures) + 1, enabled=progress))
    with warnings.catch_warnings():
        # xarray's announcement of a future default in combine() is not news for a reader
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"bayesactiv\.dataset")
        study.run()
        path = study.write(out)
    if progress:
        print(f"report: {(path / 'report.html').resolve()}", file=sys.stderr, flush=True)
    return path


class _Study:
    """The state of one demo run: recordings, fits, comparisons; then the report."""

    def __init__(self, plan: DemoPlan, seed: int, steps: _Steps) -> None:
        self.plan = plan
        self.seed = seed
        self.steps = steps
        self.test: dict[str, xr.Dataset] = {}
        self.train: dict[str, xr.Dataset] = {}
        self.sens: dict[str, dict[str, xr.Dataset]] = {}
        self.fits: dict[str, Any] = {}
        self.comparisons: dict[str, Any] = {}
        self.epoch_fits: dict[str, Any] = {}
        self.epoch_data: dict[str, xr.Dataset] = {}
        self.cards: list[dict[str, Any]] = []
        self.fit_warnings: list[tuple[str, str]] = []
        self.diagnostics: list[dict[str, Any]] = []
        self.window_tables: dict[str, pd.DataFrame] = {}

    # -- pipeline ---------------------------------------------------------------
    def networks(self, arch: str) -> tuple[str, str]:
        return f"digits-{arch}", f"digits-{arch}-memorize"

    def run(self) -> None:
        for arch in self.plan.architectures:
            for name in self.networks(arch):
                self.record(name)
        for arch in self.plan.architectures:
            self.fit_and_compare(arch)
        for arch in self.plan.architectures:
            self.epochs(arch)
        for arch in self.plan.architectures:
            self.window_models(arch)

    def record(self, name: str) -> None:
        import bayesactiv as ba
        from bayesactiv import zoo
        layers = zoo.hidden_layers(name)
        with self.steps.step(f"record {name}: {len(layers)} hidden layers"
                             f"{' on test and train inputs' if self.plan.train_split else ''}"):
            net = zoo.load(name)
            self.cards.append(_card_row(name))
            common = {"network": name, "progress": False, "topk": self.plan.topk}
            x, y = zoo.dataset(name, "test")
            self.test[name] = ba.record(net, x, layers, threshold=0.0, labels=y,
                                        window_size=self.plan.window_size, keep_events=True,
                                        **common)
            if self.plan.train_split:
                xt, yt = zoo.dataset(name, "train", true_labels=True)
                self.train[name] = ba.record(net, xt, layers, threshold=0.0, labels=yt,
                                             window_size=self.plan.window_size,
                                             keep_events=True, **common)
            last = zoo.last_hidden_layer(name)
            self.sens[name] = {
                "activation > 0": self.sens_base(name, last),
                "50% of the unit's max": ba.record(
                    net, x, [last], threshold=ba.FractionOfMax(0.5), labels=y,
                    window_size=self.plan.window_size, keep_events=True, **common),
                "unit's 90% quantile": ba.record(
                    net, x, [last], threshold=ba.Quantile(0.9), labels=y,
                    window_size=self.plan.window_size, keep_events=True, **common),
            }

    def sens_base(self, name: str, layer: str) -> xr.Dataset:
        ds = self.test[name]
        return ds.isel(unit=np.flatnonzero(ds["layer"].values.astype(str) == layer))

    def _fit(self, ds: xr.Dataset, group_by: tuple[str, ...], label: str) -> Any:
        """One fit; its convergence warnings are printed and kept for the report."""
        import bayesactiv as ba

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = ba.fit(ds, "beta_binomial", group_by=group_by, draws=self.plan.draws,
                         chains=self.plan.chains, seed=self.seed)
        for w in caught:
            if issubclass(w.category, FutureWarning | DeprecationWarning):
                continue
            self.fit_warnings.append((label, str(w.message)))
            if self.steps.enabled:
                print(f"        warning: {w.message}", file=sys.stderr, flush=True)
        self.diagnostics.append(_diagnostics(fit, label))
        return fit

    def fit_and_compare(self, arch: str) -> None:
        import bayesactiv as ba

        gen, mem = self.networks(arch)
        joint = ba.combine([self.test[gen], self.test[mem]])
        with self.steps.step(f"fit {gen} + {mem} jointly ({joint.sizes['unit']} units)"):
            self.fits[arch] = self._fit(joint, ("network", "layer"), f"{gen} + {mem}")
        with self.steps.step(f"compare {mem} against {gen} (posterior + bootstrap)"):
            self.comparisons[arch] = ba.compare(
                self.fits[arch], by="network", reference=gen, prob=self.plan.prob,
                seed=self.seed, n_resamples=self.plan.n_resamples,
            )

    def window_models(self, arch: str) -> None:
        """Poisson, negative binomial or binomial windows? PSIS-LOO on the last hidden layer."""
        import bayesactiv as ba
        from bayesactiv import zoo
        parts = []
        for name in self.networks(arch):
            ds = self.test[name]
            last = zoo.last_hidden_layer(name)
            parts.append(ds.isel(unit=np.flatnonzero(ds["layer"].values.astype(str) == last)))
        joint = ba.combine(parts)
        with self.steps.step(f"window-count models of digits-{arch}'s last hidden layer by "
                             "PSIS-LOO"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                table = ba.compare_models(joint, draws=self.plan.draws, chains=self.plan.chains,
                                          seed=self.seed)
            for w in caught:
                if issubclass(w.category, ba.models.ConvergenceWarning):
                    self.fit_warnings.append((f"window models of digits-{arch}", str(w.message)))
        pareto = table.attrs.get("pareto_k_max", {})
        frame = table.reset_index(names="model")[["model", "rank", "elpd", "se", "elpd_diff",
                                                   "dse", "weight"]]
        frame.insert(0, "architecture", arch)
        frame["max Pareto k"] = [float(pareto.get(m, np.nan)) for m in frame["model"]]
        self.window_tables[arch] = frame

    def epochs(self, arch: str) -> None:
        import bayesactiv as ba
        from bayesactiv import zoo
        from bayesactiv.data.dataset import set_epoch

        parts = []
        with self.steps.step(f"epochs of digits-{arch}: record the last hidden layer at each "
                             "checkpoint and fit them jointly"):
            for name in self.networks(arch):
                x, y = zoo.dataset(name, "test")
                last = zoo.last_hidden_layer(name)
                for epoch in _pick_epochs(zoo.epochs(name), self.plan.max_epochs):
                    ds = ba.record(zoo.load(name, epoch), x, [last], threshold=0.0, labels=y,
                                   window_size=self.plan.window_size, keep_events=False,
                                   network=name, progress=False, topk=0)
                    parts.append(set_epoch(ds, epoch))
            data = ba.combine(parts)
            self.epoch_data[arch] = data
            self.epoch_fits[arch] = self._fit(data, ("network", "layer", "epoch"),
                                              f"digits-{arch} epochs")

    # -- report -------------------------------------------------------------------
    def write(self, out: Path) -> Path:
        with self.steps.step("write the report (tables, figures, unit views, report.html)"):
            rep = _build_report(self)
            path = rep.write(out)
        return path


# --------------------------------------------------------------------------- report content


def _pct(prob: float) -> str:
    return f"{100 * prob:g}%"


def _layer_table(study: _Study, name: str) -> pd.DataFrame:
    """Per-layer MFR/MF/fraction dead: posterior (joint fit) beside the bootstrap."""
    from bayesactiv.report.document import layer_bootstrap

    plan = study.plan
    arch = name.removeprefix("digits-").removesuffix("-memorize")
    g = study.fits[arch].groups(plan.prob)
    gf = pd.DataFrame({k: g[k].values for k in ("network", "layer")})
    for q in ("mfr", "mf", "frac_dead", "mu", "kappa"):
        for s in ("mean", "low", "high"):
            gf[f"{q}_{s}"] = g[f"{q}_{s}"].values
    gf = gf[gf["network"].astype(str) == name]
    boot = layer_bootstrap(study.test[name], n_resamples=plan.n_resamples, prob=plan.prob,
                           seed=study.seed)
    merged = boot.merge(gf, on=["network", "layer"], how="left")
    order = {lay: i for i, lay in enumerate(dict.fromkeys(study.test[name]["layer"].values))}
    merged = merged.sort_values("layer", key=lambda s: s.map(order)).reset_index(drop=True)
    return merged.rename(columns={"mfr": "mfr_plugin", "mf": "mf_plugin"})


def _mf_null_table(study: _Study, names: list[str]) -> pd.DataFrame:
    """Plug-in MF beside its binomial null and a permutation p-value, per network and layer."""
    from bayesactiv.stats import baselines
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
    from bayesactiv.stats.baselines import fano

    frame = pd.DataFrame({k: ds[k].values for k in keys})
    rate = ds["count"].values / np.maximum(ds["n"].values, 1)
    unit_fano = fano(ds["window_count"].values) if "window_count" in ds else (
        np.full(rate.shape, np.nan))
    rows = []
    for key, idx in frame.groupby(keys, sort=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        defined = unit_fano[idx][np.isfinite(unit_fano[idx])]  # units that fired in a window
        rows.append({**dict(zip(keys, key, strict=True)), "mfr_plugin": float(rate[idx].mean()),
                     "mf_plugin": float(defined.mean()) if defined.size else float("nan")})
    return pd.DataFrame(rows)


def _trajectory_figure(groups: pd.DataFrame, plugin: pd.DataFrame, arch: str, prob: float) -> Any:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
    quantities = (("mfr", "MFR (mean firing probability)"),
                  ("mf", "MF (mean Fano factor)"),
                  ("frac_dead", "fraction of dead units"))
    for net, color in zip(sorted(groups["network"].unique()), ("tab:blue", "tab:red"), strict=False):
        g = groups[groups["network"] == net].sort_values("epoch")
        p = plugin[plugin["network"] == net].sort_values("epoch")
        label = "memorizing" if net.endswith("-memorize") else "generalizing"
        for ax, (q, title) in zip(axes, quantities, strict=True):
            ax.fill_between(g["epoch"], g[f"{q}_low"], g[f"{q}_high"], color=color, alpha=0.2,
                            lw=0)
            ax.plot(g["epoch"], g[f"{q}_mean"], "o-", color=color, ms=4,
                    label=f"{label}: posterior mean, {_pct(prob)} ETI")
            if q in ("mfr", "mf"):
                ax.plot(p["epoch"], p[f"{q}_plugin"], "x", color=color, ms=7,
                        label=f"{label}: plug-in" + (" (window Fano)" if q == "mf" else ""))
            ax.set_title(title, fontsize=10)
    for ax in axes:
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("training epoch (symlog)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"digits-{arch}: last hidden layer over training", fontsize=11)
    return fig


def _build_report(study: _Study) -> Any:
    import bayesactiv as ba
    from bayesactiv import zoo
    from bayesactiv.viz import plots
    from bayesactiv.report.document import (
        UNIT_ID_PARTS,
        Report,
        forest_figure,
        layer_bootstrap,
        layer_section,
        unit_frame,
    )

    plan = study.plan
    pct = _pct(plan.prob)
    w = plan.window_size
    names = [n for a in plan.architectures for n in study.networks(a)]
    rep = Report(
        "How hidden units fire in generalizing and memorizing networks",
        subtitle=(
            "Bayesian analysis of hidden-unit firing (bayesactiv demo"
            f"{', quick run' if plan == DemoPlan.quick() else ''}): digits networks trained "
            "on true labels (generalizing) and on shuffled labels (memorizing)."
        ),
    )

    # ---- overview
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

    # ---- memorization comparison
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

    # ---- per-layer MFR/MF
    rep.section("Per-layer MFR and MF")
    rep.text(
        f"Per layer: posterior mean and {pct} ETI of MFR, MF (model-implied) and the fraction "
        "of dead units (θ < 0.01) from the joint fit, beside the plug-in MFR and MF (window "
        f"Fano factor, windows of {w}) with {pct} percentile-bootstrap intervals. κ is the "
        "concentration of a layer's firing probabilities: small κ means units near 0 and 1."
    )
    layer_frames = {n: _layer_table(study, n) for n in names}
    rep.table(pd.concat(layer_frames.values(), ignore_index=True), "layers", max_rows=80)
    rep.figure(plots.plot_dead_saturated(ba.combine([study.test[n] for n in names])),
               "dead_saturated", caption="Dead (never fired) and saturated (always fired) "
               "units per layer on the test inputs.")

    # ---- MF against its null
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

    # ---- Poisson or not
    rep.section("Poisson or not: window-count models")
    rep.text(
        "Seed 002 models firing as a Poisson process. One input gives at most one event, so a "
        f"window of {w} inputs holds at most {w} events; the careful alternatives are the "
        "negative binomial (over-dispersed windows) and the binomial per window (bounded). Each "
        "model is fitted to the window counts of the last hidden layer of both networks of an "
        "architecture (units share a Gamma or Beta prior per network) and ranked by PSIS-LOO "
        "over units (`bayesactiv.compare_models`): higher elpd predicts held-out units better; "
        "elpd_diff and its standard error dse are against the best model; a max Pareto k above "
        "0.7 would make a model's LOO estimate unreliable."
    )
    rep.table(pd.concat(study.window_tables.values(), ignore_index=True), "window_models")

    # ---- threshold sensitivity
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

    # ---- train vs test
    if plan.train_split:
        rep.section("Training versus held-out inputs")
        rep.text(
            "The same networks recorded on their training inputs (threshold 0, windows of "
            f"{w}). A memorizing network has seen these exact inputs with shuffled labels; "
            f"plug-in MFR and MF with {pct} bootstrap intervals."
        )
        rows = []
        for name in names:
            for split, ds in (("test", study.test[name]), ("train", study.train[name])):
                b = layer_bootstrap(ds, n_resamples=plan.n_resamples, prob=plan.prob,
                                    seed=study.seed)
                b.insert(2, "split", split)
                rows.append(b)
        rep.table(pd.concat(rows, ignore_index=True), "train_vs_test", max_rows=80)

    # ---- epochs
    rep.section("Epoch trajectories")
    rep.text(
        "The last hidden layer recorded on the test inputs at the saved checkpoints of each "
        "network (epoch 0 = initial weights) and fitted jointly per architecture (groups = "
        f"network × epoch). Lines: posterior means; bands: {pct} ETI; crosses: plug-in values. "
        "Memorizing networks train longer (up to 200 epochs) to fit the shuffled labels."
    )
    for arch in plan.architectures:
        g = study.epoch_fits[arch].groups(plan.prob)
        gf = pd.DataFrame({k: g[k].values for k in ("network", "layer", "epoch")})
        for q in ("mfr", "mf", "frac_dead"):
            for s in ("mean", "low", "high"):
                gf[f"{q}_{s}"] = g[f"{q}_{s}"].values
        plug = _plugin_by(study.epoch_data[arch], ["network", "layer", "epoch"])
        table = gf.merge(plug, on=["network", "layer", "epoch"], how="left")
        table = table.sort_values(["network", "epoch"]).reset_index(drop=True)
        rep.section(f"digits-{arch} over training", level=3, id=f"epochs-{arch}")
        rep.figure(_trajectory_figure(table, plug, arch, plan.prob), f"epochs_{arch}",
                   caption=f"MFR, MF and fraction of dead units of the last hidden layer vs "
                           f"epoch; blue generalizing, red memorizing; bands {pct} ETI.")
        rep.table(table, f"epochs_{arch}", max_rows=40)

    # ---- networks and layers
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
    for name in names:
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

    # ---- methods
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
    return rep
