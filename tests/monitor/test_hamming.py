"""Tests of the Overfitting-Underfitting Indicator (bayesactiv.monitor.hamming) against the
paper's formula (arXiv:2504.17160), written out here pair by pair."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from torch import nn

import bayesactiv as ba
from bayesactiv.data.checks import ArgumentError
from bayesactiv.monitor import FiringMonitor
from bayesactiv.monitor.hamming import _draw_pairs, _unrank_pairs, oui

COLUMNS = ["network", "layer", "epoch", "units", "pattern", "inputs", "pairs", "hamming", "oui"]


def _reference(patterns: np.ndarray) -> tuple[float, float]:
    """(mean d_H, OUI_l) over the ordered pairs i != j, the paper's sum as written."""
    patterns = np.asarray(patterns, dtype=bool)
    m, size = patterns.shape
    dist = [np.count_nonzero(patterns[i] != patterns[j]) / size
            for i, j in itertools.permutations(range(m), 2)]
    return float(np.mean(dist)), 2.0 / len(dist) * sum(min(d, 0.5) for d in dist)


def _ds(fired, layer="fc", network="net", epoch=None, index=None, input=None):
    fired = np.asarray(fired, dtype=bool)
    ds = ba.make_dataset(fired.sum(0), fired.shape[0], network=network, layer=layer,
                         epoch=epoch, index=index, fired=fired)
    if input is not None:
        ds = ds.assign_coords(input=("sample", np.asarray(input, dtype=np.int64)))
    return ds


def _row(table: pd.DataFrame, layer: str, epoch: int = -1, network: str = "net") -> pd.Series:
    got = table[(table["layer"] == layer) & (table["epoch"] == epoch)
                & (table["network"] == network)]
    assert len(got) == 1
    return got.iloc[0]


# ---------------------------------------------------------------- the formula by hand


def test_three_inputs_by_hand():
    # pairs: (0, 1) H = 1 of 4 -> d 1/4, clipped term 2 * 1/4 = 1/2
    #        (0, 2) H = 4      -> d 1,   term 1
    #        (1, 2) H = 3      -> d 3/4, term 1
    fired = [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1]]
    table = oui(_ds(fired))
    assert list(table.columns) == COLUMNS
    assert table["layer"].tolist() == ["fc", "*"]
    row = _row(table, "fc")
    assert (row["units"], row["pattern"], row["inputs"], row["pairs"]) == (4, 4, 3, 3)
    assert row["hamming"] == pytest.approx((1 / 4 + 1 + 3 / 4) / 3, abs=1e-15)
    assert row["oui"] == pytest.approx((1 / 2 + 1 + 1) / 3, abs=1e-15)


def test_four_inputs_odd_pattern_by_hand():
    # N = 3 (odd): the clip is at d = 1/2, i.e. H = 1.5, so H = 1 -> 2/3 and H >= 2 -> 1
    fired = [[1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 0, 0]]
    # H: (0,1)=1 (0,2)=3 (0,3)=0 (1,2)=2 (1,3)=1 (2,3)=3
    terms = [2 / 3, 1, 0, 1, 2 / 3, 1]
    dists = [1 / 3, 1, 0, 2 / 3, 1 / 3, 1]
    row = _row(oui(_ds(fired)), "fc")
    assert row["oui"] == pytest.approx(np.mean(terms), abs=1e-15)
    assert row["hamming"] == pytest.approx(np.mean(dists), abs=1e-15)
    assert row["pairs"] == 6


def test_two_layers_and_the_network_mean():
    a = np.array([[1, 0], [0, 1], [1, 1]], dtype=bool)  # layer a: H 2, 1, 1 of 2 -> terms 1, 1, 1
    b = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0]], dtype=bool)  # H 0, 1, 1 of 4
    ds = _ds(np.concatenate([a, b], axis=1), layer=["a", "a", "b", "b", "b", "b"],
             index=[0, 1, 0, 1, 2, 3])
    table = oui(ds)
    assert table["layer"].tolist() == ["a", "b", "*"]
    assert _row(table, "a")["oui"] == pytest.approx(1.0)
    assert _row(table, "b")["oui"] == pytest.approx((0 + 0.5 + 0.5) / 3)
    net = _row(table, "*")
    assert net["oui"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert net["hamming"] == pytest.approx(((1 + 0.5 + 0.5) / 3 + (0 + 0.25 + 0.25) / 3) / 2)
    assert (net["units"], net["pattern"], net["inputs"], net["pairs"]) == (6, 6, 3, 3)


@pytest.mark.parametrize("pattern", [[0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 1, 0]])
def test_identical_patterns_give_zero(pattern):
    table = oui(_ds([pattern] * 6))
    assert table["oui"].tolist() == [0.0, 0.0]
    assert table["hamming"].tolist() == [0.0, 0.0]


def test_complementary_patterns_give_one():
    p = np.array([1, 0, 1, 1, 0, 0, 1], dtype=bool)
    row = _row(oui(_ds([p, ~p])), "fc")
    assert (row["hamming"], row["oui"], row["pairs"]) == (1.0, 1.0, 1)


def test_the_clip_at_one_half():
    base = np.zeros(8, dtype=bool)
    half = base.copy()
    half[:4] = True  # d = 1/2: the term is 1 already
    assert _row(oui(_ds([base, half])), "fc")["oui"] == 1.0
    less = base.copy()
    less[:3] = True  # d = 3/8
    assert _row(oui(_ds([base, less])), "fc")["oui"] == pytest.approx(0.75)
    # farther than one half counts no more than one half: 3 inputs at d = 1/2, 1 and 1/2
    assert _row(oui(_ds([base, half, ~base])), "fc")["oui"] == 1.0
    assert _row(oui(_ds([base, half, ~base])), "fc")["hamming"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", range(6))
def test_random_patterns_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    m, u = int(rng.integers(2, 9)), int(rng.integers(1, 12))
    fired = rng.random((m, u)) < rng.uniform(0.05, 0.95)
    row = _row(oui(_ds(fired)), "fc")
    hamming, ref = _reference(fired)
    assert row["oui"] == pytest.approx(ref, abs=1e-12)
    assert row["hamming"] == pytest.approx(hamming, abs=1e-12)
    assert row["pairs"] == m * (m - 1) // 2


def test_many_inputs_in_blocks_equal_the_reference(monkeypatch):
    # small blocks, so the pairwise distances are assembled from many blocks of rows
    import bayesactiv.monitor.hamming as module

    monkeypatch.setattr(module, "_BLOCK", 50)
    rng = np.random.default_rng(3)
    fired = rng.random((23, 9)) < 0.3
    row = _row(oui(_ds(fired)), "fc")
    hamming, ref = _reference(fired)
    assert row["oui"] == pytest.approx(ref, abs=1e-12)
    assert row["hamming"] == pytest.approx(hamming, abs=1e-12)


# ---------------------------------------------------------------- invariances


def test_invariant_to_permuting_units_and_inputs_and_flipping_a_unit():
    rng = np.random.default_rng(7)
    fired = rng.random((12, 10)) < 0.35
    ref = _row(oui(_ds(fired)), "fc")[["hamming", "oui"]].to_numpy(dtype=float)
    assert 0.0 < ref[1] < 1.0
    variants = {
        "units permuted": fired[:, rng.permutation(10)],
        "inputs permuted": fired[rng.permutation(12)],
        # flipping one unit's state for every input leaves every pair's distance as it is
        "a unit flipped": np.concatenate([fired[:, :3], ~fired[:, 3:4], fired[:, 4:]], axis=1),
    }
    for name, variant in variants.items():
        got = _row(oui(_ds(variant)), "fc")[["hamming", "oui"]].to_numpy(dtype=float)
        np.testing.assert_allclose(got, ref, atol=1e-12, err_msg=name)


def test_labels_do_not_matter():
    rng = np.random.default_rng(2)
    fired = rng.random((10, 6)) < 0.5
    plain = oui(_ds(fired))
    labelled = ba.make_dataset(fired.sum(0), 10, network="net", layer="fc", fired=fired,
                               label=np.arange(10) % 2)
    pd.testing.assert_frame_equal(oui(labelled), plain)


def test_a_changed_pattern_changes_the_value():
    fired = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=bool)
    assert _row(oui(_ds(fired)), "fc")["oui"] == 0.0
    fired[2, 1] = True  # one event differs: pairs (0, 2) and (1, 2) at H = 1 of 4
    assert _row(oui(_ds(fired)), "fc")["oui"] == pytest.approx(2 * 0.5 / 3)


# ---------------------------------------------------------------- events of convolutions


def test_per_position_events_are_grouped_by_input():
    rng = np.random.default_rng(5)
    m, positions, u = 5, 4, 3
    patterns = rng.random((m, positions, u)) < 0.4  # (input, position, unit)
    # events interleaved: position-major, as a recorder might also emit them
    fired = patterns.transpose(1, 0, 2).reshape(m * positions, u)
    owner = np.tile(np.arange(m), positions)
    table = oui(_ds(fired, input=owner))
    row = _row(table, "fc")
    hamming, ref = _reference(patterns.reshape(m, positions * u))
    assert (row["units"], row["pattern"], row["inputs"]) == (u, positions * u, m)
    assert row["oui"] == pytest.approx(ref, abs=1e-12)
    assert row["hamming"] == pytest.approx(hamming, abs=1e-12)
    # read without the input coordinate, each event would be an input of its own
    assert _row(oui(_ds(fired)), "fc")["inputs"] == m * positions


def test_per_position_conv_record_equals_the_flattened_feature_maps():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5),
                        nn.ReLU())
    x = torch.randn(7, 1, 6, 6)
    ds = ba.record(net, x, ["1"], network="cnn", keep_events=True, spatial="per_position",
                   progress=False)
    assert "input" in ds.coords and ds.sizes["sample"] == 7 * 16
    with torch.no_grad():
        maps = net[1](net[0](x)) > 0  # (input, channel, h, w): the paper's pattern
    hamming, ref = _reference(maps.reshape(7, -1).numpy())
    row = _row(oui(ds), "1", network="cnn")
    assert (row["units"], row["pattern"], row["inputs"], row["pairs"]) == (3, 48, 7, 21)
    assert row["oui"] == pytest.approx(ref, abs=1e-12)
    assert row["hamming"] == pytest.approx(hamming, abs=1e-12)
    # spatial="any": one event per channel and input, the pattern over channels only
    coarse = ba.record(net, x, ["1"], network="cnn", keep_events=True, spatial="any",
                       progress=False)
    _, ref_any = _reference(maps.any(dim=(2, 3)).numpy())
    assert _row(oui(coarse), "1", network="cnn")["oui"] == pytest.approx(ref_any, abs=1e-12)


def test_out_of_core_events_equal_in_memory():
    pytest.importorskip("dask")
    rng = np.random.default_rng(8)
    ds = _ds(rng.random((20, 6)) < 0.4)
    pd.testing.assert_frame_equal(oui(ds.chunk({"sample": 5})), oui(ds))


def test_unequal_events_per_input_are_refused():
    fired = np.zeros((5, 2), dtype=bool)
    with pytest.raises(ValueError, match=r"input: .*unequal numbers of events \(2 to 3"):
        oui(_ds(fired, input=[0, 0, 1, 1, 1]))


# ---------------------------------------------------------------- epochs and the monitor


def _concat_units(parts):
    """Datasets of the same inputs (one sample axis), side by side along ``unit``."""
    return ba.validate(xr.concat(parts, dim="unit", data_vars="minimal", coords="minimal",
                                 compat="override", join="override"))


def test_epochs_networks_and_order():
    rng = np.random.default_rng(11)
    parts, expected = [], {}
    for network in ("zeta", "alpha"):
        for epoch in (2, 0):
            fired = rng.random((6, 5)) < 0.5
            parts.append(_ds(fired, layer=["b"] * 2 + ["a"] * 3, index=[0, 1, 0, 1, 2],
                             network=network, epoch=epoch))
            expected[network, "b", epoch] = _reference(fired[:, :2])[1]
            expected[network, "a", epoch] = _reference(fired[:, 2:])[1]
    ds = _concat_units(parts)
    table = oui(ds)
    keys = list(zip(table["network"], table["epoch"], table["layer"], strict=True))
    assert keys == [(net, ep, layer) for net in ("alpha", "zeta") for ep in (0, 2)
                    for layer in ("b", "a", "*")]  # layers as recorded, "*" last
    for (network, layer, epoch), value in expected.items():
        assert _row(table, layer, epoch, network)["oui"] == pytest.approx(value, abs=1e-12)
        star = (expected[network, "a", epoch] + expected[network, "b", epoch]) / 2
        assert _row(table, "*", epoch, network)["oui"] == pytest.approx(star, abs=1e-12)


def test_firing_monitor_over_three_epochs():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g)
    probe = x[:24]
    mon = FiringMonitor(net, ["1", "3"], probe=probe, network="mlp", keep_events=True)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    expected = {}
    for epoch in range(3):
        net.train()
        for lo in range(0, 64, 16):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[lo:lo + 16]), y[lo:lo + 16]).backward()
            opt.step()
        with torch.no_grad():
            h1 = net[1](net[0](probe))
            h3 = net[3](net[2](h1))
        expected[epoch] = (_reference((h1 > 0).numpy()), _reference((h3 > 0).numpy()))
        mon.observe(epoch)
    table = oui(mon.dataset())
    assert table["epoch"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert table["layer"].tolist() == ["1", "3", "*"] * 3
    assert set(table["network"]) == {"mlp"}
    assert table["inputs"].tolist() == [24] * 9 and table["pairs"].tolist() == [276] * 9
    assert table["units"].tolist() == [16, 8, 24] * 3
    for epoch, ((h1, o1), (h3, o3)) in expected.items():
        assert _row(table, "1", epoch, "mlp")["oui"] == pytest.approx(o1, abs=1e-12)
        assert _row(table, "3", epoch, "mlp")["oui"] == pytest.approx(o3, abs=1e-12)
        assert _row(table, "3", epoch, "mlp")["hamming"] == pytest.approx(h3, abs=1e-12)
        assert _row(table, "*", epoch, "mlp")["oui"] == pytest.approx((o1 + o3) / 2, abs=1e-12)
    assert table["oui"].between(0, 1).all()


# ---------------------------------------------------------------- a subset of pairs


@pytest.mark.parametrize("m", range(2, 12))
def test_unranking_follows_itertools_combinations(m):
    every = np.array(list(itertools.combinations(range(m), 2)))
    np.testing.assert_array_equal(_unrank_pairs(np.arange(len(every)), m), every)


def test_unranking_of_many_inputs():
    m = 3_000_000
    total = m * (m - 1) // 2
    ranks = np.array([0, 1, m - 2, m - 1, total // 3, total - 2, total - 1])
    got = _unrank_pairs(ranks, m)
    i, j = got[:, 0], got[:, 1]
    assert ((0 <= i) & (i < j) & (j < m)).all()
    np.testing.assert_array_equal(i * (2 * m - i - 1) // 2 + (j - i - 1), ranks)
    np.testing.assert_array_equal(got[[0, 1, 2, 3, 5, 6]],
                                  [[0, 1], [0, 2], [0, m - 1], [1, 2], [m - 3, m - 1],
                                   [m - 2, m - 1]])


def test_drawn_pairs_are_distinct_and_seeded():
    drawn = _draw_pairs(40, 300, seed=4)
    assert drawn.shape == (300, 2)
    assert len({tuple(p) for p in drawn.tolist()}) == 300
    assert (drawn[:, 0] < drawn[:, 1]).all() and drawn.max() < 40
    np.testing.assert_array_equal(drawn, _draw_pairs(40, 300, seed=4))
    assert not np.array_equal(drawn, _draw_pairs(40, 300, seed=5))


def test_a_subset_of_pairs():
    rng = np.random.default_rng(9)
    fired = rng.random((60, 20)) < rng.random(20)  # units of various rates
    exact = _row(oui(_ds(fired)), "fc")
    sub = oui(_ds(fired), pairs=400, seed=1)
    row = _row(sub, "fc")
    assert row["pairs"] == 400 and _row(sub, "*")["pairs"] == 400
    assert row["oui"] == pytest.approx(exact["oui"], abs=0.05)
    assert row["oui"] != exact["oui"]
    # the same pairs as drawn by the helper, summed by the formula
    drawn = _draw_pairs(60, 400, seed=1)
    h = np.count_nonzero(fired[drawn[:, 0]] != fired[drawn[:, 1]], axis=1) / 20
    assert row["oui"] == pytest.approx(np.mean(np.minimum(2 * h, 1)), abs=1e-12)
    assert row["hamming"] == pytest.approx(np.mean(h), abs=1e-12)
    pd.testing.assert_frame_equal(sub, oui(_ds(fired), pairs=400, seed=1))
    # as many pairs as there are, or more: every pair, exactly
    for k in (60 * 59 // 2, 10_000):
        pd.testing.assert_frame_equal(oui(_ds(fired), pairs=k), oui(_ds(fired)))


# ---------------------------------------------------------------- bad input


def test_no_events_names_fired_and_keep_events():
    ds = ba.make_dataset([1, 2], 10, network="net", layer="fc")
    with pytest.raises(ValueError, match=r"fired: .*keep_events=True"):
        oui(ds)


def test_fewer_than_two_inputs():
    with pytest.raises(ValueError, match=r"fired: .*pairs of inputs.*1 input;"):
        oui(_ds([[1, 0, 1]]))
    with pytest.raises(ValueError, match=r"fired: .*1 input;"):  # 4 events of one input
        oui(_ds(np.ones((4, 2), dtype=bool), input=[3, 3, 3, 3]))


@pytest.mark.parametrize("pairs", [0, -3, 1.5, True, "10"])
def test_bad_pairs(pairs):
    with pytest.raises(ArgumentError, match="pairs:"):
        oui(_ds([[1, 0], [0, 1]]), pairs=pairs)


@pytest.mark.parametrize("seed", [-1, 0.5, "s"])
def test_bad_seed(seed):
    with pytest.raises(ArgumentError, match="seed:"):
        oui(_ds([[1, 0], [0, 1]]), pairs=1, seed=seed)


def test_not_a_dataset():
    with pytest.raises(ValueError, match="dataset: expected an xarray.Dataset"):
        oui(np.zeros((3, 2), dtype=bool))
