"""Tests of FiringMonitor.observe, its history and its store, against bayesactiv.record."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from torch import nn

import bayesactiv as ba
from bayesactiv.data.checks import ArgumentError
from bayesactiv.monitor import FiringMonitor
from bayesactiv.recording import FractionOfMax

COMPARED = ("count", "n", "window_count", "threshold", "act_min", "act_max", "act_mean",
            "act_var", "act_zero", "topk_sample", "topk_value", "hist_count", "hist_edges",
            "cluster_n", "cluster_fired", "cluster_count_sq", "cluster_count_n", "cluster_n_sq",
            "layer_count_sq", "layer_count_n", "layer_count")


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Dropout(0.2), nn.Linear(12, 8), nn.ReLU(),
                         nn.Linear(8, 3))


def _cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 6),
                         nn.ReLU(), nn.Linear(6, 3))


def _data(shape: tuple[int, ...], n: int = 96, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, 3, (n,), generator=g)


def _steps(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 3) -> None:
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net.train()
    for i in range(steps):
        lo = (16 * i) % len(x)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[lo:lo + 16]), y[lo:lo + 16]).backward()
        opt.step()


def _assert_same_record(observed, recorded) -> None:
    """Every statistic of an observed epoch equals ba.record's, bit for bit."""
    assert observed.sizes["unit"] == recorded.sizes["unit"]
    for var in COMPARED:
        if var in recorded.data_vars:
            np.testing.assert_array_equal(observed[var].values, recorded[var].values, err_msg=var)
    for name in ("network", "layer", "index"):
        np.testing.assert_array_equal(observed[name].values, recorded[name].values)


def _hooks(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in net.modules())


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_observe_equals_record_after_optimizer_steps(arch):
    net = _mlp() if arch == "mlp" else _cnn()
    x, y = _data((6,) if arch == "mlp" else (1, 8, 8))
    probe = x[:40]
    mon = FiringMonitor(net, ["1", "4"], probe=probe,
                        network=arch, window_size=5, batch_size=16)
    for epoch in range(3):
        _steps(net, x, y)
        observed = mon.observe(epoch)
        recorded = ba.record(net, probe, mon.layers, network=arch, window_size=5, batch_size=16,
                             progress=False)
        _assert_same_record(observed, recorded)
        assert set(observed["epoch"].values.tolist()) == {epoch}
        assert observed["unit"].values[0].endswith(f"@{epoch}")
        assert int(observed["count"].sum()) > 0


def test_observe_leaves_hooks_modes_and_grad_mode_alone():
    net = _mlp()
    x = _data((6,))[0]
    net[2].eval()  # a mixed state: the dropout in eval mode, the rest in train mode
    modes = [m.training for m in net.modules()]
    mon = FiringMonitor(net, ["1", "4"], probe=x[:32])
    assert _hooks(net) == 0
    for epoch, grad in enumerate([True, False, True]):
        with torch.set_grad_enabled(grad):
            mon.observe(epoch)
            assert torch.is_grad_enabled() is grad
        assert _hooks(net) == 0
        assert [m.training for m in net.modules()] == modes
    mon.observe(10)
    assert _hooks(net) == 0


def test_dataset_holds_every_epoch_with_its_histograms():
    net = _mlp()
    x, y = _data((6,))
    mon = FiringMonitor(net, ["1", "4"], probe=x[:32], network="mlp", window_size=4)
    epochs = [0, 2, 7]
    per_epoch = []
    for epoch in epochs:
        _steps(net, x, y)
        per_epoch.append(mon.observe(epoch))
    ds = ba.validate(mon.dataset())
    assert mon.epochs == epochs and mon.next_epoch == 8
    assert ds.sizes["unit"] == 3 * 20
    assert ds["epoch"].values.tolist() == [e for e in epochs for _ in range(20)]
    assert ds.sizes["hist_group"] == 6
    assert sorted(ds["hist_group"].values.tolist()) == sorted(
        f"mlp/{layer}@{e}" for layer in ("1", "4") for e in epochs)
    for epoch, part in zip(epochs, per_epoch, strict=True):
        sub = ds.isel(unit=ds["epoch"].values == epoch)
        np.testing.assert_array_equal(sub["count"].values, part["count"].values)
        np.testing.assert_array_equal(sub["window_count"].values, part["window_count"].values)
        hist = ds["hist_count"].sel(hist_group=f"mlp/4@{epoch}").values
        np.testing.assert_array_equal(hist, part["hist_count"].sel(hist_group=f"mlp/4@{epoch}"))
    assert "epoch" not in ds.attrs and ds.attrs["monitor_source"] == "probe"


@pytest.mark.parametrize("bad, error, match", [
    (1.0, TypeError, "expected an integer"),
    (True, TypeError, "expected an integer"),
    ("3", TypeError, "expected an integer"),
    (-1, ValueError, ">= 0"),
    (3, ValueError, "strictly increasing; 3 comes after epoch 3"),
    (2, ValueError, "strictly increasing"),
])
def test_epochs_must_be_increasing_integers(bad, error, match):
    net = _mlp()
    mon = FiringMonitor(net, "1", probe=_data((6,))[0])
    mon.observe(np.int64(3))
    with pytest.raises(error, match=match):
        mon.observe(bad)
    assert mon.epochs == [3]


def test_construction_checks_arguments(tmp_path):
    net = _mlp()
    x = _data((6,))[0]
    with pytest.raises(ValueError, match="no module named 'relu1'"):
        FiringMonitor(net, ["relu1"], probe=x)
    with pytest.raises(ValueError, match="matches no module"):
        FiringMonitor(net, ["relu*"], probe=x)
    with pytest.raises(ValueError, match="probe: empty"):
        FiringMonitor(net, "1", probe=[])
    with pytest.raises(ValueError, match="inputs: empty"):
        FiringMonitor(net, "1", probe=torch.empty(0, 6))
    with pytest.raises(ValueError, match="one-shot iterator"):
        FiringMonitor(net, "1", probe=(b for b in [x]))
    with pytest.raises(ValueError, match="'.zarr' path"):
        FiringMonitor(net, "1", probe=x, store=tmp_path / "run.nc")
    with pytest.raises(ValueError, match="network: must be a non-empty name without '/'"):
        FiringMonitor(net, "1", probe=x, network="a/b")
    with pytest.raises(ValueError, match="no probe was given"):
        FiringMonitor(net, "1", store=tmp_path / "run.zarr")
    with pytest.raises(ValueError, match="the same path as store"):
        FiringMonitor(net, "1", probe=x, store=tmp_path / "a.zarr",
                      training_store=tmp_path / "a.zarr")
    with pytest.raises(ValueError, match="window_size"):
        FiringMonitor(net, "1", probe=x, window_size=0)
    with pytest.raises(ValueError, match="spatial"):
        FiringMonitor(net, "1", probe=x, spatial="all")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        FiringMonitor("net", "1", probe=x)
    with pytest.raises(ValueError, match="without a probe"):
        FiringMonitor(net, "1").observe(0)
    with pytest.raises(ValueError, match="no epoch observed yet"):
        FiringMonitor(net, "1", probe=x).dataset()
    mon = FiringMonitor(net, "1", probe=x, threshold=FractionOfMax(0.5))
    with pytest.raises(TypeError, match="needs a fixed threshold"), mon.training_batches(0):
        pass
    assert _hooks(net) == 0


def test_store_refuses_what_is_not_its_own(tmp_path):
    net = _mlp()
    x = _data((6,))[0]
    (tmp_path / "file.zarr").write_text("precious")
    with pytest.raises(ArgumentError, match="is a file"):
        FiringMonitor(net, "1", probe=x, store=tmp_path / "file.zarr")
    (tmp_path / "folder.zarr").mkdir()
    (tmp_path / "folder.zarr" / "notes.txt").write_text("precious")
    with pytest.raises(ArgumentError, match="not an activation dataset written by bayesactiv"):
        FiringMonitor(net, "1", probe=x, store=tmp_path / "folder.zarr")
    plain = ba.save(ba.record(net, x, "1", progress=False), tmp_path / "plain.zarr")
    with pytest.raises(ArgumentError, match="no FiringMonitor wrote"):
        FiringMonitor(net, "1", probe=x, store=plain)
    assert (tmp_path / "file.zarr").read_text() == "precious"
    assert (tmp_path / "folder.zarr" / "notes.txt").read_text() == "precious"
    assert ba.open_dataset(plain).sizes["unit"] == 12


def test_store_saves_every_epoch_and_resumes(tmp_path):
    store = tmp_path / "run.zarr"
    net = _mlp()
    x, y = _data((6,))
    mon = FiringMonitor(net, ["1", "4"], probe=x[:32], network="mlp", store=store, window_size=4)
    for epoch in range(3):
        _steps(net, x, y)
        mon.observe(epoch)
        saved = ba.open_dataset(store)
        assert sorted(set(saved["epoch"].values.tolist())) == list(range(epoch + 1))
        np.testing.assert_array_equal(saved["count"].values, mon.dataset()["count"].values)
    # a new monitor on the store of the same network and options goes on where it stopped
    again = FiringMonitor(net, ["1", "4"], probe=x[:32], network="mlp", store=store,
                          window_size=4)
    assert again.epochs == [0, 1, 2] and again.next_epoch == 3
    with pytest.raises(ValueError, match="comes after epoch 2 \\(resumed from"):
        again.observe(2)
    _steps(net, x, y)
    again.observe(3)
    saved = ba.open_dataset(store)
    assert sorted(set(saved["epoch"].values.tolist())) == [0, 1, 2, 3]
    np.testing.assert_array_equal(saved["count"].values[:60], mon.dataset()["count"].values)
    # another monitor's options: refused, and the store is left as it is
    for other in ({"layers": ["1"]}, {"network": "other"}, {"window_size": 8},
                  {"threshold": 0.5}):
        options = {"layers": ["1", "4"], "network": "mlp", "window_size": 4, **other}
        with pytest.raises(ArgumentError, match="holds the history of another monitor"):
            FiringMonitor(net, probe=x[:32], store=store, **options)
    assert ba.open_dataset(store).sizes["unit"] == 80
    # a different probe is refused at the first epoch after resuming
    other_probe = FiringMonitor(net, ["1", "4"], probe=x[:20], network="mlp", store=store,
                                window_size=4)
    with pytest.raises(ValueError, match="the probe must stay the same"):
        other_probe.observe(4)
    assert ba.open_dataset(store).sizes["unit"] == 80


_TRAINING_RUN = textwrap.dedent("""
    import sys, torch
    from torch import nn
    from bayesactiv.monitor import FiringMonitor
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    x, y = torch.randn(256, 6), torch.randint(0, 3, (256,))
    mon = FiringMonitor(net, ["1", "3"], probe=x[:128], network="mlp", store=sys.argv[1],
                        training_store=sys.argv[2], window_size=8)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for epoch in range(mon.next_epoch, 10_000):
        with mon.training_batches(epoch):
            for lo in range(0, 256, 32):
                opt.zero_grad()
                nn.functional.cross_entropy(net(x[lo:lo + 32]), y[lo:lo + 32]).backward()
                opt.step()
        mon.observe(epoch)
        print(epoch, flush=True)
""")


def test_killed_run_keeps_every_epoch_saved_before(tmp_path):
    store, training_store = tmp_path / "run.zarr", tmp_path / "train.zarr"
    script = tmp_path / "train.py"
    script.write_text(_TRAINING_RUN)
    proc = subprocess.Popen([sys.executable, str(script), str(store), str(training_store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = []
        while len(printed) < 3:
            line = proc.stdout.readline()
            assert line, f"the training run ended early: {proc.stderr.read()}"
            printed.append(int(line))
        time.sleep(random.Random().uniform(0.0, 0.3))  # a random point of the next epochs
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    saved = ba.open_dataset(store)
    epochs = sorted(set(saved["epoch"].values.tolist()))
    # every epoch that observe() returned from is there, in order, and nothing half-written
    assert epochs == list(range(len(epochs))) and len(epochs) >= len(printed)
    assert saved.sizes["unit"] == 128 * len(epochs)
    assert (saved["n"].values == 128).all()
    counted = ba.open_dataset(training_store)
    train_epochs = sorted(set(counted["epoch"].values.tolist()))
    assert train_epochs == list(range(len(train_epochs))) and len(train_epochs) >= len(epochs)
    assert (counted["n"].values == 256).all()
    # the run resumes on its stores, after the last saved epoch
    net = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 3))
    mon = FiringMonitor(net, ["1", "3"], probe=torch.randn(128, 6), network="mlp", store=store,
                        training_store=training_store, window_size=8)
    assert mon.epochs == epochs and mon.next_epoch == max(epochs[-1], train_epochs[-1]) + 1
    mon.observe(mon.next_epoch)
    assert ba.open_dataset(store).sizes["unit"] == 128 * (len(epochs) + 1)
    # each epoch has its own store in the history store; a save that the kill interrupted left
    # a temporary folder there, removed when the store was resumed
    assert sorted(p.name for p in store.iterdir()) == ["bayesactiv_history.json"] + [
        f"epoch_{e:06d}.zarr" for e in [*epochs, mon.next_epoch - 1]]
    assert sorted(p.name for p in training_store.iterdir()) == ["bayesactiv_history.json"] + [
        f"epoch_{e:06d}.zarr" for e in train_epochs]


def test_report_draws_the_history(tmp_path):
    from bayesactiv.report import report_from_datasets

    store = tmp_path / "run.zarr"
    net = _mlp()
    x, y = _data((6,))
    mon = FiringMonitor(net, ["1", "4"], probe=x[:48], network="mlp", store=store)
    for epoch in range(2):
        _steps(net, x, y)
        mon.observe(epoch)
    out = report_from_datasets([ba.open_dataset(store)], tmp_path / "report", progress=False,
                               draws=200, chains=1, n_resamples=50)
    import pandas as pd

    layers = pd.read_csv(out / "tables" / "layers.csv")
    assert sorted(zip(layers["layer"].astype(str), layers["epoch"], strict=True)) == [
        ("1", 0), ("1", 1), ("4", 0), ("4", 1)]
    assert (out / "report.html").exists()
