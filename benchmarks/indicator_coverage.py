"""Coverage of the monitor's intervals on simulated truth (README, "Watching training").

The simulations of ``bayesactiv.monitor.coverage``, with the settings that
``tests/monitor/test_indicator.py`` asserts on: nominal 90% equal-tailed intervals of the
layer's MFR (over inputs, and with the units taken as independent) and of the fraction of
dead units. Prints a markdown table.

Usage::

    .venv/bin/python benchmarks/indicator_coverage.py     # about a minute on 2 cores
"""

from __future__ import annotations

import os
import time

from bayesactiv.monitor.coverage import dead_replicates, mfr_replicates


def main() -> None:
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    start = time.perf_counter()
    clustered = {"loading": 2.0, "n_units": 10, "n_inputs": 60, "positions": 8,
                 "bias_sd": 0.7, "reps": 150, "seed": 9}
    cases = [
        ("MFR: 40 independent units, 120 inputs; over inputs",
         lambda: mfr_replicates(loading=0.0, seed=7)),
        ("MFR: 40 independent units, 120 inputs; units as independent",
         lambda: mfr_replicates(loading=0.0, seed=7, method="units")),
        ("MFR: one latent factor per input (loading 1.5); over inputs",
         lambda: mfr_replicates(loading=1.5, seed=7)),
        ("MFR: one latent factor per input (loading 1.5); units as independent",
         lambda: mfr_replicates(loading=1.5, seed=7, method="units")),
        ("MFR: 8 positions per input that copy it; over inputs",
         lambda: mfr_replicates(**clustered)),
        ("MFR: 8 positions per input that copy it; positions taken as inputs",
         lambda: mfr_replicates(**clustered, events_as_inputs=True)),
        ("fraction dead: rates ~ Beta(0.3, 3), 300 events",
         lambda: dead_replicates("beta")),
        ("fraction dead: a third at 0.002, the rest ~ Beta(2, 3) above 0.03",
         lambda: dead_replicates("mixture")),
    ]
    print("\n| simulated case | replicates | nominal | covered |")
    print("|---|---|---|---|")
    for name, make in cases:
        reps = make()
        print(f"| {name} | {len(reps)} | 90% | {100 * reps['covered'].mean():.1f}% |",
              flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s; load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
