"""Tests of bayesactiv.bayes.sufficient: the units' groups."""

from __future__ import annotations

import bayesactiv as ba
from bayesactiv.bayes import sufficient


def test_groups_in_order_of_first_appearance():
    ds = ba.make_dataset([1, 2, 3, 4, 5, 6], 10, network="n",
                         layer=["b", "a", "b", "c", "a", "b"])
    ds = ds.assign_coords(epoch=("unit", [3, 3, 1, 1, 3, 3]))
    g = sufficient.make_groups(ds, ("layer", "epoch"), False)
    assert g.labels.tolist() == ["b/3", "a/3", "b/1", "c/1"]
    assert g.index.tolist() == [0, 1, 2, 3, 1, 0]
    assert g.coords["epoch"].tolist() == [3, 3, 1, 1]
