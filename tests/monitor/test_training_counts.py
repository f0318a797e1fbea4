"""Tests of FiringMonitor.training_batches: counts on the training batches themselves."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import bayesactiv as ba
from bayesactiv.monitor import FiringMonitor
from bayesactiv.monitor import training as training_module

ADDITIVE = ("count", "n", "cluster_n", "cluster_fired", "cluster_count_sq", "cluster_count_n",
            "cluster_n_sq", "layer_count_sq", "layer_count_n", "layer_count")


class Tokens(nn.Module):
    """[batch, sequence, features] hidden outputs (a token is an event), then a mean."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 7)
        self.act = nn.ReLU()
        self.head = nn.Linear(7, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.fc(x)).mean(1))


def _net(arch: str, seed: int = 0) -> tuple[nn.Module, list[str], tuple[int, ...]]:
    torch.manual_seed(seed)
    if arch == "mlp":
        return (nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 8), nn.Tanh(),
                              nn.Linear(8, 3)), ["1", "3"], (6,))
    if arch == "cnn":
        return (nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                              nn.Linear(4 * 6 * 6, 6), nn.ReLU(), nn.Linear(6, 3)),
                ["1", "4"], (1, 8, 8))
    return Tokens(), ["act"], (4, 5)


def _batches(shape: tuple[int, ...], n_batches: int = 5, size: int = 16, seed: int = 1
             ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, *shape, generator=g), torch.randint(0, 3, (size,), generator=g))
            for _ in range(n_batches)]


def _hooks(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
@pytest.mark.parametrize("arch, spatial, threshold", [
    ("mlp", "per_position", 0.0), ("mlp", "per_position", 0.05), ("cnn", "per_position", 0.0),
    ("cnn", "any", 0.1), ("tokens", "per_position", 0.0)])
def test_counts_equal_record_on_the_same_batches(arch, spatial, threshold, compiled,
                                                 monkeypatch):
    if not compiled:  # the torch reductions (what runs on a GPU) on the CPU
        monkeypatch.setattr(training_module, "cpu_kernels", lambda: None)
    net, layers, shape = _net(arch)
    mon = FiringMonitor(net, layers, network=arch, threshold=threshold, spatial=spatial)
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    for epoch in range(2):
        expected = None
        net.train()
        with mon.training_batches(epoch) as counted:
            for x, y in _batches(shape, seed=epoch):
                # what record gives on this batch with the weights of this step (record runs in
                # eval mode inside the block: it is not counted)
                rec = ba.record(net, x, layers, threshold=threshold, spatial=spatial,
                                network=arch, progress=False, summaries=False)
                expected = rec if expected is None else expected.assign(
                    {v: expected[v] + rec[v] for v in ADDITIVE if v in rec.data_vars})
                opt.zero_grad()
                nn.functional.cross_entropy(net(x), y).backward()
                opt.step()
        ds = counted.dataset
        assert counted.batches == 5
        compiled_path = {c.kernels is not None for c in counted.counters.values()}
        assert compiled_path == {compiled}
        for var in ADDITIVE:
            if var.startswith("layer_"):  # record's per-layer sums: added per batch, also -1
                continue
            assert (var in ds.data_vars) == (var in expected.data_vars), var
            if var in expected.data_vars:
                np.testing.assert_array_equal(ds[var].values, expected[var].values, err_msg=var)
        if "layer_count" in expected.data_vars:
            streamed = expected["layer_count"].values >= 0
            for var in ("layer_count_sq", "layer_count_n", "layer_count"):
                np.testing.assert_array_equal(ds[var].values[streamed],
                                              expected[var].values[streamed], err_msg=var)
                assert (ds[var].values[~streamed] == -1).all()
        assert ds.attrs["spatial"] == expected.attrs["spatial"]
        assert ds.attrs["layer_spatial"] == expected.attrs["layer_spatial"]
        assert (ds["network"].values == f"{arch}:train").all()
        assert (ds["epoch"].values == epoch).all()
        assert ds.attrs["monitor_source"] == "training_batches"
        assert ds.attrs["threshold_rule"] == expected.attrs["threshold_rule"]
    history = mon.training_dataset()
    assert mon.training_epochs == [0, 1]
    assert history.sizes["unit"] == 2 * expected.sizes["unit"]


def test_low_precision_counts_equal_record():
    net, layers, shape = _net("mlp")
    net = net.to(torch.bfloat16)
    x = _batches(shape, n_batches=1, size=64)[0][0].to(torch.bfloat16)
    mon = FiringMonitor(net, layers, threshold=0.1)
    with mon.training_batches(0) as counted:
        net(x)
    rec = ba.record(net, x, layers, threshold=0.1, progress=False)
    np.testing.assert_array_equal(counted.dataset["count"].values, rec["count"].values)


def _train(net: nn.Module, batches, mon: FiringMonitor | None) -> tuple[list, list]:
    torch.manual_seed(123)  # the dropout masks
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses, grads = [], []
    net.train()
    for epoch in range(2):
        with mon.training_batches(epoch) if mon is not None else _nothing():
            for x, y in batches:
                opt.zero_grad()
                out = net(x)
                loss = nn.functional.cross_entropy(out, y)
                loss.backward()
                opt.step()
                losses.append(loss.detach().clone())
                grads.append([p.grad.clone() for p in net.parameters()])
    return losses, grads


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_gradients_and_losses_are_bit_identical():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 16),
                        nn.ReLU(), nn.Linear(16, 3))
    plain, counted = copy.deepcopy(net), copy.deepcopy(net)
    batches = _batches((6,))
    losses_a, grads_a = _train(plain, batches, None)
    mon = FiringMonitor(counted, ["1", "4"])
    losses_b, grads_b = _train(counted, batches, mon)
    for a, b in zip(losses_a, losses_b, strict=True):
        assert torch.equal(a, b)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(ga, gb, strict=True))
    for pa, pb in zip(plain.parameters(), counted.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert int(mon.training_dataset()["n"][0]) == 5 * 16


def test_hooks_only_inside_the_block_and_eval_passes_not_counted():
    net, layers, shape = _net("mlp")
    x = _batches(shape, n_batches=1)[0][0]
    mon = FiringMonitor(net, layers, probe=x)
    assert _hooks(net) == 0
    with mon.training_batches(0) as counted:
        assert _hooks(net) == 2
        net.train()
        net(x)
        net.eval()
        net(x)  # a validation pass: not counted
        mon.observe(0)  # neither is the probe's record
        net.train()
        net(x[:5])
    assert _hooks(net) == 0
    assert counted.batches == 2 and int(counted.dataset["n"][0]) == 16 + 5
    assert int(mon.dataset()["n"][0]) == 16


def test_block_errors_remove_the_hooks_and_keep_nothing():
    net, layers, shape = _net("mlp")
    x = _batches(shape, n_batches=1)[0][0]
    mon = FiringMonitor(net, layers)
    with pytest.raises(KeyboardInterrupt), mon.training_batches(0):
        net(x)
        raise KeyboardInterrupt
    assert _hooks(net) == 0 and mon.training_epochs == []
    with pytest.raises(RuntimeError, match="do not nest"), mon.training_batches(0), \
            mon.training_batches(1):
        pass
    assert _hooks(net) == 0 and mon.training_epochs == []
    net.eval()
    with pytest.raises(ValueError, match="ran in no forward pass in train mode"), \
            mon.training_batches(0):
        net(x)
    net.train()
    with mon.training_batches(3):
        net(x)
    with pytest.raises(ValueError, match="strictly increasing"), mon.training_batches(3):
        pass
    assert mon.training_epochs == [3] and mon.next_epoch == 4


def test_training_store_saves_and_resumes(tmp_path):
    store = tmp_path / "train.zarr"
    net, layers, shape = _net("mlp")
    batches = _batches(shape)
    mon = FiringMonitor(net, layers, network="mlp", training_store=store)
    net.train()
    for epoch in range(2):
        with mon.training_batches(epoch):
            for x, _ in batches:
                net(x)
        saved = ba.open_dataset(store)
        assert sorted(set(saved["epoch"].values.tolist())) == list(range(epoch + 1))
    again = FiringMonitor(net, layers, network="mlp", training_store=store)
    assert again.training_epochs == [0, 1] and again.next_epoch == 2
    with again.training_batches(2):
        net(batches[0][0])
    saved = ba.open_dataset(store)
    assert saved.sizes["unit"] == 3 * 20
    assert saved["n"].values.tolist() == [80] * 40 + [16] * 20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_counts_on_the_layer_device_equal_those_on_the_cpu():
    net, layers, shape = _net("cnn")
    batches = _batches(shape)
    results = []
    for device in ("cpu", "cuda"):
        moved = copy.deepcopy(net).to(device)
        mon = FiringMonitor(moved, layers)
        moved.train()
        with mon.training_batches(0) as counted:
            for x, _ in batches:
                moved(x.to(device))
            devices = {c.count.device.type for c in counted.counters.values()}
        assert devices == {device}
        results.append(counted.dataset)
    for var in ADDITIVE:
        np.testing.assert_array_equal(results[0][var].values, results[1][var].values)
