"""The statistics that read events run unchanged on a dask.distributed cluster: a local cluster
of two worker processes reads a store written by record(..., store=...) block by block and
gives the numbers the default scheduler gives."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import torch
from torch import nn

import bayesactiv as ba
from bayesactiv.data import files
from bayesactiv.data.lazy import is_lazy

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A dense and a per-position recording, streamed to stores in many chunks."""
    folder = tmp_path_factory.mktemp("stores")
    saved = files.CHUNK_BITS
    files.CHUNK_BITS = 512  # chunks of 16 (dense) and 168 (positions) events
    try:
        torch.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(6, 32), nn.ReLU())
        x = torch.randn(900, 6, generator=torch.Generator().manual_seed(1))
        dense = ba.record(mlp, x, ["1"], keep_events=True, progress=False,
                          store=folder / "dense.zarr")
        cnn = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
        images = torch.randn(120, 1, 6, 6, generator=torch.Generator().manual_seed(2))
        positions = ba.record(cnn, images, ["1"], keep_events=True, progress=False,
                              store=folder / "positions.zarr")
    finally:
        files.CHUNK_BITS = saved
    assert is_lazy(dense) and is_lazy(positions)
    assert len(dense["fired"].chunks[0]) > 3 and len(positions["fired"].chunks[0]) > 3
    return {"dense": folder / "dense.zarr", "positions": folder / "positions.zarr"}


def _statistics(ds) -> dict[str, np.ndarray]:
    """Statistics that read the events: the input bootstrap (clustered for positions),
    co-activation, and for dense events the inter-spike-interval variability."""
    boot = ba.baselines.bootstrap(ds, n_resamples=200, seed=3)
    layer = str(ds["layer"].values[0])
    out = {"bootstrap_low": boot["low"].values, "bootstrap_high": boot["high"].values,
           "coactivation": ba.descriptive.coactivation(ds, layer).values}
    if ds.attrs["spatial"] == "none":
        isi = ba.baselines.isi_cv(ds)
        out.update({name: isi[name].values for name in ("isi_cv", "isi_cv2", "isi_lv")})
    return out


@pytest.mark.parametrize("kind", ["dense", "positions"])
def test_a_local_cluster_of_two_workers_gives_the_default_schedulers_numbers(client, stores,
                                                                            kind):
    ds = ba.open_dataset(stores[kind], lazy=True)
    with distributed.get_task_stream(client) as stream:
        on_cluster = _statistics(ds)
    assert len(stream.data) > 0  # the blocks ran on the cluster's workers
    assert {task["worker"] for task in stream.data} <= set(client.scheduler_info()["workers"])
    with dask.config.set(scheduler="synchronous"):
        local = _statistics(ds)
    in_memory = _statistics(ba.open_dataset(stores[kind], lazy=False))
    for name, values in local.items():
        np.testing.assert_array_equal(on_cluster[name], values, err_msg=name)
        if not name.startswith("bootstrap"):  # deterministic: equal to the in-memory numbers
            np.testing.assert_allclose(in_memory[name], values, rtol=1e-12, equal_nan=True,
                                       err_msg=name)
