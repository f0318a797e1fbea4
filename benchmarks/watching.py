"""The validation study of the firing monitor's alarm (README, "Watching training").

Trains digits networks from scratch in the scenarios of ``bayesactiv.studies.watching``
(true labels; shuffled labels; 200 training digits trained long; 20% and 40% label noise),
with a ``FiringMonitor`` observing 300 validation inputs (no labels) after every epoch, and
scores three signals against the epoch at which held-out accuracy (360 test digits) peaks:

* the firing alarm (``FiringAlarm(reference="peak", start=5)``): some layer's posterior MFR
  fallen below the highest level it reached since epoch 5 by more than the margin, at
  posterior probability >= 0.95, two epochs in a row;
* the OUI alarm: the Hamming-distance indicator of arXiv 2504.17160 (mean over layers) risen
  above its lowest value since epoch 5 by more than its margin, two epochs in a row;
* validation-loss early stopping (patience 10; the validation set is the probe's inputs with
  their labels).

Then the same alarm on the shipped checkpoints of ``models/`` (each memorizing network
against a margin calibrated on its generalizing twin).

Both alarms' margins are calibrated on the true-label runs of the *design* seeds (the largest
change they show, plus 0.01); every number in the table comes from the other seeds, so the
false-alarm rate on the true-label runs is measured on runs the margins never saw.

Usage::

    .venv/bin/python benchmarks/watching.py            # about 15 minutes on 2 cores
    .venv/bin/python benchmarks/watching.py --quick    # a small run (minutes)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from bayesactiv.studies.watching import SCENARIOS, run, study, summary, zoo_check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few seeds and short runs")
    parser.add_argument("--out", default=None, help="write the per-run table to this CSV")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    start = time.perf_counter()
    if args.quick:
        plan = {"digits-mlp": {"true": range(4), "memorizing": range(2, 4)}}
        design = (0, 1)
    else:
        plan = {"digits-mlp": {"true": range(16), "memorizing": range(4, 10)},
                "digits-cnn": {"true": range(12), "memorizing": range(4, 8)}}
        design = (0, 1, 2, 3)
    runs = []
    for arch, seeds in plan.items():
        for name, sc in SCENARIOS.items():
            for seed in seeds["memorizing" if sc.memorizes else "true"]:
                r = run(name, seed=seed, architecture=arch,
                        epochs=40 if args.quick else None)
                runs.append(r)
                print(f"{arch} {name} seed {seed}: {r.seconds:.1f} s "
                      f"(peak test accuracy {r.metrics['test_acc'].max():.3f})",
                      file=sys.stderr, flush=True)
    scored, margins = study(runs, design_seeds=design)
    if args.out:
        scored.to_csv(Path(args.out), index=False)
    print(f"\nmargins calibrated on the true-label runs of seeds {design}: {margins}")
    table = summary(scored)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False))
    print()
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in row) + " |")
    print("\nThe shipped checkpoints of models/ (margin calibrated on the generalizing "
          "network's checkpoints from epoch 10 on; 360 held-out digits):")
    print("| network | checkpoints | margin | alarm at epoch (layer) | largest fall below peak |"
          " held-out accuracy at the checkpoints |")
    print("|---|---|---|---|---|---|")
    for arch in ("mlp", "cnn", "densenet"):
        for row in zoo_check(arch).itertuples():
            fired = "–" if pd.isna(row.alarm_epoch) or row.alarm_epoch is None else \
                f"{int(row.alarm_epoch)} ({row.alarm_layer})"
            accs = ", ".join(f"{e}: {a:.2f}" for e, a in row.test_acc.items())
            print(f"| {row.network} | {len(row.checkpoints)} | {row.margin:.3f} | {fired} | "
                  f"{row.largest_fall:.3f} | {accs} |")
    print(f"\n{len(runs)} runs in {time.perf_counter() - start:.0f} s; load average at end: "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
