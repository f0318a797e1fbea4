"""Clustered events (tokens of an input) in the spike statistics and the analytic intervals.

Tokens of one input share its context: a unit's firing propensity varies from input to
input. Shuffling single tokens then breaks every input apart and calls almost every unit
bursty, and binomial intervals over tokens are far too narrow. These tests simulate that
(p_ui ~ Beta(theta phi, (1 - theta) phi), tokens independent given p_ui) and check the
whole-input permutation test, the per-input Fano factor, the design-effect intervals and
the cluster-robust Monte Carlo curve against it, against hand computations, and that
dense data keeps its numbers.
"""

import numpy as np
import pytest

import bayesactiv as ba
from bayesactiv.comparison.contrasts import _bootstrap_statement
from bayesactiv.stats import baselines as bl
from bayesactiv.stats.intervals import cluster_sums, design_effect
from bayesactiv.stats.spikes import _InputShuffler, cluster_fano, fano, fano_factor


def _clustered(seed, n_units=40, n_inputs=100, tokens=16, phi=1.0, lengths=None, window_size=None):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.05, 0.5, n_units)
    p = rng.beta(theta * phi, (1 - theta) * phi, size=(n_inputs, n_units))
    t = np.full(n_inputs, tokens) if lengths is None else np.asarray(lengths)
    idx = np.repeat(np.arange(n_inputs), t)
    fired = rng.random((idx.size, n_units)) < p[idx]
    wc = None
    if window_size is not None:
        m = idx.size // window_size
        wc = fired[: m * window_size].reshape(m, window_size, -1).sum(axis=1)
    ds = ba.make_dataset(fired.sum(0), idx.size, network="net", layer="mlp", fired=fired,
                         window_count=wc, window_size=window_size, attrs={"spatial": "token"})
    return ds.assign_coords(input=("sample", idx)), theta


def _rejected(t):
    return (t["p_value"].values <= 0.05).mean()


# ----------------------------------------------------------------- permutation test


@pytest.mark.parametrize("window_size", [32, 50])  # windows of 2 whole inputs; spanning inputs
def test_permutation_of_whole_inputs_keeps_its_size_and_tokens_do_not(window_size):
    after, before = [], []
    for seed in range(3):
        ds, _ = _clustered(seed)
        t = bl.order_permutation_test(ds, 199, window_size=window_size, seed=seed)
        assert t.attrs["permuted"] == "whole inputs (100, each keeping its 16 tokens in order)"
        assert t.attrs["windows_over"].startswith("tokens, input-major")
        after.append(_rejected(t))
        naive = bl.order_permutation_test(ds, 199, window_size=window_size, seed=seed,
                                          permute="events")
        assert naive.attrs["permuted"].startswith("single tokens")
        before.append(_rejected(naive))
    # measured: tokens shuffled reject 100% of the 120 units, whole inputs 5%
    assert np.mean(before) > 0.9
    assert np.mean(after) < 0.05 + 4 * np.sqrt(0.05 * 0.95 / 120)


def test_permutation_of_inputs_still_detects_order_across_inputs():
    ds, _ = _clustered(7, n_units=10)
    c = ds["fired"].values.reshape(100, 16, -1).sum(axis=1)
    order = np.argsort(c[:, 0], kind="stable")  # unit 0's inputs sorted by its count: a trend
    fired = ds["fired"].values.reshape(100, 16, -1)[order].reshape(1600, -1)
    trended = ds.copy(data={**{k: v.values for k, v in ds.data_vars.items()}, "fired": fired})
    t = bl.order_permutation_test(trended, 199, window_size=64, seed=0)
    assert t["p_value"].values[0] <= 0.01  # the smallest two-sided p-value of 199
    assert np.median(t["p_value"].values[1:]) > 0.05


def test_input_shuffler_keeps_each_input_together_and_in_order():
    lengths = np.array([3, 1, 4, 2, 5])
    clusters = np.repeat(np.arange(5), lengths)
    shuffler = _InputShuffler(clusters, np.arange(clusters.size), window_size=1, m=clusters.size)
    for pos in shuffler.labels(np.random.default_rng(0), 20):
        assert sorted(pos.tolist()) == list(range(clusters.size))
        for i in range(5):
            mine = pos[clusters == i]
            assert np.all(np.diff(mine) == 1)  # contiguous, in their order


def test_permutation_with_unequal_lengths_matches_a_loop():
    rng = np.random.default_rng(3)
    lengths = rng.integers(4, 20, 60)
    ds, _ = _clustered(3, n_units=5, n_inputs=60, lengths=lengths)
    t = bl.order_permutation_test(ds, 300, window_size=25, seed=1, alternative="greater")
    assert t.attrs["permuted"] == (f"whole inputs (60, each keeping its {lengths.min()} to "
                                   f"{lengths.max()} tokens in order)")
    # the permutation mean against a slow loop over random input orders
    fired = ds["fired"].values
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    loop = []
    r = np.random.default_rng(99)
    for _ in range(300):
        rows = np.concatenate([np.arange(starts[i], starts[i] + lengths[i])
                               for i in r.permutation(60)])
        m = fired.shape[0] // 25
        loop.append(fano(fired[rows][: m * 25].reshape(m, 25, -1).sum(axis=1)))
    np.testing.assert_allclose(t["fano_perm_mean"].values, np.mean(loop, axis=0), rtol=0.08)


def test_windows_within_one_input_warn_that_the_test_cannot_reject():
    ds, _ = _clustered(1, n_units=3)
    with pytest.warns(UserWarning, match="lies within one input"):
        t = bl.order_permutation_test(ds, 19, window_size=8, seed=0)
    assert np.all(t["p_value"].values == 1.0)


def test_dense_permutation_numbers_are_unchanged():
    rng = np.random.default_rng(12)
    fired = rng.random((400, 6)) < 0.3
    ds = ba.make_dataset(fired.sum(0), 400, network="n", layer="l", fired=fired)
    one = ds.assign_coords(input=("sample", np.arange(400)))  # one event per input: dense
    runs = [bl.order_permutation_test(d, 99, window_size=20, seed=1, permute=how)
            for d, how in ((ds, "auto"), (ds, "events"), (ds, "inputs"), (one, "auto"))]
    for other in runs[1:]:
        np.testing.assert_array_equal(other["p_value"].values, runs[0]["p_value"].values)
        np.testing.assert_array_equal(other["fano_perm_mean"].values,
                                      runs[0]["fano_perm_mean"].values)
        assert other.attrs["permuted"] == "inputs"
    assert runs[0].attrs["windows_over"] == "inputs in order"
    with pytest.raises(ba.data.checks.ArgumentError, match="permute"):
        bl.order_permutation_test(ds, 9, window_size=20, permute="tokens")


# ----------------------------------------------------------------- Fano factors


def _hand_fano(c, t):
    p = c.sum(0) / t.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c.sum(0) > 0, ((c - p * t[:, None]) ** 2).sum(0) / (p * t.sum()), np.nan)


def test_cluster_fano_matches_a_hand_computation():
    rng = np.random.default_rng(5)
    t = rng.integers(1, 30, 50)
    c = rng.binomial(t[:, None], rng.beta(0.5, 2.0, size=(50, 6)))
    c[:, 5] = 0  # never fired
    ds = ba.data.from_input_counts(c, t, network="lm", layer=["a", "a", "a", "b", "b", "b"])
    cf = cluster_fano(ds)
    hand = _hand_fano(c, t)
    np.testing.assert_allclose(cf["cluster_fano"].values, hand, rtol=1e-12)
    assert np.isnan(cf["cluster_fano"].values[5])
    assert cf["mf"].sel(group="lm/a").item() == pytest.approx(hand[:3].mean())
    assert cf["mf"].sel(group="lm/b").item() == pytest.approx(np.nanmean(hand[3:]))
    assert cf["n_fano"].sel(group="lm/*").item() == 5
    # equal lengths: var(c_i) / mean(c_i), ddof 0
    eq = ba.data.from_input_counts(c[:, :5], np.full(50, 30), network="lm", layer="a")
    np.testing.assert_allclose(cluster_fano(eq)["cluster_fano"].values,
                               c[:, :5].var(0) / c[:, :5].mean(0), rtol=1e-12)
    # the same from kept events with their inputs (no streamed sums)
    idx = np.repeat(np.arange(50), t)
    fired = np.zeros((idx.size, 5), dtype=bool)
    for i in range(50):
        rows = np.flatnonzero(idx == i)
        for u in range(5):
            fired[rows[: c[i, u]], u] = True
    kept = ba.make_dataset(fired.sum(0), idx.size, network="lm", layer="a", fired=fired)
    kept = kept.assign_coords(input=("sample", idx))
    np.testing.assert_allclose(cluster_fano(kept)["cluster_fano"].values, hand[:5], rtol=1e-12)


def test_cluster_fano_is_one_minus_p_times_the_design_effect():
    ds, theta = _clustered(2)
    cf = cluster_fano(ds)["cluster_fano"].values
    s = cluster_sums(ds)
    p = s["count"] / s["n"]
    inputs = s["cluster_n"]
    v = inputs / (inputs - 1) * (s["cluster_count_sq"] - 2 * p * s["cluster_count_n"]
                                 + p * p * s["cluster_n_sq"])
    d_raw = v / (s["n"] * p * (1 - p))
    np.testing.assert_allclose(cf, (1 - p) * d_raw * (inputs - 1) / inputs, rtol=1e-10)
    # the model-implied MF, mean (1 - theta) d with d = 1 + (t - 1) / (phi + 1) = 8.5
    assert cf.mean() == pytest.approx(np.mean((1 - theta) * 8.5), rel=0.15)


def test_cluster_fano_of_dense_units_is_bernoulli():
    ds = ba.make_dataset([0, 5, 20], 20, network="n", layer="l")
    cf = cluster_fano(ds)
    np.testing.assert_allclose(cf["cluster_fano"].values, [np.nan, 0.75, 0.0])
    assert cf.attrs["events"].startswith("one event per input")


def test_fano_factor_null_of_random_input_order():
    ds, _ = _clustered(4, window_size=32)
    ff = fano_factor(ds)
    assert ff.attrs["windows_over"] == "tokens, input-major (each window holds whole inputs)"
    assert ff.attrs["null"].startswith("whole inputs in random order")
    perm = bl.order_permutation_test(ds, 400, seed=0)
    # the closed form is the permutation mean of whole inputs, not of single tokens
    np.testing.assert_allclose(ff["fano_null"].values, perm["fano_perm_mean"].values, rtol=0.06)
    assert np.all(ff["fano_null"].values > 2 * ff["fano_null_events"].values)
    assert abs(np.nanmean(ff["fano_ratio"].values) - 1) < 0.1
    # windows that span inputs: no closed form, NaN (the permutation test gives it)
    spanning, _ = _clustered(4, window_size=50)
    assert np.all(np.isnan(fano_factor(spanning)["fano_null"].values))


def test_fano_factor_of_dense_data_is_unchanged():
    rng = np.random.default_rng(0)
    fired = rng.random((2000, 4)) < [0.02, 0.3, 0.5, 0.8]
    ds = ba.make_dataset(fired.sum(0), 2000, network="n", layer="l", fired=fired,
                         window_count=fired.reshape(40, 50, -1).sum(axis=1), window_size=50)
    ff = fano_factor(ds)
    np.testing.assert_array_equal(ff["fano_null"].values,
                                  bl.fano_null(fired.mean(0), 2000, 50, 40))
    assert "fano_null_events" not in ff
    assert ff.attrs["windows_over"] == "inputs in order"


# ----------------------------------------------------------------- intervals


def test_design_effect_matches_hand_and_theory():
    c = np.array([[8, 0, 0], [0, 1, 0], [8, 1, 0], [0, 0, 0]])
    ds = ba.data.from_input_counts(c, [8, 8, 8, 8], network="lm", layer="mlp")
    # unit 0: V = 4/3 * 64, binomial 32 * 1/4; unit 1 underdispersed, floored; unit 2
    # never fired: its layer's ratio, (85.33 + 1.333) / (8 + 1.875)
    np.testing.assert_allclose(design_effect(ds), [32 / 3, 1.0, (256 / 3 + 4 / 3) / 9.875])
    ds, _ = _clustered(0)
    assert np.median(design_effect(ds)) == pytest.approx(1 + 15 / 2, rel=0.15)
    dense = ba.make_dataset([1, 4], 10, network="n", layer="l")
    np.testing.assert_array_equal(design_effect(dense), [1.0, 1.0])


@pytest.mark.parametrize("method", ["wald", "wilson", "jeffreys", "clopper-pearson"])
def test_design_effect_intervals_cover_the_population_rate(method):
    robust, naive = [], []
    for seed in range(8):
        ds, theta = _clustered(100 + seed)
        for hits, flag in ((robust, True), (naive, False)):
            ci = bl.intervals(ds, method, 0.9, cluster_robust=flag)
            hits.append(((ci["low"].values <= theta) & (theta <= ci["high"].values)).mean())
    # measured (Wilson, 20 seeds): 0.89 adjusted, 0.43 naive
    assert 0.84 <= np.mean(robust) <= 0.96
    assert np.mean(naive) < 0.6
    ci = bl.intervals(ds, method, 0.9)
    assert "design effect" in ci.attrs["events"]
    np.testing.assert_allclose(ci["n_effective"].values, 1600 / ci["design_effect"].values)


def test_monte_carlo_standard_error_is_cluster_robust():
    ds, theta = _clustered(11)
    mc = bl.monte_carlo(ds)
    naive = bl.monte_carlo(ds, cluster_robust=False)
    np.testing.assert_allclose(mc["estimate"], naive["estimate"])
    c = ds["fired"].values.reshape(100, 16, -1).sum(axis=1)
    p = c.sum(0) / 1600
    v = 100 / 99 * ((c - 16 * p) ** 2).sum(0)
    np.testing.assert_allclose(mc["standard_error"].values,
                               np.sqrt(np.maximum(v / 1600**2, p * (1 - p) / 1600)))
    z = np.abs(mc["estimate"].values - theta) / mc["standard_error"].values
    assert (z < 1.645).mean() > 0.75 > (np.abs(naive["estimate"].values - theta)
                                         / naive["standard_error"].values < 1.645).mean()


def test_monte_carlo_curve_over_inputs():
    ds, _ = _clustered(6, lengths=np.random.default_rng(6).integers(4, 28, 100))
    curve = bl.monte_carlo_curve(ds, n_points=12)
    j = curve["n_inputs"].values
    assert j[0] == 1 and j[-1] == 100
    assert curve.attrs["standard_error"].startswith("cluster-robust")
    assert np.isnan(curve["standard_error"].values[0]).all()
    c, t = ba.stats.resampling.cluster_counts(ds["fired"].values,
                                              ba.stats.resampling.event_clusters(ds))
    for i in (len(j) // 2, -1):
        ci, ti = c[: j[i]], t[: j[i]]
        p = ci.sum(0) / ti.sum()
        v = j[i] / (j[i] - 1) * ((ci - p * ti[:, None]) ** 2).sum(0) / ti.sum() ** 2
        assert curve["n_samples"].values[i] == ti.sum()
        np.testing.assert_allclose(curve["estimate"].values[i], p)
        np.testing.assert_allclose(curve["standard_error"].values[i],
                                   np.sqrt(np.maximum(v, p * (1 - p) / ti.sum())))
    np.testing.assert_allclose(curve["standard_error"].values[-1],
                               bl.monte_carlo(ds)["standard_error"].values)
    plain = bl.monte_carlo_curve(ds, n_points=12, cluster_robust=False)
    assert (plain["standard_error"].values[-1] < curve["standard_error"].values[-1]).all()
    # windows only, with the streamed sums: the design effect of all events
    eq, _ = _clustered(6, window_size=16)
    c, t = ba.stats.resampling.cluster_counts(eq["fired"].values,
                                              ba.stats.resampling.event_clusters(eq))
    windows = ba.data.from_input_counts(c, t, network="net", layer="mlp",
                                        window_count=eq["window_count"].values, window_size=16)
    wcurve = bl.monte_carlo_curve(windows, n_points=12)
    assert wcurve.attrs["source"] == "window_count"
    assert "design effect" in wcurve.attrs["standard_error"]
    np.testing.assert_allclose(wcurve["standard_error"].values[-1],
                               bl.monte_carlo(eq)["standard_error"].values)


def test_contrast_bootstrap_statement_names_what_was_resampled():
    ds, _ = _clustered(0, n_units=2, n_inputs=10)
    dense = ba.make_dataset([1], 4, network="n", layer="l", fired=np.eye(4, 1, dtype=bool))
    bare = ba.make_dataset([1], 4, network="n", layer="l")
    text = _bootstrap_statement([ds, dense, bare, dense])
    assert text == ("percentile interval; inputs (clusters of 16 tokens on average); inputs; "
                    "window blocks (no fired events kept) resampled within each dataset "
                    "independently")
