"""Full simulation-based calibration: >= 100 datasets per scenario, Markdown coverage table.

Run: ``.venv/bin/python benchmarks/calibration.py [--datasets 100] [--scenarios ...]``. Prints
the table for the README: mean coverage of the equal-tailed 50% and 90% posterior intervals
(bayes) and of the Wald, Wilson and bootstrap intervals over the same simulations, +- 2
standard errors over datasets, and chi-square p-values of SBC rank uniformity. Clustered
scenarios (tokens in inputs) score the default (clustered) posterior, the naive token-level
posterior and the bootstrap over whole inputs. ``--scenarios`` takes names, or ``dense`` /
``clustered`` for all scenarios of that kind (default: all, the dense ones first, so their
numbers are those of a dense-only run).
"""

from __future__ import annotations

import argparse
import os
import time

from bayesactiv.bayes import calibration

_KINDS = {"dense": calibration.DENSE, "clustered": calibration.CLUSTERED}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--scenarios", nargs="*", default=list(calibration.SCENARIOS),
                        help="scenario names, or 'dense' / 'clustered'")
    args = parser.parse_args()
    names = [n for word in args.scenarios for n in _KINDS.get(word, (word,))]
    t0 = time.perf_counter()
    res = calibration.run(names, args.datasets, draws=args.draws, tune=args.draws,
                          chains=2, seed=0)
    print(calibration.coverage_table(res))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.datasets} datasets per scenario, {args.draws} draws x 2 chains; "
          f"datasets with divergences: {int((res['divergences'] > 0).sum())}; "
          f"{time.perf_counter() - t0:.0f} s; load average at the end {load}")


if __name__ == "__main__":
    main()
