"""Full simulation-based calibration: >= 100 datasets per scenario, Markdown coverage table.

Run: ``.venv/bin/python benchmarks/calibration.py [--datasets 100]``. Prints the table for the
README: mean coverage of the equal-tailed 50% and 90% posterior intervals (bayes) and of the
Wald, Wilson and bootstrap intervals over the same simulations, +- 2 standard errors over
datasets, and chi-square p-values of SBC rank uniformity.
"""

from __future__ import annotations

import argparse
import time

from bayesactiv.bayes import calibration


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--scenarios", nargs="*", default=list(calibration.SCENARIOS))
    args = parser.parse_args()
    t0 = time.perf_counter()
    res = calibration.run(args.scenarios, args.datasets, draws=args.draws, tune=args.draws,
                          chains=2, seed=0)
    print(calibration.coverage_table(res))
    print(f"\n{args.datasets} datasets per scenario, {args.draws} draws x 2 chains; "
          f"datasets with divergences: {int((res['divergences'] > 0).sum())}; "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
