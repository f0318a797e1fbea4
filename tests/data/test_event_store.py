"""Events out of core: record(..., keep_events=True, store=...) streams the events to a zarr
store chunk by chunk, atomically, and returns the dataset opened lazily; open_dataset reads a
large store lazily, each chunk checked against its checksum as it is read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import bayesactiv as ba
from bayesactiv.data import files
from bayesactiv.data.contract import DatasetError
from bayesactiv.data.lazy import is_lazy


def _mlp(units: int = 40) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, units), nn.ReLU(), nn.Linear(units, 24), nn.ReLU())


def _inputs(n: int) -> torch.Tensor:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 64 events x units, so that small recordings span many chunks."""
    monkeypatch.setattr(files, "CHUNK_BITS", 64 * 64)


def test_streamed_recording_equals_the_in_memory_one(tmp_path, small_chunks):
    net, x = _mlp(), _inputs(700)
    kw = {"keep_events": True, "window_size": 10, "labels": np.arange(700) % 3,
          "progress": False, "batch_size": 64}
    ref = ba.record(net, x, ["1", "3"], **kw)
    ds = ba.record(net, x, ["1", "3"], store=tmp_path / "ev.zarr", **kw)
    assert is_lazy(ds)
    assert len(ds["fired"].chunks[0]) > 5  # many chunks (64 rows of 64 units: 512 events)
    np.testing.assert_array_equal(ds["fired"].values, ref["fired"].values)
    for name in ref.variables:
        if name != "fired":
            np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
    assert ds.attrs["spatial"] == ref.attrs["spatial"]
    assert sorted(os.listdir(tmp_path)) == ["ev.zarr"]  # no temporary folder left


def test_per_position_events_stream_with_their_inputs(tmp_path, small_chunks):
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
    x = torch.randn(90, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    ref = ba.record(cnn, x, ["1"], keep_events=True, progress=False, batch_size=16)
    ds = ba.record(cnn, x, ["1"], keep_events=True, progress=False, batch_size=16,
                   store=tmp_path / "cnn.zarr")
    assert is_lazy(ds) and ds.attrs["spatial"] == "per_position"
    np.testing.assert_array_equal(ds["fired"].values, ref["fired"].values)
    np.testing.assert_array_equal(ds["input"].values, ref["input"].values)
    np.testing.assert_array_equal(ds["cluster_count_sq"].values, ref["cluster_count_sq"].values)


def test_memory_stays_flat_in_the_number_of_inputs(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_BITS", 2**16)  # chunks of 128 events of 512 units
    net = _mlp(units=512)

    def peak(n: int, store: Path | None) -> int:
        x = _inputs(n)
        tracemalloc.start()
        try:
            ba.record(net, x, ["1"], keep_events=True, progress=False, batch_size=250,
                      summaries=False, store=store)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    streamed = [peak(n, tmp_path / f"s{n}.zarr") for n in (4000, 16000)]
    in_memory = [peak(n, None) for n in (4000, 16000)]
    # in memory the events (512 bytes an input) grow with the inputs; streamed, one chunk of
    # them is held, and only the per-event coordinates (sample, input: 8 bytes each) grow
    grown_in_memory = (in_memory[1] - in_memory[0]) / 12000
    grown_streamed = (streamed[1] - streamed[0]) / 12000
    assert grown_in_memory > 512
    assert grown_streamed < grown_in_memory / 5
    assert streamed[1] < in_memory[1] / 3


def test_a_failure_while_recording_leaves_nothing_and_keeps_the_old_store(tmp_path, small_chunks):
    net, x = _mlp(), _inputs(600)
    target = tmp_path / "ev.zarr"
    old = ba.record(net, x[:100], ["1"], keep_events=True, progress=False, store=target)
    old_fired = old["fired"].values.copy()
    calls = {"n": 0}

    def fail_late(module, args, output):
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("boom")

    handle = net[1].register_forward_hook(fail_late)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            ba.record(net, x, ["1"], keep_events=True, progress=False, batch_size=50, store=target)
    finally:
        handle.remove()
    assert sorted(os.listdir(tmp_path)) == ["ev.zarr"]
    np.testing.assert_array_equal(ba.open_dataset(target)["fired"].values, old_fired)


def test_store_is_checked_before_anything_is_recorded(tmp_path):
    net, x = _mlp(), _inputs(50)
    calls = {"n": 0}
    net[1].register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    foreign = tmp_path / "mine.zarr"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a dataset")
    with pytest.raises(DatasetError, match="not an activation dataset written by bayesactiv"):
        ba.record(net, x, ["1"], keep_events=True, progress=False, store=foreign)
    with pytest.raises(ValueError, match="store: expected a '.zarr' path"):
        ba.record(net, x, ["1"], keep_events=True, progress=False, store=tmp_path / "ev.nc")
    with pytest.raises(TypeError, match="store: expected a path"):
        ba.record(net, x, ["1"], keep_events=True, progress=False, store=3)
    assert calls["n"] == 0
    assert (foreign / "notes.txt").read_text() == "not a dataset"


def test_store_without_events_saves_the_counts(tmp_path):
    net, x = _mlp(), _inputs(80)
    ds = ba.record(net, x, ["1"], progress=False, store=tmp_path / "counts.zarr")
    ref = ba.record(net, x, ["1"], progress=False)
    np.testing.assert_array_equal(ds["count"].values, ref["count"].values)
    assert "fired" not in ds


def test_a_damaged_chunk_is_refused_when_it_is_read(tmp_path, small_chunks):
    net, x = _mlp(), _inputs(700)
    target = tmp_path / "ev.zarr"
    ba.record(net, x, ["1"], keep_events=True, progress=False, store=target)
    chunk = target / "fired_packed" / "c" / "3" / "0"
    assert chunk.exists()
    chunk.unlink()  # zarr reads a lost chunk as zeros
    lazy = ba.open_dataset(target, lazy=True)  # the other variables are checked at once
    first = lazy["fired"].chunks[0][0]
    assert lazy["fired"][:first].values.shape[0] == first  # chunk 0 is fine
    with pytest.raises(DatasetError, match="chunk 3 of variable 'fired_packed' does not match"):
        lazy["fired"].sum().compute()
    with pytest.raises(DatasetError, match="chunks 3 of variable 'fired_packed' do not match"):
        ba.open_dataset(target, lazy=False)


def test_open_dataset_is_lazy_for_a_large_store_and_saves_back(tmp_path, monkeypatch, small_chunks):
    fired = np.random.default_rng(0).random((1000, 30)) < 0.3
    ds = ba.make_dataset(fired.sum(0), 1000, network="n", layer="l", fired=fired)
    path = ba.save(ds, tmp_path / "ev.zarr")
    assert not is_lazy(ba.open_dataset(path))
    monkeypatch.setattr(files, "LAZY_EVENTS_BYTES", 1000 * 30 - 1)
    lazy = ba.open_dataset(path)
    assert is_lazy(lazy)
    np.testing.assert_array_equal(lazy["fired"].values, fired)
    for target in ("copy.zarr", "copy.nc"):  # a lazy dataset saves chunk by chunk
        back = ba.open_dataset(ba.save(lazy, tmp_path / target), lazy=False)
        np.testing.assert_array_equal(back["fired"].values, fired)
    with pytest.raises(DatasetError, match="only a '.zarr' store is read lazily"):
        ba.open_dataset(tmp_path / "copy.nc", lazy=True)
    with pytest.raises(TypeError, match="lazy: expected"):
        ba.open_dataset(path, lazy="yes")


KILLED = textwrap.dedent('''
    import sys, time, torch, bayesactiv as ba
    from pathlib import Path
    from torch import nn
    from bayesactiv.data import files
    files.CHUNK_BITS = 64 * 64
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 40), nn.ReLU())
    calls = {"n": 0}
    def hold(module, args, output):
        calls["n"] += 1
        if calls["n"] == 8:  # several chunks are on disk by now
            Path(sys.argv[2]).write_text("ready")
            sys.stdin.read()  # wait to be killed
    net[1].register_forward_hook(hold)
    ba.record(net, torch.randn(2000, 6), ["1"], keep_events=True, progress=False, batch_size=100,
              store=sys.argv[1])
''')


def test_a_killed_recording_leaves_no_target_and_its_temporary_store_is_cleaned(tmp_path):
    script = tmp_path / "rec.py"
    script.write_text(KILLED)
    target, ready = tmp_path / "ev.zarr", tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, str(script), str(target), str(ready)],
                            stdin=subprocess.PIPE)
    try:
        for _ in range(1200):
            if ready.exists() or proc.poll() is not None:
                break
            try:
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        assert ready.exists(), "the recording did not reach its eighth batch"
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(".ev.zarr.")]
        assert len(temps) == 1 and (temps[0] / "ev.zarr" / "fired_packed").exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not target.exists()
    net, x = _mlp(), _inputs(50)
    ba.record(net, x, ["1"], keep_events=True, progress=False, store=target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev.zarr", "ready", "rec.py"]


def test_lazy_parts_merge_lazily(tmp_path, small_chunks):
    net, x = _mlp(), _inputs(300)
    kw = {"keep_events": True, "progress": False, "hist_range": (0.0, 4.0)}
    parts = [ba.record(net, x[:120], ["1"], store=tmp_path / "a.zarr", **kw),
             ba.record(net, x[120:], ["1"], store=tmp_path / "b.zarr", **kw)]
    merged = ba.merge(parts)
    assert is_lazy(merged)
    whole = ba.record(net, x, ["1"], **kw)
    np.testing.assert_array_equal(merged["fired"].values, whole["fired"].values)
    np.testing.assert_array_equal(merged["count"].values, whole["count"].values)
