"""The resampling engine reproduces, draw for draw, the bootstraps it replaced."""

import numpy as np
import pytest

from bayesactiv.stats import resampling as rs
from bayesactiv.stats.spikes import fano


# the former implementations, verbatim, as references
def _old_resample_counts(rng, b, n):
    draws = rng.integers(0, n, size=(b, n), dtype=np.int64)
    draws += (np.arange(b, dtype=np.int64) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=b * n).reshape(b, n)


def _old_weights(rng, n, size):
    return rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)


def _old_chunks(n_resamples, n_items, n_units):
    per = max(1, int(2e7 // max(1, n_items * max(1, n_units) // 64 + n_items)))
    per = min(per, n_resamples)
    sizes = [per] * (n_resamples // per)
    if n_resamples % per:
        sizes.append(n_resamples % per)
    return sizes


def _old_rate_stats(counts, total, group_units, epsilon, rng, n_resamples):
    def stats(rates):
        mfr = np.stack([rates[:, u].mean(axis=1) for u in group_units], axis=1)
        dead = np.stack([(rates[:, u] < epsilon).mean(axis=1) for u in group_units], axis=1)
        return mfr, dead

    obs_mfr, obs_dead = stats(counts.sum(axis=0, keepdims=True) / total)
    mp, dp = [], []
    for size in _old_chunks(n_resamples, counts.shape[0], counts.shape[1]):
        m, d = stats(_old_weights(rng, counts.shape[0], size) @ counts / total)
        mp.append(m)
        dp.append(d)
    return obs_mfr[0], obs_dead[0], np.concatenate(mp), np.concatenate(dp)


def _old_fano_stats(wc, group_units, rng, n_resamples):
    nw = wc.shape[0]
    sq = wc**2

    def stats(w):
        mean = w @ wc / nw
        var = w @ sq / nw - mean**2
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(mean > 0, np.maximum(var, 0.0) / mean, np.nan)
        out = np.full((w.shape[0], len(group_units)), np.nan)
        for j, u in enumerate(group_units):
            sub = f[:, u]
            ok = np.isfinite(sub)
            cnt = ok.sum(axis=1)
            out[:, j] = np.where(cnt > 0, np.where(ok, sub, 0.0).sum(axis=1) / np.maximum(cnt, 1), np.nan)
        return out

    obs = stats(np.ones((1, nw)))[0]
    parts = [stats(_old_weights(rng, nw, s)) for s in _old_chunks(n_resamples, nw, wc.shape[1])]
    return obs, np.concatenate(parts)


@pytest.fixture
def fired():
    f = np.random.default_rng(5).random((300, 6)) < np.linspace(0.0, 0.5, 6)
    return f.astype(np.float64)


UNITS = [np.array([0, 1, 2]), np.array([3, 4, 5])]


@pytest.mark.parametrize("batch", [7, 50, 1000])
def test_index_counts_match_the_baselines_stream(batch):
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    new = np.concatenate(list(rs.resample_counts(a, 31, rs.chunk_sizes(200, batch), draw="index")))
    old = np.concatenate([_old_resample_counts(b, min(batch, 200 - s), 31)
                          for s in range(0, 200, batch)])
    np.testing.assert_array_equal(new, old)


def test_group_replicates_match_the_comparison_bootstrap(fired):
    new = rs.group_rate_replicates(fired, 300.0, UNITS, 0.01, np.random.default_rng(2), 400)
    old = _old_rate_stats(fired, 300.0, UNITS, 0.01, np.random.default_rng(2), 400)
    for x, y in zip(new, old, strict=True):
        np.testing.assert_array_equal(x, y)
    wc = fired.reshape(6, 50, 6).sum(axis=1)
    wc[:, 0] = 0
    for x, y in zip(rs.group_fano_replicates(wc, UNITS, np.random.default_rng(3), 400),
                    _old_fano_stats(wc, UNITS, np.random.default_rng(3), 400), strict=True):
        np.testing.assert_array_equal(x, y)


def test_report_recipe_draws_the_same_weights(fired):
    a, b = np.random.default_rng(4), np.random.default_rng(4)
    w_new = next(rs.resample_counts(a, 300, [100], draw="multinomial", dtype=np.float32))
    i_new = next(rs.resample_indices(a, 6, [100]))
    w_old = b.multinomial(300, np.full(300, 1.0 / 300), size=100).astype(np.float32)
    i_old = b.integers(0, 6, size=(100, 6))
    np.testing.assert_array_equal(w_new, w_old)
    np.testing.assert_array_equal(i_new, i_old)


def test_weighted_fano_is_the_fano_of_the_drawn_windows(fired):
    wc = fired.reshape(10, 30, 6).sum(axis=1)
    idx = next(rs.resample_indices(np.random.default_rng(0), 10, [50]))
    counts = np.stack([np.bincount(row, minlength=10) for row in idx]).astype(np.float64)
    np.testing.assert_allclose(rs.resampled_fano(counts, wc), fano(wc[idx]), rtol=1e-10)


def test_percentile_interval_of_no_resample_is_nan():
    low, high = rs.percentile_interval(np.array([0.1]), np.empty((0, 1)), 0.9)
    assert np.isnan(low).all() and np.isnan(high).all()
