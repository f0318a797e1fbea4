"""record under torch.distributed: two gloo processes record their shards and every rank gets
the dataset of all inputs, equal to one process recording them (rank-major order)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import bayesactiv as ba

WORKER = textwrap.dedent('''
    import sys, numpy as np, torch, torch.distributed as dist
    from torch import nn
    import bayesactiv as ba
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
    x = torch.randn(120, 12, generator=torch.Generator().manual_seed(1))
    labels = np.arange(120) % 3
    per = 120 // world
    shard = slice(rank * per, (rank + 1) * per)
    kw = dict(window_size=10, keep_events=True, progress=False, batch_size=16)
    out = sys.argv[1]
    fixed = ba.record(net, x[shard], ["1", "3"], labels=labels[shard], hist_range=(0.0, 5.0), **kw)
    fom = ba.record(net, x[shard], ["1", "3"], threshold=ba.FractionOfMax(0.5), **kw)
    default = ba.record(net, x[shard], ["1"], **kw)
    ba.save(fixed, f"{out}/fixed{rank}.nc")
    ba.save(fom, f"{out}/fom{rank}.nc")
    ba.save(default, f"{out}/default{rank}.nc")
    quant = ba.record(net, x[shard], ["1", "3"], threshold=ba.Quantile(0.9), **kw)
    ba.save(quant, f"{out}/quantile{rank}.nc")
    dist.destroy_process_group()
''')


def _reference():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
    x = torch.randn(120, 12, generator=torch.Generator().manual_seed(1))
    return net, x, np.arange(120) % 3


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    (out / "worker.py").write_text(WORKER)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", "2", str(out / "worker.py"), str(out)],
                   check=True, capture_output=True, timeout=600)
    return out


def test_every_rank_returns_the_recording_of_all_inputs(ranks):
    net, x, labels = _reference()
    kw = {"window_size": 10, "keep_events": True, "progress": False, "batch_size": 16}
    whole = ba.record(net, x, ["1", "3"], labels=labels, hist_range=(0.0, 5.0), **kw)
    for rank in (0, 1):
        ds = ba.open_dataset(ranks / f"fixed{rank}.nc")
        for name in ("count", "n", "window_count", "fired", "act_zero", "act_min", "act_max",
                     "hist_count", "hist_edges", "topk_value", "label"):
            np.testing.assert_array_equal(ds[name].values, whole[name].values, err_msg=name)
        for name in ("act_mean", "act_var", "act_skewness", "act_kurtosis"):
            np.testing.assert_allclose(ds[name].values, whole[name].values, rtol=1e-9,
                                       atol=1e-12, err_msg=name)


def test_fraction_of_max_takes_the_maximum_over_all_ranks(ranks):
    net, x, _ = _reference()
    kw = {"window_size": 10, "keep_events": True, "progress": False, "batch_size": 16}
    whole = ba.record(net, x, ["1", "3"], threshold=ba.FractionOfMax(0.5), **kw)
    ds = ba.open_dataset(ranks / "fom1.nc")
    for name in ("threshold", "count", "n", "fired", "hist_edges", "hist_count"):
        np.testing.assert_array_equal(ds[name].values, whole[name].values, err_msg=name)


def test_default_histograms_share_their_edges(ranks):
    a, b = (ba.open_dataset(ranks / f"default{r}.nc") for r in (0, 1))
    np.testing.assert_array_equal(a["hist_edges"].values, b["hist_edges"].values)
    assert int(a["hist_count"].sum()) == int(a["n"].sum())  # every activation in a bin


def test_quantile_thresholds_are_the_exact_quantiles_of_all_inputs(ranks):
    net, x, _ = _reference()
    kw = {"window_size": 10, "keep_events": True, "progress": False, "batch_size": 16}
    whole = ba.record(net, x, ["1", "3"], threshold=ba.Quantile(0.9), **kw)
    for rank in (0, 1):
        ds = ba.open_dataset(ranks / f"quantile{rank}.nc")
        for name in ("threshold", "count", "n", "fired"):
            np.testing.assert_array_equal(ds[name].values, whole[name].values, err_msg=name)
