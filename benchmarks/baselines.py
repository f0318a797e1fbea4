"""Benchmark: bayesactiv.stats.baselines.bootstrap against two scipy-based approaches.

Measured side by side in one run, on the same simulated firing matrix
(default 1,000 units x 10,000 inputs, B = 1,000 resamples, percentile intervals):

(a) seed 000's approach: ``scipy.stats.bootstrap`` with a Python statistic that
    calls ``network.predict`` per input, one unit at a time. Hopeless at full
    size, so it is timed on 1 unit and a few resamples and scaled linearly to
    all units and B resamples (stated in the table). Its ``predict`` only looks
    up a precomputed activation row, so the real thing (a forward pass per
    input) is slower still: the ratio is a lower bound.
(b) ``scipy.stats.bootstrap(..., vectorized=True, axis=0, batch=...)`` on the
    whole ``fired`` matrix at once.

Also compares the intervals of (b) and bayesactiv (max abs difference of the
bounds against their Monte Carlo standard error) and the peak memory
(tracemalloc, measured in separate runs so that tracing does not slow the timings).

Run: ``.venv/bin/python benchmarks/baselines.py`` (``--quick`` for a small run).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from scipy import stats

import bayesactiv as ba
from bayesactiv.stats import baselines


class LookupNetwork:
    """Stands in for seed 000's ``network``: ``predict`` returns one input's activations."""

    def __init__(self, activations: np.ndarray) -> None:
        self.activations = activations

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.activations[int(x[0, 0])][None, :]


def seed000_bootstrap(network, input_data, unit_index, n_resamples, rng):
    """Seed 000, example 2, with method='percentile' (its default BCa adds n^2 predicts)."""

    def activation_estimator(data_subset):
        acts = [network.predict(sample.reshape(1, -1))[0][unit_index] for sample in data_subset]
        return np.mean(np.array(acts) > 0)

    return stats.bootstrap((input_data,), activation_estimator, n_resamples=n_resamples,
                           method="percentile", vectorized=False, rng=rng)


def timed(func, repeat: int = 1):
    best = np.inf
    out = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - start)
    return best, out


def peak_mib(func) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    func()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 units x 2,000 inputs, B = 200")
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--scipy-batch", type=int, default=20,
                        help="resamples per chunk for the vectorized scipy run")
    parser.add_argument("--seed000-resamples", type=int, default=5,
                        help="resamples timed for seed 000's loop (1 unit), then scaled")
    args = parser.parse_args()
    if args.quick:
        args.units, args.inputs, args.resamples = 200, 2000, 200
    units, n, B = args.units, args.inputs, args.resamples

    rng = np.random.default_rng(0)
    p = rng.beta(0.8, 1.2, units)
    p[:5] = [0.0, 1.0, 0.001, 0.5, 0.999]
    acts = rng.random((n, units)) - (1 - p)  # fires (> 0) with probability p
    fired = acts > 0
    ds = ba.make_dataset(fired.sum(0), n, network="bench", layer="fc", fired=fired)
    print(f"data: {units} units x {n} inputs, B = {B} resamples, 95% percentile intervals")

    # bayesactiv (warm-up once: first BLAS call and imports)
    baselines.bootstrap(ds.isel(unit=slice(0, 10)), n_resamples=20, seed=0)
    t_ours, ours = timed(lambda: baselines.bootstrap(ds, n_resamples=B, seed=1), repeat=2)
    t_bca, _ = timed(lambda: baselines.bootstrap(ds, n_resamples=B, seed=1, method="bca"))

    # (b) scipy vectorized over the whole matrix
    data = fired.astype(np.float64)

    def scipy_vectorized():
        return stats.bootstrap((data,), np.mean, n_resamples=B, method="percentile",
                               vectorized=True, axis=0, batch=args.scipy_batch, rng=2)

    t_scipy, ref = timed(scipy_vectorized)

    # (a) seed 000: 1 unit, a few resamples, scaled to all units and B resamples
    network = LookupNetwork(acts)
    input_data = np.arange(n, dtype=np.float64)[:, None]
    b_small = args.seed000_resamples
    t_small, _ = timed(lambda: seed000_bootstrap(network, input_data, 3, b_small, rng=3))
    t_seed = t_small * (B / b_small) * units

    # intervals: same within Monte Carlo error?
    sd = np.sqrt(p * (1 - p) / n)
    # MC sd of a 2.5% / 97.5% quantile of B draws ~ 2.67 sd/sqrt(B); a difference of two runs: x sqrt 2
    mc_se = np.sqrt(2) * 2.67 * sd / np.sqrt(B)
    d_low = np.abs(ours["low"].values - ref.confidence_interval.low)
    d_high = np.abs(ours["high"].values - ref.confidence_interval.high)
    worst = np.maximum(d_low, d_high)
    step = 1.0 / n  # the estimate moves on a lattice of 1/n
    beyond = np.mean(worst > 4 * mc_se + step)

    # peak memory (separate runs, tracemalloc on)
    mem_ours = peak_mib(lambda: baselines.bootstrap(ds, n_resamples=B, seed=1))
    mem_scipy = peak_mib(scipy_vectorized)

    rows = [
        ("bayesactiv.stats.baselines.bootstrap (percentile)", t_ours, mem_ours),
        ("bayesactiv.stats.baselines.bootstrap (bca)", t_bca, None),
        (f"scipy.stats.bootstrap vectorized, batch={args.scipy_batch}", t_scipy, mem_scipy),
        (f"seed 000 loop (1 unit x {b_small} resamples, scaled x{B // b_small * units})",
         t_seed, None),
    ]
    print(f"\n{'method':<62} {'time (s)':>10} {'x ours':>9} {'peak MiB':>9}")
    for name, t, mem in rows:
        mem_s = f"{mem:9.1f}" if mem is not None else f"{'-':>9}"
        print(f"{name:<62} {t:10.3f} {t / t_ours:9.1f} {mem_s}")
    print(f"\nseed 000 measured: {t_small:.3f} s for 1 unit x {b_small} resamples "
          f"({b_small * n} predict calls); extrapolated linearly in units and resamples")
    print(f"speed-up vs seed 000 loop: {t_seed / t_ours:,.0f}x (target >= 100x)")
    print(f"speed-up vs scipy vectorized: {t_scipy / t_ours:.1f}x (target >= 50x)")
    print(f"peak memory: bayesactiv {mem_ours:.1f} MiB vs scipy {mem_scipy:.1f} MiB "
          f"({mem_scipy / mem_ours:.1f}x less)")
    print(f"interval agreement with scipy: max |d bound| = {worst.max():.5f}; "
          f"median MC s.e. of the difference = {np.median(mc_se):.5f}; "
          f"max of |d| / MC s.e. = {np.nanmax(worst / np.where(mc_se > 0, mc_se, np.nan)):.2f}; "
          f"units beyond 4 s.e. + 1/n: {beyond:.1%}")
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(ours["standard_error"].values / ref.standard_error - 1)
    print(f"standard errors: relative difference median {np.nanmedian(rel):.3f}, "
          f"max {np.nanmax(rel):.3f} (MC rel. sd of one run about {1 / np.sqrt(2 * (B - 1)):.3f},"
          f" of a difference of two runs about {1 / np.sqrt(B - 1):.3f})")


if __name__ == "__main__":
    main()
