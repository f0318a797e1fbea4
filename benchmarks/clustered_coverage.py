"""How wrong token-level intervals are, and how right the clustered ones: the issue's simulation.

Run: ``.venv/bin/python benchmarks/clustered_coverage.py [--datasets 10]``.

Per dataset: 60 units, 150 inputs x 32 tokens; each input gives unit u a propensity
``p_ui ~ Beta(theta_u phi, (1 - theta_u) phi)`` (theta_u ~ Uniform(0.02, 0.5)), tokens fire
independently given it; the activations (+1 fired, -1 not) go through ``ba.record`` as a
``[batch, sequence, feature]`` output with ``keep_events=True``. Printed: the share of units
whose 90% interval covers theta_u, for ``fit(ds)`` (the default: ``clustered_beta_binomial``),
``fit(ds, "beta_binomial")`` (every token an independent trial), and the percentile
bootstrap of ``ba.baselines.bootstrap`` (whole inputs resampled), with the median width
of each interval, pooled over the datasets (+- 2 standard errors over datasets).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import bayesactiv as ba


def simulate(rng: np.random.Generator, phi: float | None, units: int = 60, inputs: int = 150,
             tokens: int = 32):
    theta = rng.uniform(0.02, 0.5, units)
    if phi is None:
        p = np.broadcast_to(theta, (inputs, units))
    else:
        p = rng.beta(theta * phi, (1 - theta) * phi, (inputs, units))
    fired = rng.random((inputs, tokens, units)) < p[:, None, :]
    acts = torch.from_numpy(np.where(fired, 1.0, -1.0).astype(np.float32))
    net = torch.nn.Sequential(torch.nn.Identity())
    ds = ba.record(net, acts, "0", keep_events=True, progress=False, summaries=False,
                   network="sim")
    return ds, theta


def score(lo: np.ndarray, hi: np.ndarray, theta: np.ndarray) -> tuple[float, float]:
    return float(((lo <= theta) & (theta <= hi)).mean()), float(np.median(hi - lo))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    print("| phi | clustered posterior | token-level posterior | input bootstrap |")
    print("|---|---|---|---|")
    for phi in (1.0, 3.0, 10.0, None):
        rows: dict[str, list[tuple[float, float]]] = {"clustered": [], "naive": [], "boot": []}
        for _ in range(args.datasets):
            ds, theta = simulate(rng, phi)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                u = ba.fit(ds, seed=1, draws=500, tune=500, chains=2).units(0.9)
                rows["clustered"].append(score(u["low"].values, u["high"].values, theta))
                u = ba.fit(ds, "beta_binomial", seed=1, draws=500, tune=500, chains=2).units(0.9)
                rows["naive"].append(score(u["low"].values, u["high"].values, theta))
            b = ba.baselines.bootstrap(ds, n_resamples=1000, confidence_level=0.9, seed=1)
            rows["boot"].append(score(b["low"].values, b["high"].values, theta))
        cells = []
        for key in ("clustered", "naive", "boot"):
            cov = np.array([r[0] for r in rows[key]])
            width = np.median([r[1] for r in rows[key]])
            se = cov.std(ddof=1) / np.sqrt(len(cov)) if len(cov) > 1 else float("nan")
            cells.append(f"{cov.mean():.3f} +- {2 * se:.3f} (width {width:.3f})")
        print(f"| {'independent' if phi is None else phi} | " + " | ".join(cells) + " |")
    print(f"\n{args.datasets} datasets per row; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
