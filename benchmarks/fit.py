"""Benchmark of bayesactiv.fit: the fast (collapsed) path vs the full PyMC model, and scaling.

Run: ``.venv/bin/python benchmarks/fit.py [--quick]`` (``--quick`` skips 10^6 units and the
full model). Prints Markdown tables. Timings are wall-clock, measured side by side in one
process after compilation; compile time is reported separately. Memory is the peak resident
set size above the level before the fit, sampled every 5 ms by a thread (it includes the
sampler's Rust threads, which tracemalloc cannot see).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import warnings

import numpy as np

import bayesactiv as ba
from bayesactiv.bayes import likelihood, models, quantiles, sampling, specs, sufficient
from bayesactiv.bayes.native import native_logp

KW = {"draws": 1000, "tune": 1000, "chains": 4, "seed": 1}


def simulate(n_units: int, n_inputs: int = 2000, seed: int = 0):
    """Two layers: sparse firing (Beta(0.1, 1.9)) and dense firing (Beta(2.4, 5.6))."""
    rng = np.random.default_rng(seed)
    half = n_units // 2
    theta = np.concatenate([rng.beta(0.05 * 2, 0.95 * 2, half),
                            rng.beta(0.3 * 8, 0.7 * 8, n_units - half)])
    count = rng.binomial(n_inputs, theta)
    return ba.make_dataset(count, n_inputs, network="net",
                           layer=np.where(np.arange(n_units) < half, "fc1", "fc2"))


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Context manager: peak RSS above the starting level, in MiB (sampled every 5 ms)."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.mib = (self.peak - self.base) / 2**20


def timed_fit(ds, **kw):
    """Fit, then units(0.9) and groups(0.9): (fit, fit s, units s, groups s, compiles)."""
    compiles = sum(sampling.COMPILE_COUNT.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)
        t0 = time.perf_counter()
        f = ba.fit(ds, **kw)
        t1 = time.perf_counter()
        f.units(0.9)
        t2 = time.perf_counter()
        f.groups(0.9)
        t3 = time.perf_counter()
    return f, t1 - t0, t2 - t1, t3 - t2, sum(sampling.COMPILE_COUNT.values()) - compiles


def likelihood_cost(n_units: int) -> None:
    """Cost of one log-density + gradient evaluation: the tail-sum form used by the marginal
    beta-binomial vs the per-pair betaln form it replaced, on the same data."""
    import pymc as pm
    import pytensor.tensor as pt

    ds = simulate(n_units, seed=2)
    groups = sufficient.make_groups(ds, ("network", "layer"), False)
    st = sufficient.unit_stats(ds, "beta_binomial", groups)
    size = sampling.bucket(len(st.pair_x))
    pad = size - len(st.pair_x)
    with pm.Model() as pair_model:
        x = pm.Data("x", np.pad(st.pair_x.astype(float), (0, pad)))
        m = pm.Data("m", np.pad(st.pair_m.astype(float), (0, pad), constant_values=1.0))
        w = pm.Data("w", np.pad(st.pair_weight, (0, pad)))
        g = pm.Data("g", np.pad(st.pair_group, (0, pad)))
        p = specs.group_params("beta", len(groups.labels), None, 1, False)
        a, b = p["a"][g], p["b"][g]
        pm.Potential("loglik", pt.sum(w * (likelihood.betaln(x + a, m - x + b)
                                           - likelihood.betaln(a, b))))
    data, sizes = sampling.model_data("beta", "marginal", st, groups)
    tail_model = sampling.build_model("beta", "marginal", len(groups.labels), 1, False, data)
    point = np.array([0.0, 0.5, 2.0, 2.5])
    res = {}
    for name, model in (("pair form", pair_model), ("tail-sum form", tail_model)):
        fn = model.logp_dlogp_function(ravel_inputs=True, mode="NUMBA")
        fn.set_extra_values({})
        logp = float(fn(point)[0])
        reps = 3000
        t0 = time.perf_counter()
        for i in range(reps):
            fn(point + 1e-3 * (i % 7))
        res[name] = ((time.perf_counter() - t0) / reps * 1e6, logp)
    native = sampling.native_model("beta", "marginal", st, groups, False, (1.0, 1.0))
    grad = np.empty(native.n_dim)
    x = point.copy()  # same order as PyMC's: logit mu of each group, then log kappa
    logp_native = float(native_logp(native.buffer, x, grad))
    reps = 3000
    t0 = time.perf_counter()
    for i in range(reps):
        native_logp(native.buffer, x + 1e-3 * (i % 7), grad)
    res["native tail-sum form (numba callback, runs as products)"] = (
        (time.perf_counter() - t0) / reps * 1e6, logp_native)
    print(f"## log-density + gradient, {n_units:,} units x 2,000 inputs "
          f"({len(st.pair_x):,} distinct pairs, padded {size:,}; tail form {sizes[1:]} "
          "log / lgamma terms, padded)\n")
    print("| form | us per evaluation | logp at a test point |")
    print("|---|---|---|")
    for name, (us, logp) in res.items():
        print(f"| {name} | {us:.1f} | {logp:.6f} |")
    print(f"\nratio pair / tail: {res['pair form'][0] / res['tail-sum form'][0]:.1f}x; "
          f"PyMC tail / native: "
          f"{res['tail-sum form'][0] / res[next(iter(k for k in res if 'native' in k))][0]:.1f}x"
          "\n")


def fast_vs_full() -> None:
    ds = simulate(1000)
    rows = {}
    for method in ("marginal", "full"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # compile (a short run of the same model)
            warnings.simplefilter("ignore", models.ConvergenceWarning)
            ba.fit(ds, method=method, draws=10, tune=10, chains=1, seed=0)
        t_compile = time.perf_counter() - t0
        f, t_fit, t_units, t_groups, nc = timed_fit(ds, method=method, **KW)
        rows[method] = (t_compile, f, t_fit, t_units, t_groups, nc)
    print("## fast path vs full model (1,000 units x 2,000 inputs, 2 groups, "
          "4 chains x 1,000 draws + 1,000 tune)\n")
    print("| method | first call incl. compile s | fit s | units s | groups s | total s | "
          "mu mean (fc1, fc2) | kappa mean | rhat max | ess bulk min | compiles |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for method, (t_compile, f, t_fit, t_units, t_groups, nc) in rows.items():
        g = f.groups(0.9)
        mu = ", ".join(f"{v:.4f}" for v in g["mu_mean"].values)
        kappa = ", ".join(f"{v:.2f}" for v in g["kappa_mean"].values)
        d = f.diagnostics
        print(f"| {method} | {t_compile:.1f} | {t_fit:.2f} | {t_units:.2f} | {t_groups:.2f} | "
              f"{t_fit + t_units + t_groups:.2f} | {mu} | {kappa} | {d['rhat_max']:.3f} | "
              f"{d['ess_bulk_min']:.0f} | {nc} |")
    fast = sum(rows["marginal"][2:5])
    slow = sum(rows["full"][2:5])
    ua, ub = rows["marginal"][1].units(0.9), rows["full"][1].units(0.9)
    diff = float(max(abs(ua["low"] - ub["low"]).max(), abs(ua["high"] - ub["high"]).max()))
    ga, gb = rows["marginal"][1].groups(0.9), rows["full"][1].groups(0.9)
    dmfr = float(abs(ga["mfr_mean"] - gb["mfr_mean"]).max())
    print(f"\nspeed-up of the fast path (compiled fit + units + groups): {slow / fast:.0f}x; "
          f"max |90% interval bound difference| over units = {diff:.4f}; "
          f"max |mfr mean difference| = {dmfr:.1e}\n")


def scaling(sizes: list[int]) -> None:
    print("## scaling of the fast path (2,000 inputs, 2 groups, all per-unit 90% intervals, "
          "4 chains x 1,000 draws + 1,000 tune)\n")
    print("| units | distinct pairs | first fit incl. compile s (compiles) | fit s | units s | "
          "groups s | total s | compiles in 2nd fit | peak RSS delta MiB | quantile draws | "
          "max bound diff vs all 4,000 draws |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n_units in sizes:
        ds = simulate(n_units, seed=2)
        t0 = time.perf_counter()
        _f, *_rest, nc_first = timed_fit(ds, **KW)
        t_first = time.perf_counter() - t0
        with PeakRSS() as mem:
            f, t_fit, t_units, t_groups, nc = timed_fit(ds, **KW)
        st, params = f._stats, f._draw_params()
        n_draws = next(iter(params.values())).shape[1]
        quick = quantiles.unit_summaries(st, params, [0.05, 0.95], f.epsilon)
        every = quantiles.unit_summaries(st, params, [0.05, 0.95], f.epsilon,
                                       n_quantile_draws=n_draws)
        err = float(np.abs(quick[:, 1:3] - every[:, 1:3]).max())
        s_q = quantiles.quantile_draws(len(st.pair_x), n_draws)
        print(f"| {n_units:,} | {len(st.pair_x):,} | {t_first:.1f} ({nc_first}) | {t_fit:.2f} | "
              f"{t_units:.2f} | {t_groups:.2f} | {t_fit + t_units + t_groups:.2f} | {nc} | "
              f"{mem.mib:.0f} | {s_q} | {err:.1e} |", flush=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="skip 10^6 units and the full model")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}\n")
    likelihood_cost(100_000)
    if not args.quick:
        fast_vs_full()
    scaling([10_000, 100_000] + ([] if args.quick else [1_000_000]))
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
