"""Benchmark of bayesactiv.fit: fast (marginal, compressed) path vs the full PyMC model, and scaling.

Run: ``.venv/bin/python benchmarks/fit.py [--quick]``. Prints Markdown tables; timings are
side by side in one process, compile time reported separately.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
import warnings

import numpy as np

import bayesactiv as ba
from bayesactiv import models


def simulate(n_units: int, n_inputs: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    half = n_units // 2
    theta = np.concatenate([rng.beta(0.05 * 2, 0.95 * 2, half),
                            rng.beta(0.3 * 8, 0.7 * 8, n_units - half)])
    count = rng.binomial(n_inputs, theta)
    return ba.make_dataset(count, n_inputs, network="net",
                           layer=np.where(np.arange(n_units) < half, "fc1", "fc2"))


def timed_fit(ds, **kw):
    t0 = time.perf_counter()
    compiles = sum(models.COMPILE_COUNT.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        f = ba.fit(ds, **kw)
    t1 = time.perf_counter()
    f.units(0.9)
    f.groups(0.9)
    t2 = time.perf_counter()
    return f, t1 - t0, t2 - t1, sum(models.COMPILE_COUNT.values()) - compiles


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip 10^6 units")
    args = parser.parse_args()
    kw = {"draws": 1000, "tune": 1000, "chains": 4, "seed": 1}

    print("## fast path vs full model (1,000 units x 2,000 inputs, 4 chains x 1000 draws)\n")
    ds = simulate(1000)
    rows = []
    for method in ("marginal", "full"):
        f, t_fit_first, t_sum, nc = timed_fit(ds, method=method, **kw)
        f, t_fit, t_sum, _nc2 = timed_fit(ds, method=method, **kw)
        rows.append((method, t_fit_first, t_fit, t_sum, f))
    print("| method | first fit (incl. compile) s | fit s (compiled) | units+groups s | "
          "mu mean | rhat max | ess bulk min |")
    print("|---|---|---|---|---|---|---|")
    for method, first, t_fit, t_sum, f in rows:
        mu = ", ".join(f"{v:.4f}" for v in f.groups()["mu_mean"].values)
        d = f.diagnostics
        print(f"| {method} | {first:.1f} | {t_fit:.2f} | {t_sum:.2f} | {mu} | "
              f"{d['rhat_max']:.3f} | {d['ess_bulk_min']:.0f} |")
    fast = rows[0][2] + rows[0][3]
    slow = rows[1][2] + rows[1][3]
    ua, ub = rows[0][4].units(), rows[1][4].units()
    print(f"\nspeed-up (compiled fit + summaries): {slow / fast:.1f}x; "
          f"max |interval bound difference| = "
          f"{float(max(abs(ua['low'] - ub['low']).max(), abs(ua['high'] - ub['high']).max())):.4f}\n")

    print("## scaling of the fast path (2,000 inputs, all per-unit 90% intervals)\n")
    print("| units | distinct pairs | compiles | fit s | units+groups s | total s | "
          "peak traced MiB |")
    print("|---|---|---|---|---|---|---|")
    sizes = [10_000, 100_000] + ([] if args.quick else [1_000_000])
    for n_units in sizes:
        ds = simulate(n_units, seed=2)
        tracemalloc.start()
        f, t_fit, t_sum, nc = timed_fit(ds, **kw)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"| {n_units:,} | {len(f._stats.pair_x):,} | {nc} | {t_fit:.2f} | {t_sum:.2f} | "
              f"{t_fit + t_sum:.2f} | {peak:.0f} |")
    print(f"\nprocess max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"compiled models in this process: {len(models.COMPILE_COUNT)}, "
          f"compiles per key: {sorted(set(models.COMPILE_COUNT.values()))}")


if __name__ == "__main__":
    main()
