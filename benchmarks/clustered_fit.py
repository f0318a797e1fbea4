"""Speed of the clustered model: ``fit`` + every per-unit 90% interval, 10^3 vs 10^5 units.

Run: ``.venv/bin/python benchmarks/clustered_fit.py``. Token events of 100 inputs x 16 tokens
per unit (p_ui ~ Beta(theta_u, 1 - theta_u), theta_u ~ Beta(0.5, 2)), built with
``ba.data.from_input_counts``; ``fit(ds)`` (the default, ``clustered_beta_binomial``, 1000 draws
x 4 chains) then ``units(0.9)``. The first fit of the process includes compiling the model;
each size is then timed twice, side by side in one run, and the load average is printed.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

import bayesactiv as ba


def dataset(rng: np.random.Generator, units: int, inputs: int = 100, tokens: int = 16):
    theta = rng.beta(0.5, 2.0, units)
    p = rng.beta(theta + 1e-9, 1 - theta + 1e-9, (inputs, units))
    c = rng.binomial(tokens, p)
    return ba.data.from_input_counts(c, np.full(inputs, tokens), network="n", layer="l")


def timed(ds) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ba.ConvergenceWarning)
        f = ba.fit(ds, seed=0)
    t1 = time.perf_counter()
    f.units(0.9)
    return t1 - t0, time.perf_counter() - t1, len(f._stats.pair_x)


def main() -> None:
    rng = np.random.default_rng(0)
    sizes = {1_000: dataset(rng, 1_000), 100_000: dataset(rng, 100_000)}
    fit_s, units_s, _ = timed(sizes[1_000])
    print(f"first fit in the process (compiles): fit {fit_s:.1f} s, units {units_s:.1f} s")
    for repeat in range(2):
        for size, ds in sizes.items():
            fit_s, units_s, pairs = timed(ds)
            print(f"{size:>7} units ({pairs} distinct pairs), run {repeat + 1}: fit {fit_s:.1f} s, "
                  f"units(0.9) {units_s:.1f} s, total {fit_s + units_s:.1f} s")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
