"""Files of activation datasets: nothing a user had is replaced, damage is refused, no temporary is left."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import h5netcdf
import numpy as np
import pytest
import xarray as xr
import zarr

import bayesactiv as ba
from bayesactiv.data import DatasetError
from bayesactiv.data import files as files_module


def _ds(count=(1, 2), n=10, **kwargs) -> xr.Dataset:
    return ba.make_dataset(list(count), n, network="net", layer="fc", **kwargs)


def _temps(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def _finished_process_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process any more
    return child.pid


# ---------------------------------------------------------------- what save may replace


def test_save_refuses_a_folder_at_a_netcdf_target(tmp_path):
    folder = tmp_path / "results.nc"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match=r"^path: .*results\.nc.* is a folder"):
        ba.save(_ds(), folder)
    assert (folder / "notes.txt").read_text() == "mine"
    assert _temps(tmp_path) == []


def test_save_refuses_a_folder_that_is_not_a_store_of_ours(tmp_path):
    folder = tmp_path / "photos.zarr"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(DatasetError, match=r"^path: .*photos\.zarr.* not an activation dataset"):
        ba.save(_ds(), folder)
    assert (folder / "cat.jpg").read_bytes() == b"\xff\xd8"
    foreign = xr.Dataset({"x": ("t", np.arange(3))})  # a zarr store, but written by someone else
    foreign.to_zarr(tmp_path / "other.zarr", consolidated=False)
    with pytest.raises(DatasetError, match=r"other\.zarr"):
        ba.save(_ds(), tmp_path / "other.zarr")
    assert "x" in xr.open_zarr(tmp_path / "other.zarr", consolidated=False)
    assert _temps(tmp_path) == []


def test_save_refuses_a_file_at_a_zarr_target(tmp_path):
    target = tmp_path / "acts.zarr"
    target.write_text("a file")
    with pytest.raises(DatasetError, match=r"acts\.zarr.* is a file"):
        ba.save(_ds(), target)
    assert target.read_text() == "a file"


def test_save_replaces_its_own_zarr_store(tmp_path):
    target = tmp_path / "acts.zarr"
    ba.save(_ds((1, 2)), target)
    ba.save(_ds((3, 4)), target)
    assert ba.open_dataset(target)["count"].values.tolist() == [3, 4]
    assert os.listdir(tmp_path) == ["acts.zarr"]


# ---------------------------------------------------------------- damaged files are refused


def test_open_refuses_a_zarr_store_with_lost_chunks(tmp_path):
    path = ba.save(_ds((3, 5)), tmp_path / "acts.zarr")
    shutil.rmtree(path / "count" / "c")  # the chunk files of count are gone
    assert xr.open_zarr(path, consolidated=False)["count"].values.tolist() == [0, 0]  # what zarr reads
    with pytest.raises(DatasetError, match=r"^path: .*acts\.zarr.* damaged.*'count'"):
        ba.open_dataset(path)


def test_damage_that_also_breaks_the_contract_is_named(tmp_path):
    path = ba.save(_ds((3, 5)), tmp_path / "acts.zarr")
    shutil.rmtree(path / "n" / "c")  # n reads as zeros: count > n
    with pytest.raises(DatasetError, match=r"^count: exceeds n.*acts\.zarr.* damaged.*'n'"):
        ba.open_dataset(path)


def test_open_refuses_a_netcdf_file_whose_values_changed(tmp_path):
    path = ba.save(_ds((3, 5)), tmp_path / "acts.nc")
    with h5netcdf.File(path, "a") as file:
        file.variables["count"][...] = [1, 1]  # still a valid dataset, but not what was saved
    with pytest.raises(DatasetError, match=r"^path: .*acts\.nc.* damaged.*'count' does not match"):
        ba.open_dataset(path)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_checksums_do_not_show_in_the_dataset(tmp_path, suffix):
    ds = _ds((1, 1), fired=np.eye(10, 2, dtype=bool), n=10)
    back = ba.open_dataset(ba.save(ds, tmp_path / f"acts{suffix}"))
    assert "bayesactiv_checksums" not in back.attrs
    resaved = ba.open_dataset(ba.save(back, tmp_path / f"again{suffix}"))
    xr.testing.assert_identical(resaved, back)


def test_a_store_without_checksums_opens_with_a_warning(tmp_path):
    path = ba.save(_ds((3, 5)), tmp_path / "old.zarr")
    del zarr.open_group(str(path), mode="r+").attrs["bayesactiv_checksums"]  # as an older version wrote it
    with pytest.warns(UserWarning, match=r"old\.zarr.* no checksums"):
        ds = ba.open_dataset(path)
    assert ds["count"].values.tolist() == [3, 5]


def test_a_netcdf_file_without_checksums_opens_silently(tmp_path):
    path = ba.save(_ds((3, 5)), tmp_path / "old.nc")
    with h5netcdf.File(path, "a") as file:
        del file.attrs["bayesactiv_checksums"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ba.open_dataset(path)["count"].values.tolist() == [3, 5]


def _without_n_samples(path: Path, value=None) -> None:
    with h5netcdf.File(path, "a") as file:
        if value is None:
            del file.variables["fired_packed"].attrs["n_samples"]
        else:
            file.variables["fired_packed"].attrs["n_samples"] = value


@pytest.mark.parametrize(("value", "message"), [(None, "'n_samples'.* missing"), (99, "n_samples=99")])
def test_a_packed_file_without_a_valid_n_samples_is_refused(tmp_path, value, message):
    fired = np.zeros((10, 2), dtype=bool)
    path = ba.save(_ds((0, 0), fired=fired), tmp_path / "acts.nc")
    _without_n_samples(path, value)
    with pytest.raises(DatasetError, match=rf"^fired_packed: .*{message}"):
        ba.open_dataset(path)


# ---------------------------------------------------------------- temporary folders


def test_the_temporary_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "big.nc"
    script = textwrap.dedent(
        f"""
        import os, signal, numpy as np, xarray as xr, bayesactiv as ba
        ds = ba.make_dataset(np.zeros(5, int), 10, network="n", layer="l")
        real = xr.Dataset.to_netcdf
        def slow(self, path, *a, **k):
            real(self, path, *a, **k)
            os.kill(os.getpid(), signal.SIGKILL)
        xr.Dataset.to_netcdf = slow
        ba.save(ds, {str(target)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert len(_temps(tmp_path)) == 1 and not target.exists()
    ba.save(_ds(), target)
    assert os.listdir(tmp_path) == ["big.nc"]


def _fake_temp(folder: Path, target: str, pid: int, marker: dict | None, content: bool = True) -> Path:
    tmp = folder / f".{target}.{pid}.0123abcd.tmp"
    tmp.mkdir()
    if content:
        (tmp / target).write_bytes(b"data")
    if marker is not None:
        import json

        (tmp / files_module._TEMP_MARKER).write_text(json.dumps(marker))
    return tmp


def test_only_stale_temporaries_of_this_package_are_removed(tmp_path):
    dead = _finished_process_pid()
    host = socket.gethostname()
    live = _fake_temp(tmp_path, "acts.nc", os.getpid(), {"pid": os.getpid(), "host": host, "target": "acts.nc"})
    unmarked = _fake_temp(tmp_path, "acts.nc", dead, None)
    elsewhere = _fake_temp(tmp_path, "acts.nc", dead + 100000, {"pid": dead + 100000, "host": host + "-other",
                                                                 "target": "acts.nc"})
    other_target = _fake_temp(tmp_path, "other.nc", dead, {"pid": dead, "host": host, "target": "other.nc"})
    stale = tmp_path / f".acts.nc.{dead}.89abcdef.tmp"
    stale.mkdir()
    (stale / "acts.nc").write_bytes(b"half")
    (stale / files_module._TEMP_MARKER).write_text(
        f'{{"pid": {dead}, "host": "{host}", "target": "acts.nc"}}')
    ba.save(_ds(), tmp_path / "acts.nc")
    assert not stale.exists()
    for kept in (live, unmarked, elsewhere, other_target):
        assert kept.exists(), kept.name


# ---------------------------------------------------------------- replacing a zarr store


def test_a_replaced_zarr_store_is_never_missing(tmp_path, monkeypatch):
    target = tmp_path / "acts.zarr"
    ba.save(_ds((1, 2)), target)
    seen = []
    real_rename = files_module._renameat2
    real_remove = files_module._remove_tree

    def rename(src, dst, flags):
        seen.append(("before rename", target.exists()))
        done = real_rename(src, dst, flags)
        seen.append(("after rename", target.exists()))
        return done

    def remove(tmp_dir):
        seen.append(("removing the old copy", ba.open_dataset(target)["count"].values.tolist()))
        real_remove(tmp_dir)

    monkeypatch.setattr(files_module, "_renameat2", rename)
    monkeypatch.setattr(files_module, "_remove_tree", remove)
    ba.save(_ds((3, 4)), target)
    assert seen == [("before rename", True), ("after rename", True), ("removing the old copy", [3, 4])]
    assert os.listdir(tmp_path) == ["acts.zarr"]


def test_zarr_replacement_without_renameat2(tmp_path, monkeypatch):
    target = tmp_path / "acts.zarr"
    ba.save(_ds((1, 2)), target)
    monkeypatch.setattr(files_module, "_renameat2", lambda src, dst, flags: False)
    ba.save(_ds((3, 4)), target)
    assert ba.open_dataset(target)["count"].values.tolist() == [3, 4]
    assert os.listdir(tmp_path) == ["acts.zarr"]

    real_rename = os.rename

    def failing_move_in(src, dst):  # the old store is moved aside, the new one fails to move in
        if Path(dst) == target and Path(src).name == "acts.zarr":
            raise OSError("device busy")
        real_rename(src, dst)

    monkeypatch.setattr(files_module.os, "rename", failing_move_in)
    with pytest.raises(OSError, match="device busy"):
        ba.save(_ds((5, 6)), target)
    monkeypatch.setattr(files_module.os, "rename", real_rename)
    assert ba.open_dataset(target)["count"].values.tolist() == [3, 4]
    assert os.listdir(tmp_path) == ["acts.zarr"]


def test_an_exception_mid_zarr_save_keeps_the_old_store(tmp_path, monkeypatch):
    target = tmp_path / "acts.zarr"
    ba.save(_ds((1, 2)), target)
    real = xr.Dataset.to_zarr

    def half_written(self, store, *args, **kwargs):
        real(self.drop_vars("n"), store, *args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr", half_written)
    with pytest.raises(RuntimeError, match="disk full"):
        ba.save(_ds((3, 4)), target)
    assert ba.open_dataset(target)["count"].values.tolist() == [1, 2]
    assert os.listdir(tmp_path) == ["acts.zarr"]
