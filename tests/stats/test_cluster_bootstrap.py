"""Clustered events (tokens of an input): the bootstraps resample whole inputs.

Tokens of one input share its context, so a unit's firing propensity varies from
input to input; resampling tokens as if independent makes the intervals far too
narrow. These tests simulate that and check the cluster bootstrap against it, against
hand computations, and that dense data keeps its numbers.
"""

import numpy as np
import pandas as pd
import pytest

import bayesactiv as ba
from bayesactiv.comparison.bootstrap import bootstrap_groups
from bayesactiv.report import layer_bootstrap
from bayesactiv.stats import resampling as rs
from bayesactiv.stats.spikes import fano


def _clustered(seed, n_units=60, n_inputs=150, tokens=32, phi=1.0, lengths=None):
    """Tokens fire independently given the input's propensity p_ui ~ Beta(theta phi, (1-theta) phi)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.05, 0.6, n_units)
    p = rng.beta(theta * phi, (1 - theta) * phi, size=(n_inputs, n_units))
    t = np.full(n_inputs, tokens) if lengths is None else np.asarray(lengths)
    input_index = np.repeat(np.arange(n_inputs), t)
    fired = rng.random((input_index.size, n_units)) < p[input_index]
    ds = ba.make_dataset(fired.sum(0), input_index.size, network="net", layer="mlp", fired=fired)
    ds = ds.assign_coords(input=("sample", input_index))
    ds.attrs["spatial"] = "token"
    return ds, theta


def _covers(bs, theta):
    return (bs["low"].values <= theta) & (theta <= bs["high"].values)


def test_cluster_bootstrap_covers_the_population_rate_and_token_resampling_does_not():
    cluster, naive = [], []
    for seed in range(4):
        ds, theta = _clustered(seed)
        bs = ba.baselines.bootstrap(ds, n_resamples=1000, confidence_level=0.9, seed=seed)
        assert bs.attrs["resampled"] == "inputs (clusters of 32 tokens on average)"
        cluster.append(_covers(bs, theta))
        # what the code did before: every token an independent event
        tokens = ba.baselines.bootstrap(ds.drop_vars("input"), n_resamples=1000,
                                        confidence_level=0.9, seed=seed)
        assert tokens.attrs["resampled"] == "inputs"
        naive.append(_covers(tokens, theta))
    cover, cover_naive = np.mean(cluster), np.mean(naive)
    assert 0.80 <= cover <= 0.97, cover
    assert cover_naive < 0.65, cover_naive


def test_variable_lengths_rates_by_hand():
    lengths = np.array([1, 5, 2, 9, 3])
    ds, _ = _clustered(3, n_units=4, n_inputs=5, lengths=lengths)
    fired = ds["fired"].values
    clusters = rs.event_clusters(ds)
    c, t = rs.cluster_counts(fired, clusters)
    np.testing.assert_array_equal(t, lengths)
    w = np.array([[2.0, 0.0, 1.0, 0.0, 2.0]])
    # by hand: the tokens of the drawn inputs, each input as often as drawn
    drawn = np.concatenate([np.flatnonzero(clusters == i) for i in range(5) for _ in range(int(w[0, i]))])
    by_hand = fired[drawn].mean(axis=0)
    np.testing.assert_allclose(rs.resampled_cluster_rates(w, c, t)[0], by_hand, rtol=1e-12)
    # the observed data (a row of ones) is count / n
    np.testing.assert_allclose(rs.resampled_cluster_rates(np.ones((1, 5)), c, t)[0],
                               ds["count"].values / ds["n"].values, rtol=1e-12)


def test_variable_lengths_bootstrap_is_the_percentile_interval_of_whole_input_resamples():
    lengths = np.random.default_rng(0).integers(1, 40, 30)
    ds, _ = _clustered(4, n_units=5, n_inputs=30, lengths=lengths)
    n_resamples, batch = 400, 150
    bs = ba.baselines.bootstrap(ds, n_resamples=n_resamples, confidence_level=0.9, seed=7,
                                batch=batch)
    assert bs.attrs["resampled"] == f"inputs (clusters of {lengths.mean():.3g} tokens on average)"
    # the same draws, rebuilt by concatenating the drawn inputs' tokens
    clusters = rs.event_clusters(ds)
    fired = ds["fired"].values
    rng = np.random.default_rng(7)
    reps = []
    for idx in rs.resample_indices(rng, 30, rs.chunk_sizes(n_resamples, batch)):
        for row in idx:
            tokens = np.concatenate([np.flatnonzero(clusters == i) for i in row])
            reps.append(fired[tokens].mean(axis=0))
    reps = np.array(reps)
    np.testing.assert_allclose(bs["low"].values, np.quantile(reps, 0.05, axis=0), rtol=1e-6)
    np.testing.assert_allclose(bs["high"].values, np.quantile(reps, 0.95, axis=0), rtol=1e-6)
    np.testing.assert_allclose(bs["standard_error"].values, reps.std(axis=0, ddof=1), rtol=1e-6)
    np.testing.assert_allclose(bs["estimate"].values, fired.mean(axis=0))


def test_cluster_bca_uses_the_leave_one_input_out_jackknife():
    ds, _ = _clustered(5, n_units=3, n_inputs=20, lengths=np.arange(1, 21))
    c, t = rs.cluster_counts(ds["fired"].values, rs.event_clusters(ds))
    theta_hat = c.sum(0) / t.sum()
    theta_b = np.random.default_rng(0).random((200, 3))
    jack = np.array([(c.sum(0) - c[i]) / (t.sum() - t[i]) for i in range(20)])
    d = jack.mean(0) - jack
    a = (d**3).sum(0) / (6 * ((d**2).sum(0)) ** 1.5)
    from scipy import special
    below = (theta_b < theta_hat).sum(0) + (theta_b <= theta_hat).sum(0)
    z0 = special.ndtri(below / 400)
    za = special.ndtri(0.05)
    expected = special.ndtr(z0 + (z0 + za) / (1 - a * (z0 + za)))
    q_low, _ = rs._bca_levels(theta_b, theta_hat, c, float(t.sum()), 0.05, inputs=False, events=t)
    np.testing.assert_allclose(q_low, expected, rtol=1e-12)
    bca = ba.baselines.bootstrap(ds, n_resamples=300, method="bca", seed=1)
    assert np.isfinite(bca["low"].values).all()


def test_dense_data_keeps_its_numbers():
    rng = np.random.default_rng(11)
    fired = rng.random((120, 4)) < [0.0, 0.1, 0.5, 1.0]
    ds = ba.make_dataset(fired.sum(0), 120, network="n", layer="l", fired=fired)
    one_each = ds.assign_coords(input=("sample", np.arange(120) * 3))
    assert rs.event_clusters(one_each) is None
    for method in ("percentile", "bca", "basic"):
        a = ba.baselines.bootstrap(ds, n_resamples=500, method=method, seed=3)
        b = ba.baselines.bootstrap(one_each, n_resamples=500, method=method, seed=3)
        for var in ("estimate", "low", "high", "standard_error"):
            np.testing.assert_array_equal(a[var].values, b[var].values)
        assert a.attrs == b.attrs and a.attrs["resampled"] == "inputs"
    # and the numbers are those of the former implementation: float32 W @ fired / n
    draws = np.random.default_rng(3).integers(0, 120, size=(500, 120), dtype=np.int64)
    w = np.stack([np.bincount(r, minlength=120) for r in draws]).astype(np.float32)
    reps = (w @ fired.astype(np.float32)).astype(np.float64) / 120.0
    a = ba.baselines.bootstrap(ds, n_resamples=500, seed=3)
    np.testing.assert_array_equal(a["standard_error"].values, np.sort(reps, 0).std(0, ddof=1))


def test_statements_of_what_was_resampled_and_what_windows_run_over():
    fired = np.zeros((12, 1), dtype=bool)
    ds = ba.make_dataset(fired.sum(0), 12, network="n", layer="l", fired=fired)
    assert rs.resampled_statement(ds) == "inputs"
    assert rs.windows_statement(ds, 4) == "inputs in order"
    tokens = ds.assign_coords(input=("sample", np.repeat([0, 1, 2], 4))).assign_attrs(spatial="token")
    assert rs.resampled_statement(tokens) == "inputs (clusters of 4 tokens on average)"
    assert rs.windows_statement(tokens, 3) == "tokens, input-major (windows may span inputs)"
    assert rs.windows_statement(tokens, 2) == "tokens, input-major (each window lies within one input)"
    assert rs.windows_statement(tokens, 8) == "tokens, input-major (each window holds whole inputs)"
    assert rs.windows_statement(tokens, 4) == "tokens, input-major (each window is one whole input)"
    positions = tokens.assign_attrs(spatial="per_position")
    assert rs.resampled_statement(positions) == "inputs (clusters of 4 positions on average)"
    # windows only, recorded on tokens: the inputs are unknown, windows are resampled
    wc = np.array([[1], [0], [2]])
    win = ba.make_dataset([3], 12, network="n", layer="l", window_count=wc, window_size=4,
                          attrs={"spatial": "token"})
    bs = ba.baselines.bootstrap(win, n_resamples=50, seed=0)
    assert bs.attrs["windows_over"] == "tokens, input-major (windows may span inputs)"
    assert bs.attrs["resampled"].startswith("windows of 4 tokens (block bootstrap)")
    assert "not whole inputs" in bs.attrs["resampled"]


def test_cluster_fano_is_the_fano_of_the_drawn_inputs_windows():
    rng = np.random.default_rng(2)
    wc = rng.integers(0, 6, size=(9, 3)).astype(np.float64)
    starts = np.array([0, 0, 0, 1, 3, 3, 4, 4, 4])  # input 2 holds no window start
    s1, s2, m = rs.cluster_window_moments(wc, starts)
    w = np.array([[1.0, 2.0, 1.0, 0.0, 1.0]])
    drawn = np.concatenate([np.flatnonzero(starts == i) for i in range(5) for _ in range(int(w[0, i]))])
    np.testing.assert_allclose(rs.resampled_cluster_fano(w, s1, s2, m), fano(wc[drawn][None]),
                               rtol=1e-12)
    # one window per input: resampling inputs is resampling windows, draw for draw
    units = [np.arange(3)]
    plain = rs.group_fano_replicates(wc, units, np.random.default_rng(5), 300)
    per_input = rs.group_fano_replicates(wc, units, np.random.default_rng(5), 300,
                                         clusters=np.arange(9))
    for x, y in zip(plain, per_input, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12)


def test_comparison_and_report_bootstraps_resample_whole_inputs():
    ds, _ = _clustered(8, n_units=20, n_inputs=60, phi=1.0)
    groups = pd.DataFrame({"network": ["net"], "layer": ["mlp"]})
    args = (groups, ["network", "layer"], ["mfr", "mf"], 0.01, 16, 400)
    obs, reps, notes = bootstrap_groups([ds], *args, np.random.default_rng(0))
    tok_obs, tok_reps, tok_notes = bootstrap_groups([ds.drop_vars("input")], *args,
                                                    np.random.default_rng(0))
    assert obs["mfr"] == pytest.approx(tok_obs["mfr"])
    assert "whole inputs (clusters of 32 tokens on average)" in notes["mfr"]
    # MF of clustered events: the Fano factor of per-input counts (the clustered model's MF)
    assert notes["mf"].startswith("Fano factor of per-input counts; resampled whole inputs")
    assert tok_notes["mfr"] == ""
    # between-input variability makes the input-level spread several times the token-level one
    assert reps["mfr"].std() > 2.5 * tok_reps["mfr"].std()
    assert reps["mf"].std() > tok_reps["mf"].std()
    # by hand for the rates: per-input counts, resampled with the same multinomial draws
    c, t = rs.cluster_counts(ds["fired"].values, rs.event_clusters(ds))
    w = next(rs.resample_counts(np.random.default_rng(0), 60, [400]))
    np.testing.assert_allclose(reps["mfr"][:, 0], ((w @ c) / (w @ t)[:, None]).mean(1), rtol=1e-10)
    # and the observed MF: per unit sum_i (c_i - p t_i)^2 / (p n), averaged over fired units
    p = c.sum(0) / t.sum()
    f = ((c - p * t[:, None]) ** 2).sum(0) / c.sum(0)
    assert obs["mf"][0] == pytest.approx(np.nanmean(np.where(c.sum(0) > 0, f, np.nan)))

    with_windows = ba.make_dataset(ds["count"].values, ds["n"].values, network="net",
                                   layer="mlp", fired=ds["fired"].values,
                                   window_count=ds["fired"].values.reshape(-1, 16, 20).sum(1),
                                   window_size=16, attrs={"spatial": "token"})
    with_windows = with_windows.assign_coords(input=ds["input"])
    row = layer_bootstrap(with_windows, n_resamples=400, seed=0)
    naive = layer_bootstrap(with_windows.drop_vars("input"), n_resamples=400, seed=0)
    assert row.attrs["resampled"] == "inputs (clusters of 32 tokens on average)"
    assert row.attrs["windows_over"] == "tokens, input-major (each window lies within one input)"
    assert row.attrs["mf_resampled"].startswith("whole inputs")
    assert naive.attrs["mf_resampled"] == "windows"
    width = (row.mfr_boot_high - row.mfr_boot_low).iloc[0]
    naive_width = (naive.mfr_boot_high - naive.mfr_boot_low).iloc[0]
    assert width > 2.5 * naive_width
    assert row.mf.iloc[0] == naive.mf.iloc[0]
