"""The cluster statistics of the contract: built from per-input counts, validated, combined."""

from __future__ import annotations

import numpy as np
import pytest

import bayesactiv as ba
from bayesactiv.data import DatasetError, from_input_counts


@pytest.fixture
def tokens():
    c = np.array([[3, 0, 1], [0, 1, 1], [2, 2, 0], [0, 0, 0]])  # 4 inputs x 3 units
    return from_input_counts(c, [4, 4, 2, 3], network="lm", layer="mlp"), c


def test_sums_over_inputs(tokens):
    ds, c = tokens
    t = np.array([4, 4, 2, 3])
    np.testing.assert_array_equal(ds["count"].values, c.sum(0))
    np.testing.assert_array_equal(ds["n"].values, np.full(3, 13))
    np.testing.assert_array_equal(ds["cluster_count_n"].values, (c * t[:, None]).sum(0))
    np.testing.assert_array_equal(ds["cluster_n_sq"].values, np.full(3, (t * t).sum()))
    np.testing.assert_array_equal(ds["cluster_fired"].values, [2, 2, 2])
    assert ds.attrs["spatial"] == "token"


def test_round_trip_keeps_cluster_sums(tokens, tmp_path):
    ds, _ = tokens
    back = ba.open_dataset(ba.save(ds, tmp_path / "t.nc"))
    for name in ba.data.CLUSTER_VARS:
        np.testing.assert_array_equal(back[name].values, ds[name].values)


@pytest.mark.parametrize("change, field", [
    (lambda ds: ds.drop_vars("cluster_n_sq"), "cluster_n_sq: missing"),
    (lambda ds: ds.assign(cluster_n=ds["n"] + 1), "cluster_n: must lie between 1 and n"),
    (lambda ds: ds.assign(cluster_fired=ds["count"] + 1), "cluster_fired"),
    (lambda ds: ds.assign(cluster_count_sq=ds["count"] - 1), "cluster_count_sq"),
    (lambda ds: ds.assign(cluster_count_n=ds["cluster_n_sq"] + 1), "cluster_count_n"),
    (lambda ds: ds.assign(cluster_n_sq=ds["n"] ** 2 + 1), "cluster_n_sq: sum t_i"),
    (lambda ds: ds.assign(cluster_count_sq=-ds["cluster_count_sq"]), "cluster_count_sq: negative"),
])
def test_validate_names_the_broken_cluster_sum(tokens, change, field):
    ds, _ = tokens
    with pytest.raises(DatasetError, match=field):
        ba.validate(change(ds))


def test_from_input_counts_refuses_bad_counts():
    with pytest.raises(DatasetError, match="input_count: unit 1 fired 3 times in input 0"):
        from_input_counts([[0, 3]], [2], network="n", layer="l")
    with pytest.raises(DatasetError, match="input_events: expected 2 values"):
        from_input_counts([[0, 1], [1, 1]], [2], network="n", layer="l")
    with pytest.raises(DatasetError, match="expected a 2-d array"):
        from_input_counts([1, 2], [2, 2], network="n", layer="l")
    with pytest.raises(DatasetError, match="non-negative"):
        from_input_counts([[-1]], [2], network="n", layer="l")


def test_dense_layers_are_clusters_of_one(tokens):
    dense = ba.make_dataset([1, 4], 6, network="d", layer="fc")
    assert not ba.data.clustered(dense).any()
    both = ba.combine([dense, tokens[0]])
    assert ba.data.clustered(both).tolist() == [False, False, True, True, True]
    ones = from_input_counts(np.array([[1], [0], [1]]), [1, 1, 1], network="o", layer="l")
    assert not ba.data.clustered(ones).any()  # one event per input: nothing clustered
