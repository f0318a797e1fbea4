"""The activation-dataset contract: validation, files, combination."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr

import bayesactiv as ba
from bayesactiv.data import DatasetError


@pytest.fixture
def full_ds() -> xr.Dataset:
    rng = np.random.default_rng(0)
    fired = rng.random((40, 6)) < np.linspace(0.0, 1.0, 6)
    window = fired[:40].reshape(4, 10, 6).sum(axis=1)
    return ba.make_dataset(
        fired.sum(axis=0),
        40,
        network="net",
        layer=["a", "a", "a", "b", "b", "b"],
        fired=fired,
        label=rng.integers(0, 3, 40),
        window_count=window,
        window_size=10,
        threshold_rule="activation > 0",
        threshold_params={"rule": "fixed", "value": 0.0},
    )


def test_make_dataset_builds_contract(full_ds):
    assert full_ds["unit"].values.tolist()[:4] == ["net/a/0", "net/a/1", "net/a/2", "net/b/0"]
    assert full_ds["index"].values.tolist() == [0, 1, 2, 0, 1, 2]
    assert full_ds["count"].dtype == np.int64
    assert int(full_ds["count"][0]) == 0 and int(full_ds["count"][-1]) == 40


def _broken(ds: xr.Dataset, how: str) -> xr.Dataset:
    ds = ds.copy(deep=True)
    if how == "missing count":
        return ds.drop_vars("count")
    if how == "missing n":
        return ds.drop_vars("n")
    if how == "negative":
        ds["count"].values[0] = -1
        return ds
    if how == "count > n":
        ds["n"].values[2] = 1
        return ds
    if how == "nan":
        ds["count"] = ds["count"].astype(float)
        ds["count"].values[1] = np.nan
        return ds
    if how == "wrong dims":
        ds["n"] = (("window", "unit"), np.tile(ds["n"].values, (4, 1)))
        return ds
    if how == "mismatched unit":
        return ds.assign_coords(unit=("unit", ["x/y/0", *ds["unit"].values[1:].tolist()]))
    if how == "missing layer":
        return ds.drop_vars("layer")
    if how == "window too big":
        ds["window_count"].values[0, 0] = 11
        return ds
    if how == "fired sum":
        ds["fired"].values[0, 0] = not ds["fired"].values[0, 0]
        return ds
    if how == "non-integer":
        ds["count"] = ds["count"].astype(float) + 0.5
        return ds
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "field"),
    [
        ("missing count", "count"),
        ("missing n", "n"),
        ("negative", "count"),
        ("count > n", "count"),
        ("nan", "count"),
        ("wrong dims", "n"),
        ("mismatched unit", "unit"),
        ("missing layer", "layer"),
        ("window too big", "window_count"),
        ("fired sum", "fired"),
        ("non-integer", "count"),
    ],
)
def test_validate_names_the_field(full_ds, how, field):
    with pytest.raises(DatasetError, match=rf"^{field}:"):
        ba.validate(_broken(full_ds, how))


def test_validate_rejects_non_dataset():
    with pytest.raises(DatasetError, match="xarray.Dataset"):
        ba.validate({"count": [1]})


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip_is_lossless(full_ds, tmp_path, suffix):
    path = ba.save(full_ds, tmp_path / f"acts{suffix}")
    back = ba.open_dataset(path)
    assert back["fired"].dtype == bool
    xr.testing.assert_identical(back.drop_attrs(), full_ds.drop_attrs())
    assert back.attrs == full_ds.attrs
    assert sorted(os.listdir(tmp_path)) == [f"acts{suffix}"]  # no temporary left


def test_fired_is_bit_packed_on_disk(tmp_path):
    fired = np.random.default_rng(1).random((8000, 50)) < 0.3
    ds = ba.make_dataset(fired.sum(0), 8000, network="n", layer="l", fired=fired)
    path = ba.save(ds, tmp_path / "acts.nc")
    with xr.open_dataset(path, engine="h5netcdf") as raw:
        assert "fired" not in raw and raw["fired_packed"].dtype == np.uint8
        assert raw["fired_packed"].shape == (1000, 50)


def test_save_overwrites_and_cleans_up_on_error(full_ds, tmp_path, monkeypatch):
    path = ba.save(full_ds, tmp_path / "acts.nc")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        ba.save(full_ds, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["acts.nc"]


def test_killed_writer_leaves_no_target(tmp_path):
    """A process killed while writing never leaves a file under the target name."""
    target = tmp_path / "big.nc"
    script = textwrap.dedent(
        f"""
        import os, signal, numpy as np, xarray as xr, bayesactiv as ba
        ds = ba.make_dataset(np.zeros(5, int), 10, network="n", layer="l")
        real = xr.Dataset.to_netcdf
        def slow(self, path, *a, **k):
            real(self, path, *a, **k)
            os.kill(os.getpid(), signal.SIGKILL)  # killed after the temp file is complete
        xr.Dataset.to_netcdf = slow
        ba.save(ds, {str(target)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()


def test_bad_paths(full_ds, tmp_path):
    with pytest.raises(DatasetError, match="suffix"):
        ba.save(full_ds, tmp_path / "acts.csv")
    with pytest.raises(DatasetError, match="does not exist"):
        ba.save(full_ds, tmp_path / "nope" / "acts.nc")
    with pytest.raises(FileNotFoundError):
        ba.open_dataset(tmp_path / "missing.nc")
    (tmp_path / "junk.nc").write_text("not a netcdf file")
    with pytest.raises(DatasetError, match="not a readable"):
        ba.open_dataset(tmp_path / "junk.nc")


def test_combine_and_epochs(full_ds):
    other = ba.make_dataset([1, 2], 40, network="other", layer="a")
    with pytest.warns(UserWarning, match=r"dropped window_count .*only 1 of the 2.*fired"):
        both = ba.combine([full_ds, other])
    assert both.sizes["unit"] == 8
    assert "fired" not in both and "window_count" not in both
    e1 = ba.make_dataset([1, 2], 10, network="n", layer="l", epoch=1)
    e2 = ba.make_dataset([3, 4], 10, network="n", layer="l", epoch=5)
    epochs = ba.combine([e1, e2])
    assert epochs["unit"].values.tolist() == ["n/l/0@1", "n/l/1@1", "n/l/0@5", "n/l/1@5"]
    with pytest.raises(DatasetError, match="unique"):
        ba.combine([e1, e1])
    with pytest.raises(DatasetError, match="epoch"):
        ba.combine([e1, other])


def test_require_says_how_to_record(full_ds):
    ds = full_ds.drop_vars("window_count")
    with pytest.raises(DatasetError, match=r"window_count: .*Fano.*window_size=50"):
        ba.dataset.require(ds, "window_count", "the Fano factor", "record(..., window_size=50)")


def _unit_ids_reference(network, layer, index, epoch=None):
    """unit_ids written plainly: every value through numpy's str array, then f-strings."""
    network = np.asarray(network).astype(str).tolist()
    layer = np.asarray(layer).astype(str).tolist()
    index = np.asarray(index).astype(np.int64).tolist()
    if epoch is None:
        ids = [f"{n}/{l}/{i}" for n, l, i in zip(network, layer, index, strict=True)]
    else:
        epoch = np.asarray(epoch).astype(np.int64).tolist()
        ids = [f"{n}/{l}/{i}@{e}" for n, l, i, e in zip(network, layer, index, epoch, strict=True)]
    out = np.empty(len(ids), dtype=object)
    out[:] = ids
    return out


def _outcome(fn, *args):
    try:
        ids = fn(*args)
    except Exception as err:  # noqa: BLE001 - the error is what is compared
        return type(err), str(err)
    assert ids.dtype == object and ids.flags.writeable
    assert all(type(i) is str for i in ids.tolist())
    return ids.tolist()


def test_unit_ids_equal_the_plain_construction():
    """Whole layers numbered from 0 take a shortcut (the ids of a layer built once); every
    input, shortcut or not, gives the ids (or the error) of the plain construction."""
    from bayesactiv.data.contract import unit_ids

    rng = np.random.default_rng(0)
    values = ["a", "b", "a\x00", "\x00", "x\x00y", "", 1, 2.5, np.str_("a"), b"a", None, "é"]
    cases = [("mmm", "lll", [0, 1, 2]), (["a"], ["l"], [[0]]), ([], [], []),
             (np.array(["a", "a"]), np.array(["l", "l"]), [0, 1])]
    unhashable = np.empty(2, dtype=object)
    unhashable[:] = [[1], [2]]
    cases.append((unhashable, ["l", "l"], [0, 1]))
    for _ in range(400):
        k = int(rng.integers(1, 8))
        pool = values[:3] if rng.random() < 0.5 else values
        net = [pool[j] for j in rng.integers(0, len(pool), k)]
        if rng.random() < 0.5:
            net = [net[0]] * k
        lay = [["l", "m"][j] for j in rng.integers(0, 2, k)]
        index: list[int] = []
        while len(index) < k:
            index += list(range(int(rng.integers(1, 5))))
        index = index[:k]
        if rng.random() < 0.2:
            index[int(rng.integers(0, k))] = int(rng.integers(-2, 6))
        net_obj = np.empty(k, dtype=object)
        net_obj[:] = net
        for n in (net, net_obj):
            cases += [(n, lay, index), (n, np.array(lay, dtype=object), np.array(index)),
                      (n, lay, np.array(index, dtype=float) + 0.5), (n, lay[:-1], index),
                      (n, lay, index[:-1])]
            cases.append((n, lay, index, rng.integers(0, 3, k)))
    for args in cases:
        assert _outcome(unit_ids, *args) == _outcome(_unit_ids_reference, *args), args


def test_layer_unit_ids_are_kept_read_only():
    from bayesactiv.data import contract

    ids = contract.layer_unit_ids("net", "fc", 3)
    assert ids.tolist() == ["net/fc/0", "net/fc/1", "net/fc/2"]
    assert contract.layer_unit_ids("net", "fc", 3) is ids  # built once
    with pytest.raises(ValueError, match="read-only"):
        ids[0] = "other"
    built = contract.unit_ids(["net"] * 3, ["fc"] * 3, [0, 1, 2])
    built[0] = "mine"  # the ids handed out are the caller's own
    assert ids[0] == "net/fc/0"
    big = contract.layer_unit_ids("net", "huge", contract._RUN_IDS_BUDGET)
    assert big.shape == (contract._RUN_IDS_BUDGET,)
    assert ("net", "huge", contract._RUN_IDS_BUDGET) not in contract._RUN_IDS  # too large to keep
    assert contract._RUN_IDS_KEPT[0] <= contract._RUN_IDS_BUDGET
