"""Watching training: does the firing monitor say when memorization starts?

The validation study of :mod:`bayesactiv.monitor`. Digits networks of :mod:`bayesactiv.zoo`
are trained from scratch in scenarios that generalize or memorize:

* ``true``: the whole training pool with its true labels (generalizing);
* ``shuffled``: the same inputs with their labels shuffled (memorizing; held-out accuracy
  stays at chance);
* ``subset-200``: 200 training digits, trained long (natural overfitting);
* ``noise-20``, ``noise-40``: 20% / 40% of the training labels replaced by random other
  classes (partial memorization: held-out accuracy rises, then falls as the noise is fitted).

Splits: the zoo's digits training split (1,437) is cut, with a fixed permutation, into a
validation set (300 digits) and the training pool (1,137); the zoo's test split (360) gives
the held-out accuracy, the truth the signals are scored against. The monitor's probe is the
validation *inputs* without their labels (a label-free signal), observed after every epoch
with ``keep_events=True``; validation-loss early stopping uses the same inputs with labels.

:func:`run` trains one run and returns its :class:`Run` (per-epoch metrics and the monitor's
history); :func:`signals` scores the signals of a run; ``benchmarks/watching.py`` runs the
whole study and prints the README's table.

Examples
--------
>>> from bayesactiv.studies.watching import SCENARIOS
>>> sorted(SCENARIOS)
['noise-20', 'noise-40', 'shuffled', 'subset-200', 'true']
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr

from bayesactiv.data.checks import ArgumentError

__all__ = ["SCENARIOS", "SETTINGS", "WATCHED", "Run", "Scenario", "calibrate", "oui_rise", "run",
           "signals", "splits", "study", "summary", "zoo_check"]

VALIDATION = 300


@dataclass(frozen=True)
class Scenario:
    """One way of training a digits network.

    Attributes
    ----------
    name : str
    train_size : int or None
        Training digits drawn from the pool (None: all 1,137).
    label_noise : float
        Fraction of training labels replaced by a random *other* class.
    shuffled : bool
        Shuffle all training labels (memorizing).
    epochs : int
    memorizes : bool
        Whether the scenario is expected to memorize (its runs are not scored for false
        alarms).
    """

    name: str
    train_size: int | None = None
    label_noise: float = 0.0
    shuffled: bool = False
    epochs: int = 60
    memorizes: bool = True


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("true", epochs=150, memorizes=False),
    Scenario("shuffled", shuffled=True, epochs=150),
    Scenario("subset-200", train_size=200, epochs=200),
    Scenario("noise-20", label_noise=0.2, epochs=150),
    Scenario("noise-40", label_noise=0.4, epochs=150),
)}

#: learning rate and batch size per architecture (those of the zoo's recipes)
SETTINGS = {"digits-mlp": (1e-3, 128), "digits-cnn": (2e-3, 128)}
#: the layers watched by default: every hidden layer of the MLP; the CNN's dense hidden layer
#: (its convolutions see 64 and 16 positions per input, and one fired matrix needs the layers
#: to see the same events)
WATCHED = {"digits-mlp": ("relu1", "relu2", "relu3"), "digits-cnn": ("relu_fc1",)}


def splits(seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The study's splits (see the module notes); the training pool's order depends on ``seed``.

    Examples
    --------
    >>> s = splits(0)
    >>> {k: len(v[1]) for k, v in s.items()}
    {'train': 1137, 'validation': 300, 'test': 360}
    """
    from bayesactiv.zoo.data import dataset

    x, y = dataset("digits", "train")
    x_test, y_test = dataset("digits", "test")
    perm = np.random.default_rng(12345).permutation(len(y))
    val, pool = perm[:VALIDATION], perm[VALIDATION:]
    pool = pool[np.random.default_rng(seed).permutation(len(pool))]
    return {"train": (x[pool], y[pool]), "validation": (x[val], y[val]),
            "test": (x_test, y_test)}


def _labels(sc: Scenario, y: torch.Tensor, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Training labels of the scenario and which of them are corrupted."""
    rng = np.random.default_rng(1000 + seed)
    y = y.numpy().copy()
    wrong = np.zeros(len(y), dtype=bool)
    if sc.shuffled:
        out = rng.permutation(y)
        wrong = out != y
    else:
        out = y.copy()
        if sc.label_noise > 0:
            flip = rng.choice(len(y), round(sc.label_noise * len(y)), replace=False)
            out[flip] = (y[flip] + rng.integers(1, 10, len(flip))) % 10
            wrong[flip] = True
    return torch.from_numpy(out), wrong


@dataclass
class Run:
    """One training run of the study.

    Attributes
    ----------
    scenario, architecture : str
    seed : int
    metrics : pandas.DataFrame
        Per epoch (0 = initialization): ``train_loss``, ``train_acc`` (on the labels trained
        on), ``val_loss``, ``val_acc``, ``test_acc``.
    history : xarray.Dataset
        The monitor's history (probe = the validation inputs, events kept).
    seconds : float
        Wall time of the run.
    """

    scenario: str
    architecture: str
    seed: int
    metrics: pd.DataFrame
    history: xr.Dataset
    seconds: float


def _evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    was = net.training
    net.eval()
    with torch.no_grad():
        logits = net(x)
        loss = float(F.cross_entropy(logits, y))
        acc = float((logits.argmax(1) == y).float().mean())
    net.train(was)
    return loss, acc


def run(scenario: str | Scenario, seed: int = 0, *, architecture: str = "digits-mlp",
        epochs: int | None = None, layers: tuple[str, ...] | None = None,
        window_size: int | None = 20, progress: bool = False) -> Run:
    """Train one run of a scenario with a :class:`bayesactiv.monitor.FiringMonitor` on it.

    Parameters
    ----------
    scenario : str or Scenario
        A name of :data:`SCENARIOS` or a scenario.
    seed : int
        Seeds the initialization, the batch order, the training subset and the label noise.
    architecture : {"digits-mlp", "digits-cnn"}
    epochs : int, optional
        Override the scenario's epochs (short runs for tests).
    layers : tuple of str, optional
        The layers watched (default :data:`WATCHED`).
    window_size : int or None
        Windows of the probe's recording (for MF).
    progress : bool
        One line per 10 epochs on stderr.

    Returns
    -------
    Run

    Examples
    --------
    >>> r = run("noise-20", seed=0, epochs=2)
    >>> r.metrics["epoch"].tolist(), sorted(set(r.history["epoch"].values.tolist()))
    ([0, 1, 2], [0, 1, 2])
    """
    from bayesactiv.monitor import FiringMonitor
    from bayesactiv.zoo.architectures import ARCHITECTURES
    from bayesactiv.zoo.training import deterministic_torch

    sc = SCENARIOS[scenario] if isinstance(scenario, str) and scenario in SCENARIOS else scenario
    if not isinstance(sc, Scenario):
        raise ArgumentError(f"scenario: expected one of {sorted(SCENARIOS)} or a Scenario, got "
                            f"{scenario!r}")
    if architecture not in SETTINGS:
        raise ArgumentError(f"architecture: expected one of {sorted(SETTINGS)}, got "
                            f"{architecture!r}")
    epochs = sc.epochs if epochs is None else int(epochs)
    lr, batch = SETTINGS[architecture]
    data = splits(seed)
    x, y_true = data["train"]
    if sc.train_size is not None:
        x, y_true = x[:sc.train_size], y_true[:sc.train_size]
    y, _ = _labels(sc, y_true, seed)
    x_val, y_val = data["validation"]
    x_test, y_test = data["test"]
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with deterministic_torch(seed):
        net = ARCHITECTURES[architecture]()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        order = torch.Generator().manual_seed(seed)
        layers = list(WATCHED[architecture] if layers is None else layers)
        mon = FiringMonitor(net, layers, probe=x_val, network=architecture, keep_events=True,
                            window_size=window_size, summaries=False, topk=0)
        for epoch in range(epochs + 1):
            if epoch > 0:
                net.train()
                perm = torch.randperm(len(y), generator=order)
                for lo in range(0, len(y), batch):
                    idx = perm[lo:lo + batch]
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(net(x[idx]), y[idx]).backward()
                    opt.step()
            mon.observe(epoch)
            train_loss, train_acc = _evaluate(net, x, y)
            val_loss, val_acc = _evaluate(net, x_val, y_val)
            _, test_acc = _evaluate(net, x_test, y_test)
            rows.append({"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                         "val_loss": val_loss, "val_acc": val_acc, "test_acc": test_acc})
            if progress and epoch % 10 == 0:
                print(f"{sc.name} {architecture} seed {seed} epoch {epoch}: train "
                      f"{train_acc:.3f} test {test_acc:.3f} "
                      f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return Run(sc.name, architecture, seed, pd.DataFrame(rows), mon.dataset(),
               time.perf_counter() - start)


def oui_rise(history: xr.Dataset, *, start: int = 5) -> pd.DataFrame:
    """The network's OUI (:func:`bayesactiv.monitor.hamming`, mean over layers) per epoch from
    ``start``, and its rise above the lowest value since ``start`` (``rise``).

    Examples
    --------
    >>> r = run("true", seed=0, epochs=3)
    >>> oui_rise(r.history, start=1)["epoch"].tolist()
    [1, 2, 3]
    """
    from bayesactiv.monitor.hamming import oui

    table = oui(history)
    net = table[(table["layer"] == "*") & (table["epoch"] >= start)].sort_values("epoch")
    values = net["oui"].to_numpy()
    return pd.DataFrame({"epoch": net["epoch"].to_numpy(), "oui": values,
                         "rise": values - np.minimum.accumulate(values)})


def signals(r: Run, *, alarm: Any = None, patience: int = 10, oui_margin: float | None = None,
            consecutive: int = 2) -> dict[str, Any]:
    """When each signal fires in a run, beside the epoch at which held-out accuracy peaks.

    Parameters
    ----------
    r : Run
    alarm : FiringAlarm, optional
        The firing alarm (default :class:`bayesactiv.monitor.FiringAlarm` ()).
    patience : int
        Validation-loss early stopping: stop when the validation loss has not improved for
        this many epochs (fires at that epoch; restores the best one).
    oui_margin : float, optional
        The OUI alarm: fires when the network's OUI has risen more than this above its lowest
        value since the alarm's ``start``, ``consecutive`` epochs in a row (None: not scored).
    consecutive : int
        Epochs in a row for the OUI alarm.

    Returns
    -------
    dict
        ``peak_epoch`` (first epoch of maximal test accuracy), ``peak_acc``, ``final_acc``,
        ``alarm_epoch`` / ``alarm_layer`` (None: never), ``alarm_acc`` (test accuracy at the
        alarm), ``es_epoch`` (early stopping; None: never), ``es_best`` (its restored
        epoch), ``es_acc`` (test accuracy at ``es_best``), ``oui_epoch``, ``oui_acc``.

    Examples
    --------
    >>> from bayesactiv.monitor import FiringAlarm
    >>> r = run("noise-40", seed=0, epochs=4)
    >>> out = signals(r, alarm=FiringAlarm(margin=0.5, start=1), oui_margin=0.5)
    >>> out["alarm_epoch"], out["oui_epoch"], out["peak_epoch"] <= 4
    (None, None, True)
    """
    from bayesactiv.monitor.indicator import FiringAlarm, consecutive_runs

    alarm = FiringAlarm() if alarm is None else alarm
    m = r.metrics.set_index("epoch")
    acc = m["test_acc"]
    peak = int(acc.idxmax())
    found = alarm.check(r.history)
    val = m["val_loss"].to_numpy()
    best, es_epoch = 0, None
    for e in range(1, len(val)):
        if val[e] < val[best]:
            best = e
        elif e - best >= patience:
            es_epoch = e
            break
    out = {"scenario": r.scenario, "architecture": r.architecture, "seed": r.seed,
           "peak_epoch": peak, "peak_acc": float(acc.max()), "final_acc": float(acc.iloc[-1]),
           "alarm_epoch": found.epoch, "alarm_layer": found.layer,
           "alarm_acc": None if found.epoch is None else float(acc.loc[found.epoch]),
           "es_epoch": es_epoch, "es_best": best, "es_acc": float(acc.loc[best]),
           "oui_epoch": None, "oui_acc": None}
    if oui_margin is not None:
        rise = oui_rise(r.history, start=alarm.start or 0)
        fired = rise["epoch"].to_numpy()[consecutive_runs(rise["rise"].to_numpy() > oui_margin,
                                                           consecutive)]
        e = int(fired[0]) if len(fired) else None
        out["oui_epoch"], out["oui_acc"] = e, None if e is None else float(acc.loc[e])
    return out


def calibrate(runs: list[Run], *, start: int = 5, level: float = 0.95, slack: float = 0.01,
              draws: int = 400) -> dict[str, float]:
    """Margins of the firing alarm and of the OUI alarm from generalizing runs.

    Each margin is the largest change the runs show (MFR fall below its peak at posterior
    level ``level``; OUI rise above its lowest value) plus ``slack``, rounded up to 0.005.

    Examples
    --------
    >>> r = run("true", seed=0, epochs=6)
    >>> sorted(calibrate([r], start=2))
    ['mfr_margin', 'oui_margin']
    """
    from bayesactiv.monitor.indicator import calibrate_margin, round_up_margin

    mfr = calibrate_margin([r.history for r in runs], level=level, reference="peak",
                           start=start, slack=slack, draws=draws)
    worst = max(float(oui_rise(r.history, start=start)["rise"].max()) for r in runs)
    return {"mfr_margin": mfr,
            "oui_margin": round_up_margin(worst + slack)}


def study(runs: list[Run], *, design_seeds: tuple[int, ...], start: int = 5,
          level: float = 0.95, consecutive: int = 2, slack: float = 0.01, patience: int = 10,
          draws: int = 400) -> tuple[pd.DataFrame, dict[tuple[str, str], dict[str, float]]]:
    """Calibrate on the design seeds' generalizing runs, score every other run.

    Per architecture, the margins come from its ``true`` runs of ``design_seeds``
    (:func:`calibrate`); the runs of the other seeds are scored (:func:`signals`).

    Returns
    -------
    scored : pandas.DataFrame
        One row per held-out run (the columns of :func:`signals`).
    margins : dict
        Per architecture, the margins used.
    """
    from bayesactiv.monitor.indicator import FiringAlarm

    rows, margins = [], {}
    for arch in sorted({r.architecture for r in runs}):
        mine = [r for r in runs if r.architecture == arch]
        design = [r for r in mine if r.seed in design_seeds and not SCENARIOS[r.scenario].memorizes]
        if not design:
            raise ArgumentError(f"design_seeds: no generalizing run of {arch} among seeds "
                                f"{design_seeds}")
        margins[arch] = calibrate(design, start=start, level=level, slack=slack, draws=draws)
        alarm = FiringAlarm(margin=margins[arch]["mfr_margin"], level=level, reference="peak",
                            start=start, consecutive=consecutive, draws=draws)
        for r in mine:
            if r.seed not in design_seeds:
                rows.append(signals(r, alarm=alarm, patience=patience,
                                    oui_margin=margins[arch]["oui_margin"],
                                    consecutive=consecutive))
    return pd.DataFrame(rows), margins


def _median(values: pd.Series) -> str:
    v = values.dropna()
    return "–" if v.empty else f"{np.median(v.astype(float)):.0f}"


def _acc(values: pd.Series) -> str:
    v = values.dropna()
    return "–" if v.empty else f"{np.median(v.astype(float)):.3f}"


def summary(scored: pd.DataFrame) -> pd.DataFrame:
    """Per architecture and scenario: how often and when each signal fired (medians).

    Columns: runs, held-out accuracy peak epoch and accuracy, final accuracy; firing alarm
    (runs fired / runs, median epoch, median held-out accuracy at it); the OUI alarm
    likewise; validation-loss early stopping (median stop epoch, restored epoch and its
    accuracy).
    """
    out = []
    for (arch, sc), g in scored.groupby(["architecture", "scenario"], sort=False):
        out.append({
            "architecture": arch, "scenario": sc, "runs": len(g),
            "acc peak: epoch": _median(g["peak_epoch"]), "peak acc": _acc(g["peak_acc"]),
            "final acc": _acc(g["final_acc"]),
            "firing alarm: fired": f"{g['alarm_epoch'].notna().sum()}/{len(g)}",
            "firing: epoch": _median(g["alarm_epoch"]), "firing: acc": _acc(g["alarm_acc"]),
            "OUI alarm: fired": f"{g['oui_epoch'].notna().sum()}/{len(g)}",
            "OUI: epoch": _median(g["oui_epoch"]), "OUI: acc": _acc(g["oui_acc"]),
            "val-loss stop: epoch": _median(g["es_epoch"]),
            "restored: epoch": _median(g["es_best"]), "restored: acc": _acc(g["es_acc"]),
        })
    return pd.DataFrame(out)


def zoo_check(architecture: str, *, start: int = 10, level: float = 0.95, slack: float = 0.01,
              draws: int = 1000) -> pd.DataFrame:
    """The firing alarm on the shipped checkpoints of :mod:`bayesactiv.zoo` (``models/``).

    The generalizing network ``digits-<architecture>`` and its memorizing twin (shuffled
    labels) are recorded at every checkpoint on the 360 held-out digits (events kept),
    watching every hidden layer that sees one event per input. The margin is calibrated on
    the generalizing network's checkpoints from ``start`` on (:func:`calibrate_margin`, plus
    ``slack``), and the alarm (``reference="peak"``, one checkpoint suffices: they are far
    apart) then looks at the memorizing one.

    Returns
    -------
    pandas.DataFrame
        Per network: ``network``, ``checkpoints``, ``margin``, ``alarm_epoch``,
        ``alarm_layer``, ``largest_fall`` (the largest posterior-mean fall below the peak
        in any layer), ``test_acc`` (at each checkpoint, from the model card).

    Examples
    --------
    >>> zoo_check("mlp", draws=200)["network"].tolist()
    ['digits-mlp', 'digits-mlp-memorize']
    """
    import bayesactiv as ba
    from bayesactiv.monitor.indicator import FiringAlarm, calibrate_margin, mfr_change
    from bayesactiv.zoo.data import dataset
    from bayesactiv.zoo.loading import card, epochs, hidden_layers, load

    x, _ = dataset("digits", "test")
    names = [f"digits-{architecture}", f"digits-{architecture}-memorize"]
    histories = {}
    for name in names:
        parts = []
        for epoch in epochs(name):
            net = load(name, epoch)
            layers = hidden_layers(name)
            ds = ba.record(net, x, layers, network=name, keep_events=False, progress=False)
            dense = [la for la in layers
                     if int(ds["n"].values[ds["layer"].values == la][0]) == len(x)]
            ds = ba.record(net, x, dense, network=name, keep_events=True, progress=False,
                           summaries=False, topk=0)
            parts.append(ba.dataset.set_epoch(ds, epoch))
        histories[name] = ba.combine(parts)
    margin = calibrate_margin([histories[names[0]]], level=level, start=start, slack=slack,
                              draws=draws)
    alarm = FiringAlarm(margin=margin, level=level, reference="peak", start=start,
                        consecutive=1, draws=draws)
    rows = []
    for name in names:
        found = alarm.check(histories[name])
        change = mfr_change(histories[name], reference="peak", start=start, margin=margin,
                            draws=draws)
        acc = {int(r["epoch"]): r["test_accuracy"] for r in card(name)["checkpoints"]}
        rows.append({"network": name, "checkpoints": epochs(name), "margin": margin,
                     "alarm_epoch": found.epoch, "alarm_layer": found.layer,
                     "largest_fall": float(-change["delta"].min()),
                     "test_acc": acc})
    return pd.DataFrame(rows)
