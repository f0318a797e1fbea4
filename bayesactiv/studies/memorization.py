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
    windows  the last hidden layer's window counts under the gamma-Poisson, negative
             binomial and binomial-window models, ranked by PSIS-LOO (one fit per model;
             a line per model as it is fitted, with its ELPD and largest Pareto k)
    report   tables, figures, unit views, report.html (a line per section)

The long steps print indented lines saying what they are doing (each recording, each
model of the PSIS-LOO ranking, each report section and network).

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

from bayesactiv.bayes import ConvergenceWarning, compare_models, fit
from bayesactiv.comparison import compare
from bayesactiv.data import combine, set_epoch
from bayesactiv.data.checks import ArgumentError, check_choice, check_int, check_prob, check_seed
from bayesactiv.report import check_out_dir
from bayesactiv.studies.memorization_report import build_report

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

    def note(self, text: str) -> None:
        """One indented progress line inside the current step (what it is doing now)."""
        if self.enabled:
            print(f"        {text}", file=sys.stderr, flush=True)


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
    check_out_dir(out)  # fail before minutes of work, not after
    study = MemorizationStudy(plan, seed, _Steps(total=6 * len(plan.architectures) + 1, enabled=progress))
    with warnings.catch_warnings():
        # xarray's announcement of a future default in combine() is not news for a reader
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"bayesactiv\.data\.combine")
        study.run()
        path = study.write(out)
    if progress:
        print(f"report: {(path / 'report.html').resolve()}", file=sys.stderr, flush=True)
    return path


class MemorizationStudy:
    """The state of one demo run: recordings, fits, comparisons; then the report.

    :meth:`run` records, fits and compares; :meth:`write` writes the report
    (:func:`bayesactiv.studies.memorization_report.build_report`).
    """

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
        from bayesactiv import zoo
        from bayesactiv.recording import FractionOfMax, Quantile, record

        layers = zoo.hidden_layers(name)
        with self.steps.step(f"record {name}: {len(layers)} hidden layers"
                             f"{' on test and train inputs' if self.plan.train_split else ''}"):
            net = zoo.load(name)
            self.cards.append(_card_row(name))
            # the study's convolutions count a channel once per input (its published numbers)
            common = {"network": name, "progress": False, "topk": self.plan.topk,
                      "spatial": "any"}
            t0 = time.perf_counter()
            x, y = zoo.dataset(name, "test")
            self.test[name] = record(net, x, layers, threshold=0.0, labels=y,
                                        window_size=self.plan.window_size, keep_events=True,
                                        **common)
            self.steps.note(f"test inputs ({len(x)}): {time.perf_counter() - t0:.1f} s")
            if self.plan.train_split:
                t0 = time.perf_counter()
                xt, yt = zoo.dataset(name, "train", true_labels=True)
                self.train[name] = record(net, xt, layers, threshold=0.0, labels=yt,
                                             window_size=self.plan.window_size,
                                             keep_events=True, **common)
                self.steps.note(f"train inputs ({len(xt)}): {time.perf_counter() - t0:.1f} s")
            t0 = time.perf_counter()
            last = zoo.last_hidden_layer(name)
            self.sens[name] = {
                "activation > 0": self.sens_base(name, last),
                "50% of the unit's max": record(
                    net, x, [last], threshold=FractionOfMax(0.5), labels=y,
                    window_size=self.plan.window_size, keep_events=True, **common),
                "unit's 90% quantile": record(
                    net, x, [last], threshold=Quantile(0.9), labels=y,
                    window_size=self.plan.window_size, keep_events=True, **common),
            }
            self.steps.note(f"{last} under the two other firing rules: "
                            f"{time.perf_counter() - t0:.1f} s")

    def sens_base(self, name: str, layer: str) -> xr.Dataset:
        ds = self.test[name]
        return ds.isel(unit=np.flatnonzero(ds["layer"].values.astype(str) == layer))

    def _fit(self, ds: xr.Dataset, group_by: tuple[str, ...], label: str) -> Any:
        """One fit; its convergence warnings are printed and kept for the report."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fit(ds, "beta_binomial", group_by=group_by, draws=self.plan.draws,
                         chains=self.plan.chains, seed=self.seed)
        for w in caught:
            if issubclass(w.category, FutureWarning | DeprecationWarning):
                continue
            self.fit_warnings.append((label, str(w.message)))
            if self.steps.enabled:
                print(f"        warning: {w.message}", file=sys.stderr, flush=True)
        self.diagnostics.append(_diagnostics(result, label))
        return result

    def fit_and_compare(self, arch: str) -> None:
        gen, mem = self.networks(arch)
        joint = combine([self.test[gen], self.test[mem]])
        with self.steps.step(f"fit {gen} + {mem} jointly ({joint.sizes['unit']} units)"):
            self.fits[arch] = self._fit(joint, ("network", "layer"), f"{gen} + {mem}")
        with self.steps.step(f"compare {mem} against {gen} (posterior + bootstrap)"):
            self.comparisons[arch] = compare(
                self.fits[arch], by="network", reference=gen, prob=self.plan.prob,
                seed=self.seed, n_resamples=self.plan.n_resamples,
            )

    def window_models(self, arch: str) -> None:
        """Poisson, negative binomial or binomial windows? PSIS-LOO on the last hidden layer."""
        from bayesactiv import zoo

        parts = []
        for name in self.networks(arch):
            ds = self.test[name]
            last = zoo.last_hidden_layer(name)
            parts.append(ds.isel(unit=np.flatnonzero(ds["layer"].values.astype(str) == last)))
        joint = combine(parts)
        with self.steps.step(f"window-count models of digits-{arch}'s last hidden layer by "
                             "PSIS-LOO"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                table = compare_models(joint, draws=self.plan.draws, chains=self.plan.chains,
                                       seed=self.seed, log=self.steps.note)
                # the convergence of the fits behind the ranking, beside the study's others
                for model, f in table.attrs["fits"].items():
                    self.diagnostics.append(_diagnostics(f, f"digits-{arch} window counts: "
                                                            f"{model}"))
            for w in caught:
                if issubclass(w.category, ConvergenceWarning):
                    self.fit_warnings.append((f"window models of digits-{arch}", str(w.message)))
        pareto = table.attrs.get("pareto_k_max", {})
        frame = table.reset_index(names="model")[["model", "rank", "elpd", "se", "elpd_diff",
                                                   "dse", "weight"]]
        frame.insert(0, "architecture", arch)
        frame["max Pareto k"] = [float(pareto.get(m, np.nan)) for m in frame["model"]]
        self.window_tables[arch] = frame

    def epochs(self, arch: str) -> None:
        from bayesactiv import zoo
        from bayesactiv.recording import record

        parts = []
        with self.steps.step(f"epochs of digits-{arch}: record the last hidden layer at each "
                             "checkpoint and fit them jointly"):
            for name in self.networks(arch):
                t0 = time.perf_counter()
                x, y = zoo.dataset(name, "test")
                last = zoo.last_hidden_layer(name)
                epochs = _pick_epochs(zoo.epochs(name), self.plan.max_epochs)
                for epoch in epochs:
                    ds = record(zoo.load(name, epoch), x, [last], threshold=0.0, labels=y,
                                   window_size=self.plan.window_size, keep_events=False,
                                   network=name, progress=False, topk=0, spatial="any")
                    parts.append(set_epoch(ds, epoch))
                self.steps.note(f"recorded {name}/{last} at {len(epochs)} checkpoints "
                                f"({time.perf_counter() - t0:.1f} s)")
            data = combine(parts)
            self.epoch_data[arch] = data
            t0 = time.perf_counter()
            self.steps.note(f"fitting {len(parts)} groups (network x epoch) jointly ...")
            self.epoch_fits[arch] = self._fit(data, ("network", "layer", "epoch"),
                                              f"digits-{arch} epochs")
            self.steps.note(f"fitted ({time.perf_counter() - t0:.1f} s)")

    # -- report -------------------------------------------------------------------
    def write(self, out: Path) -> Path:
        with self.steps.step("write the report (tables, figures, unit views, report.html)"):
            rep = build_report(self, log=self.steps.note)
            t0 = time.perf_counter()
            path = rep.write(out)
            self.steps.note(f"written to {out} ({time.perf_counter() - t0:.1f} s)")
        return path
