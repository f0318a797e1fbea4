"""The history store of FiringMonitor: a folder with a marker and one store per epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from torch import nn

import bayesactiv as ba
from bayesactiv.data.checks import ArgumentError
from bayesactiv.data.contract import DatasetError
from bayesactiv.data.files import HISTORY_FORMAT, HISTORY_MARKER, is_history_store
from bayesactiv.monitor import FiringMonitor

UNITS = 20  # units of the two observed layers of _mlp


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(),
                         nn.Linear(8, 3))


def _probe(n: int = 32) -> torch.Tensor:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(1))


def _step(net: nn.Module, seed: int) -> None:
    """One optimizer step, so that every epoch's counts differ."""
    g = torch.Generator().manual_seed(100 + seed)
    x, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    opt.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()


def _monitor(store: Path, net: nn.Module | None = None, **options) -> FiringMonitor:
    return FiringMonitor(_mlp() if net is None else net, ["1", "3"], probe=_probe(),
                         network="mlp", store=store, window_size=4, **options)


def _run(store: Path, epochs, **options) -> FiringMonitor:
    net = _mlp()
    mon = _monitor(store, net, **options)
    for epoch in epochs:
        _step(net, epoch)
        mon.observe(epoch)
    return mon


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (inode, modification time in ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_one_store_per_epoch_and_a_marker(tmp_path):
    store = tmp_path / "run.zarr"
    mon = _run(store, [0, 3, 4])
    assert is_history_store(store)
    assert sorted(p.name for p in store.iterdir()) == [
        HISTORY_MARKER, "epoch_000000.zarr", "epoch_000003.zarr", "epoch_000004.zarr"]
    marker = json.loads((store / HISTORY_MARKER).read_text())
    assert marker["format"] == HISTORY_FORMAT and marker["version"] == 1
    history = mon.dataset()
    assert marker["monitor"] == json.loads(history.attrs["monitor"])
    assert marker["monitor"]["layers"] == ["1", "3"] and marker["monitor"]["network"] == "mlp"
    # each epoch's store is an ordinary dataset holding that epoch only
    for epoch in (0, 3, 4):
        part = ba.open_dataset(store / f"epoch_{epoch:06d}.zarr")
        assert part.sizes["unit"] == UNITS and set(part["epoch"].values.tolist()) == {epoch}
        own = history.isel(unit=history["epoch"].values == epoch)
        np.testing.assert_array_equal(part["count"].values, own["count"].values)
    # the store reads back as the monitor's history, attributes included
    saved = ba.open_dataset(store)
    assert saved["epoch"].values.tolist() == [e for e in (0, 3, 4) for _ in range(UNITS)]
    for var in ("count", "n", "window_count", "hist_count"):
        np.testing.assert_array_equal(saved[var].values, history[var].values, err_msg=var)
    assert saved["unit"].values.tolist() == history["unit"].values.tolist()
    assert sorted(saved["hist_group"].values.tolist()) == sorted(
        history["hist_group"].values.tolist())
    assert "epoch" not in saved.attrs
    for key in ("monitor", "monitor_source", "source", "window_size"):
        assert saved.attrs[key] == history.attrs[key], key


def test_saving_an_epoch_writes_only_its_own_store(tmp_path, monkeypatch):
    import bayesactiv.monitor.monitor as monitor_module

    store = tmp_path / "run.zarr"
    net = _mlp()
    mon = _monitor(store, net)
    saves = []
    real_save = monitor_module.save

    def spy(ds, path):
        saves.append((Path(path).name, ds.sizes["unit"], sorted(set(ds["epoch"].values.tolist()))))
        return real_save(ds, path)

    monkeypatch.setattr(monitor_module, "save", spy)
    for epoch in range(3):
        _step(net, epoch)
        mon.observe(epoch)
    before = _files(store)
    _step(net, 3)
    mon.observe(3)
    after = _files(store)
    # every file of the earlier epochs and the marker is the same file, untouched
    assert {k: v for k, v in after.items() if not k.startswith("epoch_000003.zarr")} == before
    assert any(k.startswith("epoch_000003.zarr/") for k in after)
    # each save wrote one epoch's units to that epoch's store, never the history so far
    assert saves == [(f"epoch_{e:06d}.zarr", UNITS, [e]) for e in range(4)]


def test_failed_save_is_made_up_at_the_next_epoch(tmp_path, monkeypatch):
    import bayesactiv.monitor.monitor as monitor_module

    store = tmp_path / "run.zarr"
    net = _mlp()
    mon = _monitor(store, net)
    mon.observe(0)
    real_save = monitor_module.save

    def full_disk(ds, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(monitor_module, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        mon.observe(1)
    assert mon.epochs == [0, 1]
    assert sorted(set(ba.open_dataset(store)["epoch"].values.tolist())) == [0]
    monkeypatch.setattr(monitor_module, "save", real_save)
    mon.observe(2)
    assert sorted(set(ba.open_dataset(store)["epoch"].values.tolist())) == [0, 1, 2]


_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys, torch
    from torch import nn
    import bayesactiv.data.files as files
    from bayesactiv.monitor import FiringMonitor

    store, kill_at, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    real = getattr(files, kill_at)

    def killed(*args, **kwargs):
        if "epoch_%06d" % (epochs - 1) in str(args[0]):
            os.kill(os.getpid(), signal.SIGKILL)  # mid-save: the epoch's data written, not moved
        return real(*args, **kwargs)

    setattr(files, kill_at, killed)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    mon = FiringMonitor(net, ["1", "3"], probe=torch.randn(32, 6), network="mlp", store=store,
                        window_size=4)
    for epoch in range(epochs):
        mon.observe(epoch)
""")


@pytest.mark.parametrize("kill_at", ["_write_checksums", "_move_into_place"])
def test_a_save_killed_mid_epoch_leaves_the_earlier_epochs(tmp_path, kill_at):
    store = tmp_path / "run.zarr"
    script = tmp_path / "run.py"
    script.write_text(_KILLED_RUN)
    done = subprocess.run([sys.executable, str(script), str(store), kill_at, "3"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    # the third epoch's save left its temporary folder only; the history is epochs 0 and 1
    temps = [p.name for p in store.iterdir() if p.name.startswith(".")]
    assert len(temps) == 1 and temps[0].startswith(".epoch_000002.zarr.")
    assert not (store / "epoch_000002.zarr").exists()
    saved = ba.open_dataset(store)
    assert sorted(set(saved["epoch"].values.tolist())) == [0, 1]
    assert saved.sizes["unit"] == 2 * UNITS and (saved["n"].values == 32).all()
    # resuming removes the temporary folder (its process is gone) and goes on
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    mon = FiringMonitor(net, ["1", "3"], probe=torch.randn(32, 6), network="mlp", store=store,
                        window_size=4)
    assert mon.epochs == [0, 1] and mon.next_epoch == 2
    assert not [p for p in store.iterdir() if p.name.startswith(".")]
    mon.observe(5)
    assert sorted(set(ba.open_dataset(store)["epoch"].values.tolist())) == [0, 1, 5]


def test_a_damaged_epoch_store_is_refused_naming_it(tmp_path):
    store = tmp_path / "run.zarr"
    _run(store, [0, 1, 2])
    damaged = store / "epoch_000001.zarr"
    counts = zarr.open_array(str(damaged / "count"), mode="r+")
    counts[0] = counts[0] + 1  # a changed value: the checksum no longer matches
    with pytest.raises(DatasetError, match=r"epoch_000001\.zarr.*'count' does not match"):
        ba.open_dataset(store)
    with pytest.raises(DatasetError, match=r"epoch_000001\.zarr"):
        _monitor(store)
    # a lost chunk file (which zarr reads as its fill value) likewise
    store = tmp_path / "again.zarr"
    _run(store, [0, 1, 2])
    chunks = [p for p in (store / "epoch_000002.zarr" / "window_count").rglob("*")
              if p.is_file() and p.name != "zarr.json"]
    assert chunks
    for chunk in chunks:
        chunk.unlink()
    with pytest.raises(DatasetError, match=r"epoch_000002\.zarr.*'window_count' does not match"):
        ba.open_dataset(store)


def test_an_epoch_store_of_another_run_is_refused(tmp_path):
    ours, theirs = tmp_path / "run.zarr", tmp_path / "other.zarr"
    _run(ours, [0, 1])
    net = _mlp()
    FiringMonitor(net, ["1", "3"], probe=_probe(), network="other", store=theirs).observe(2)
    os.rename(theirs / "epoch_000002.zarr", ours / "epoch_000002.zarr")
    with pytest.raises(DatasetError, match=r"epoch_000002\.zarr.*not written by the monitor"):
        ba.open_dataset(ours)


def test_open_dataset_of_a_history_store_passes_lazy_on(tmp_path):
    store = tmp_path / "run.zarr"
    mon = _run(store, [0, 1], keep_events=True)
    eager = ba.open_dataset(store)
    lazy = ba.open_dataset(store, lazy=True)
    assert type(eager["fired"].data).__name__ == "ndarray"
    assert type(lazy["fired"].data).__name__ == "Array"
    np.testing.assert_array_equal(lazy["fired"].values, eager["fired"].values)
    np.testing.assert_array_equal(eager["fired"].values, mon.dataset()["fired"].values)
    with pytest.raises(DatasetError, match="lazy: .* is a netCDF file"):
        ba.open_dataset(tmp_path / "run.nc", lazy=True)


def test_what_a_history_store_may_be_made_of(tmp_path):
    # an empty folder becomes a history store
    (tmp_path / "empty.zarr").mkdir()
    _run(tmp_path / "empty.zarr", [0])
    assert is_history_store(tmp_path / "empty.zarr")
    # so does a folder left by a creation killed before its marker was in place
    left = tmp_path / "left.zarr"
    left.mkdir()
    (left / f".{HISTORY_MARKER}.4999999.0123abcd.tmp").write_text("{")  # no such process
    _run(left, [0, 1])
    assert sorted(p.name for p in left.iterdir()) == [
        HISTORY_MARKER, "epoch_000000.zarr", "epoch_000001.zarr"]
    # a history store with no epoch yet reads as nothing, and resumes at epoch 0
    bare = tmp_path / "bare.zarr"
    bare.mkdir()
    (bare / HISTORY_MARKER).write_text((left / HISTORY_MARKER).read_text())
    with pytest.raises(DatasetError, match="no complete epoch yet"):
        ba.open_dataset(bare)
    assert _monitor(bare).next_epoch == 0
    # a marker of a newer format, or none that parses, is refused
    (bare / HISTORY_MARKER).write_text(json.dumps({**json.loads(
        (left / HISTORY_MARKER).read_text()), "version": 99}))
    with pytest.raises(ArgumentError, match="version 99, written by a newer bayesactiv"):
        _monitor(bare)
    (bare / HISTORY_MARKER).write_text("[]")
    with pytest.raises(DatasetError, match="not the marker of a bayesactiv history store"):
        ba.open_dataset(bare)


def test_nothing_else_is_taken_or_replaced(tmp_path):
    history = tmp_path / "run.zarr"
    mon = _run(history, [0, 1])
    # a history saved whole, by an earlier version: refused, left as it is
    old = ba.save(mon.dataset(), tmp_path / "old.zarr")
    before = _files(old)
    with pytest.raises(ArgumentError, match="saved whole, as earlier versions"):
        _monitor(old)
    assert _files(old) == before and ba.open_dataset(old).sizes["unit"] == 2 * UNITS
    # save() does not replace a history store
    files = _files(history)
    with pytest.raises(DatasetError, match="is a monitor's history store"):
        ba.save(mon.dataset(), history)
    assert _files(history) == files
    # a folder of other things, or a folder with other things beside a half-made marker
    (tmp_path / "notes.zarr").mkdir()
    (tmp_path / "notes.zarr" / "notes.txt").write_text("precious")
    with pytest.raises(ArgumentError, match="not an activation dataset written by bayesactiv"):
        _monitor(tmp_path / "notes.zarr")
    assert (tmp_path / "notes.zarr" / "notes.txt").read_text() == "precious"
    (tmp_path / "notes.zarr" / f".{HISTORY_MARKER}.4999999.0123abcd.tmp").write_text("{")
    with pytest.raises(ArgumentError, match="not an activation dataset written by bayesactiv"):
        _monitor(tmp_path / "notes.zarr")
    assert sorted(p.name for p in (tmp_path / "notes.zarr").iterdir()) == [
        f".{HISTORY_MARKER}.4999999.0123abcd.tmp", "notes.txt"]
    # another monitor's history store: refused at construction
    with pytest.raises(ArgumentError, match="holds the history of another monitor"):
        FiringMonitor(_mlp(), ["1"], probe=_probe(), network="mlp", store=history,
                      window_size=4)
    assert _files(history) == files


def test_training_store_is_a_history_store_too(tmp_path):
    store = tmp_path / "train.zarr"
    net = _mlp()
    mon = FiringMonitor(net, ["1", "3"], network="mlp", training_store=store)
    for epoch in range(2):
        with mon.training_batches(epoch):
            net(_probe(16))
    assert sorted(p.name for p in store.iterdir()) == [
        HISTORY_MARKER, "epoch_000000.zarr", "epoch_000001.zarr"]
    saved = ba.open_dataset(store)
    assert saved.attrs["monitor_source"] == "training_batches"
    np.testing.assert_array_equal(saved["count"].values, mon.training_dataset()["count"].values)
    again = FiringMonitor(net, ["1", "3"], network="mlp", training_store=store)
    assert again.training_epochs == [0, 1] and again.next_epoch == 2


def test_cli_report_of_a_history_store(tmp_path):
    import pandas as pd

    store = tmp_path / "run.zarr"
    _run(store, [0, 1])
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "bayesactiv.cli", "report", str(store), "-o",
                           str(out), "-q"], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert (out / "report.html").exists()
    layers = pd.read_csv(out / "tables" / "layers.csv")
    assert sorted(zip(layers["layer"].astype(str), layers["epoch"], strict=True)) == [
        ("1", 0), ("1", 1), ("3", 0), ("3", 1)]
