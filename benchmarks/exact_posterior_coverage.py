"""Coverage of the *exact* beta-binomial posterior on a calibration scenario.

No sampler: the posterior of (logit mu, log kappa) is computed on a grid (a coarse grid to find
its bulk, then a fine 300 x 300 grid there), each unit's posterior CDF is the grid-weighted
mixture of conjugate Betas, and a unit is covered by the 50% (90%) equal-tailed interval when its
true theta sits between the 25% and 75% (5% and 95%) points. This separates what the model and the
simulation do from what the sampler does, and shows the effect of truths that float64 cannot
tell from 1 (see ``bayesactiv.bayes.calibration.scorable``).

Run: ``.venv/bin/python benchmarks/exact_posterior_coverage.py [--scenario prior|rare]
[--datasets 300] [--seed 0]``
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import special, stats

from bayesactiv.bayes import calibration


def _log_posterior(logit_mu, log_kappa, count, n, mu_prior=(1.0, 1.0)):
    mu, kappa = special.expit(logit_mu), np.exp(log_kappa)
    a, b = mu * kappa, (1 - mu) * kappa
    # Beta(mu_prior) on mu, with the Jacobian of the logit
    lp = (stats.norm.logpdf(log_kappa, np.log(10), 2.5) + mu_prior[0] * np.log(mu)
          + mu_prior[1] * np.log1p(-mu))
    return lp + np.sum(special.betaln(a[..., None] + count, b[..., None] + n - count)
                       - special.betaln(a, b)[..., None], axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenario", default="prior", choices=["prior", "few_inputs", "rare"])
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    mu_prior = calibration.SCENARIOS[args.scenario].mu_prior
    cover = {(level, which): [] for level in (50, 90) for which in ("all", "scorable")}
    for _ in range(args.datasets):
        ds, truth = calibration.simulate(args.scenario, rng)
        count, n = ds["count"].values.astype(float), ds["n"].values.astype(float)
        theta = truth["theta"]
        g1, g2 = np.meshgrid(np.linspace(-15, 15, 241),
                             np.linspace(np.log(10) - 15, np.log(10) + 15, 241), indexing="ij")
        w = _log_posterior(g1, g2, count, n, mu_prior)
        bulk = np.exp(w - w.max()) > 1e-10
        f1, f2 = np.meshgrid(np.linspace(g1[bulk].min() - 0.2, g1[bulk].max() + 0.2, 300),
                             np.linspace(g2[bulk].min() - 0.2, g2[bulk].max() + 0.2, 300),
                             indexing="ij")
        lw = _log_posterior(f1, f2, count, n, mu_prior)
        w = np.exp(lw - lw.max()).ravel()
        w /= w.sum()
        mu, kappa = special.expit(f1).ravel(), np.exp(f2).ravel()
        keep = w > 1e-14
        a, b, w = (mu * kappa)[keep], ((1 - mu) * kappa)[keep], w[keep]
        cdf = np.array([np.sum(w * special.betainc(a + c, b + m - c, t))
                        for c, m, t in zip(count, n, theta, strict=True)])
        ok = calibration.scorable(theta)
        for level in (50, 90):
            tail = (1 - level / 100) / 2
            inside = (cdf >= tail) & (cdf <= 1 - tail)
            cover[level, "all"].append(inside.mean())
            if ok.any():
                cover[level, "scorable"].append(inside[ok].mean())
    for (level, which), cov in cover.items():
        cov = np.asarray(cov)
        se = cov.std(ddof=1) / np.sqrt(cov.size)
        label = "every unit" if which == "all" else "scorable truths only"
        print(f"{args.scenario}: exact-posterior {level}% coverage, {label}: {cov.mean():.3f} "
              f"+- {2 * se:.3f} ({cov.size} datasets)")


if __name__ == "__main__":
    main()
