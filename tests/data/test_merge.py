"""ba.merge: partial recordings over disjoint inputs merge into the recording of all."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

import bayesactiv as ba
from bayesactiv.data import DatasetError

EXACT = ("count", "n", "act_zero", "act_min", "act_max", "window_count", "fired", "hist_count",
         "threshold", "cluster_n", "cluster_fired", "cluster_count_sq", "cluster_count_n",
         "cluster_n_sq", "layer_count_sq", "layer_count_n", "layer_count")
MOMENTS = ("act_mean", "act_var", "act_skewness", "act_kurtosis")


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())


def _conv():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU())


def _shards(x, sizes):
    bounds = np.cumsum([0, *sizes])
    return [x[a:b] for a, b in itertools.pairwise(bounds)]


def _assert_merged_equals(merged, whole):
    assert list(merged["unit"].values) == list(whole["unit"].values)
    for name in EXACT:
        if name in whole:
            np.testing.assert_array_equal(merged[name].values, whole[name].values, err_msg=name)
    for name in MOMENTS:
        np.testing.assert_allclose(merged[name].values, whole[name].values, rtol=1e-9,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(merged["topk_value"].values, whole["topk_value"].values)
    # event numbers agree wherever a unit's top values are distinct (ties may pick either)
    v, e = whole["topk_value"].values, whole["topk_sample"].values
    for u in range(v.shape[0]):
        vals, counts = np.unique(v[u][~np.isnan(v[u])], return_counts=True)
        unique = np.isin(v[u], vals[counts == 1])
        np.testing.assert_array_equal(merged["topk_sample"].values[u][unique], e[u][unique])
    if "fired" in whole:
        for c in whole["fired"].coords:
            np.testing.assert_array_equal(merged[c].values, whole[c].values, err_msg=c)


@pytest.mark.parametrize("sizes", [(40, 60, 20), (100, 20)])
def test_shards_of_a_dense_network_merge_into_one_recording(sizes):
    net, x = _mlp(), torch.randn(120, 12)
    labels = np.arange(120) % 3
    kw = {"window_size": 10, "keep_events": True, "progress": False, "hist_range": (0.0, 3.0),
          "batch_size": 16}
    whole = ba.record(net, x, ["1", "3"], labels=labels, **kw)
    parts = [ba.record(net, s, ["1", "3"], labels=lab, **kw)
             for s, lab in zip(_shards(x, sizes), _shards(labels, sizes), strict=True)]
    _assert_merged_equals(ba.merge(parts), whole)


def test_shards_of_per_position_events_merge_with_their_cluster_sums():
    net, x = _conv(), torch.randn(30, 1, 6, 6)
    kw = {"keep_events": True, "progress": False, "hist_range": (-1.0, 4.0), "batch_size": 7}
    whole = ba.record(net, x, ["1"], **kw)
    parts = [ba.record(net, s, ["1"], **kw) for s in _shards(x, (11, 19))]
    merged = ba.merge(parts)
    assert ba.data.clustered(merged).all()
    _assert_merged_equals(merged, whole)


def test_merge_refuses_what_it_cannot_merge_exactly():
    net, x = _mlp(), torch.randn(60, 12)
    kw = {"progress": False, "hist_range": (0.0, 3.0)}
    a = ba.record(net, x[:30], ["1"], **kw)
    with pytest.raises(DatasetError, match="other units"):
        ba.merge([a, ba.record(net, x[30:], ["3"], **kw)])
    with pytest.raises(DatasetError, match="thresholds"):
        ba.merge([ba.record(net, x[:30], ["1"], threshold=ba.FractionOfMax(0.5), **kw),
                  ba.record(net, x[30:], ["1"], threshold=ba.FractionOfMax(0.5), **kw)])
    with pytest.raises(DatasetError, match="bin edges"):
        ba.merge([ba.record(net, x[:30], ["1"], progress=False),
                  ba.record(net, x[30:], ["1"], progress=False)])
    with pytest.raises(DatasetError, match="whole windows"):
        ba.merge([ba.record(net, x[:25], ["1"], window_size=10, **kw),
                  ba.record(net, x[25:], ["1"], window_size=10, **kw)])
    with pytest.raises(DatasetError, match="nothing to merge"):
        ba.merge([])
    with pytest.raises(ValueError, match="hist_range"):
        ba.record(net, x, ["1"], hist_range=(1.0, 0.0), progress=False)


def test_merge_of_made_datasets_adds_counts():
    a = ba.make_dataset([1, 4], 10, network="n", layer="l")
    b = ba.make_dataset([2, 0], 5, network="n", layer="l")
    m = ba.merge([a, b])
    assert m["count"].values.tolist() == [3, 4] and m["n"].values.tolist() == [15, 15]
    assert ba.merge([a]) is not None
