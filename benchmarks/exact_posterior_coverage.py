"""Coverage of the *exact* beta-binomial posterior on the `prior` calibration scenario.

No sampler: the posterior of (logit mu, log kappa) is computed on a grid (a coarse grid to find
its bulk, then a fine 300 x 300 grid there), each unit's posterior CDF is the grid-weighted
mixture of conjugate Betas, and a unit is covered by the 90% equal-tailed interval when its
true theta sits between the 5% and 95% points. This separates what the model and the
simulation do from what the sampler does, and shows the effect of truths that float64 cannot
tell from 1 (see ``bayesactiv.calibration._scorable``).

Run: ``.venv/bin/python benchmarks/exact_posterior_coverage.py [--datasets 300] [--seed 0]``
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import special, stats

from bayesactiv import calibration


def _log_posterior(logit_mu, log_kappa, count, n):
    mu, kappa = special.expit(logit_mu), np.exp(log_kappa)
    a, b = mu * kappa, (1 - mu) * kappa
    lp = stats.norm.logpdf(log_kappa, np.log(10), 2.5) + np.log(mu) + np.log1p(-mu)
    return lp + np.sum(special.betaln(a[..., None] + count, b[..., None] + n - count)
                       - special.betaln(a, b)[..., None], axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    all_units, scorable_units = [], []
    for _ in range(args.datasets):
        ds, truth = calibration.simulate("prior", rng)
        count, n = ds["count"].values.astype(float), ds["n"].values.astype(float)
        theta = truth["theta"]
        g1, g2 = np.meshgrid(np.linspace(-15, 15, 241),
                             np.linspace(np.log(10) - 15, np.log(10) + 15, 241), indexing="ij")
        w = _log_posterior(g1, g2, count, n)
        bulk = np.exp(w - w.max()) > 1e-10
        f1, f2 = np.meshgrid(np.linspace(g1[bulk].min() - 0.2, g1[bulk].max() + 0.2, 300),
                             np.linspace(g2[bulk].min() - 0.2, g2[bulk].max() + 0.2, 300),
                             indexing="ij")
        lw = _log_posterior(f1, f2, count, n)
        w = np.exp(lw - lw.max()).ravel()
        w /= w.sum()
        mu, kappa = special.expit(f1).ravel(), np.exp(f2).ravel()
        keep = w > 1e-14
        a, b, w = (mu * kappa)[keep], ((1 - mu) * kappa)[keep], w[keep]
        cdf = np.array([np.sum(w * special.betainc(a + c, b + m - c, t))
                        for c, m, t in zip(count, n, theta, strict=True)])
        inside = (cdf >= 0.05) & (cdf <= 0.95)
        all_units.append(inside.mean())
        scorable_units.append(inside[calibration._scorable(theta)].mean())
    for label, cov in (("every unit", all_units), ("scorable truths only", scorable_units)):
        cov = np.asarray(cov)
        se = cov.std(ddof=1) / np.sqrt(cov.size)
        print(f"exact-posterior 90% coverage, {label}: {cov.mean():.3f} +- {2 * se:.3f} "
              f"({cov.size} datasets)")


if __name__ == "__main__":
    main()
