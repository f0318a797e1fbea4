"""Bad input to make_dataset / validate, and combine of datasets that do not line up."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import bayesactiv as ba
from bayesactiv.data import DatasetError
from bayesactiv.data.checks import ArgumentError

# ---------------------------------------------------------------- windows must add up


def test_windows_covering_every_event_must_add_up_to_count():
    with pytest.raises(DatasetError, match=r"^window_count: .*cover 10 of its 10 events and add up to 0.*count is 5"):
        ba.make_dataset([5], 10, network="n", layer="l", window_count=[[0], [0]], window_size=5)
    ds = ba.make_dataset([5], 10, network="n", layer="l", window_count=[[2], [3]], window_size=5)
    assert int(ds["window_count"].sum()) == 5


def test_windows_and_the_events_outside_them_must_hold_count():
    # 12 events, 2 windows of 5 cover 10: the 2 events outside hold at most 2 firings
    ok = ba.make_dataset([5], 12, network="n", layer="l", window_count=[[1], [2]], window_size=5)
    assert int(ok["count"][0]) == 5
    with pytest.raises(DatasetError, match=r"^window_count: .*more than the 2 events outside"):
        ba.make_dataset([5], 12, network="n", layer="l", window_count=[[1], [1]], window_size=5)


# ---------------------------------------------------------------- counts beyond int64


@pytest.mark.parametrize(
    "count",
    [np.array([2**63], dtype=np.uint64), np.array([1e19]), np.array([-1e19])],
    ids=["uint64", "float 1e19", "float -1e19"],
)
def test_make_dataset_refuses_counts_beyond_int64(count):
    with pytest.raises(DatasetError, match=r"^count: values exceed the int64 range"):
        ba.make_dataset(count, 2**62, network="n", layer="l")
    with pytest.raises(DatasetError, match=r"^n: values exceed the int64 range"):
        ba.make_dataset([1], count, network="n", layer="l")


@pytest.mark.parametrize("dtype", [np.uint64, np.float64])
def test_validate_refuses_counts_beyond_int64(dtype):
    ds = ba.make_dataset([1, 2], 10, network="n", layer="l")
    ds["n"] = ("unit", np.array([2**63 + 2048, 10], dtype=dtype))
    with pytest.raises(DatasetError, match=r"^n: values exceed the int64 range"):
        ba.validate(ds)
    ds["n"] = ("unit", np.array([10, 10], dtype=dtype))
    ds["count"] = ("unit", np.array([2**63 + 2048, 1], dtype=dtype))
    with pytest.raises(DatasetError, match=r"^count: values exceed the int64 range"):
        ba.validate(ds)


# ---------------------------------------------------------------- lengths in make_dataset


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": [10, 10]}, r"^n: expected 3 values \(one per unit of count\), got 2"),
        ({"network": ["a", "b"]}, r"^network: expected 3 values .*got 2"),
        ({"layer": ["a", "b", "c", "d"]}, r"^layer: expected 3 values .*got 4"),
        ({"index": [0, 1]}, r"^index: expected 3 values .*got 2"),
        ({"epoch": [1, 2]}, r"^epoch: expected 3 values .*got 2"),
        ({"window_count": np.zeros((2, 2), int), "window_size": 5},
         r"^window_count: expected 3 units .*got 2"),
        ({"fired": np.zeros((10, 4), bool)}, r"^fired: expected 3 units .*got 4"),
        ({"fired": np.zeros((10, 3), bool), "label": np.zeros(9)},
         r"^label: expected 10 values \(one per sample of fired\), got 9"),
    ],
    ids=["n", "network", "layer", "index", "epoch", "window_count", "fired", "label"],
)
def test_make_dataset_names_the_argument_of_the_wrong_length(kwargs, message):
    args = {"network": "net", "layer": "fc", "n": 10} | kwargs
    count = [0, 0, 0]
    with pytest.raises(DatasetError, match=message):
        ba.make_dataset(count, args.pop("n"), **args)


def test_validate_names_missing_histogram_edges():
    ds = ba.make_dataset([1], 5, network="n", layer="l")
    ds["hist_count"] = (("hist_group", "hist_bin"), [[3, 2]])
    with pytest.raises(DatasetError, match=r"^hist_edges: missing"):
        ba.validate(ds)


# ---------------------------------------------------------------- combine


def _windowed(network: str, n_windows: int, window_size: int = 5) -> xr.Dataset:
    windows = np.ones((n_windows, 2), dtype=int)
    return ba.make_dataset(windows.sum(0), n_windows * window_size, network=network, layer="l",
                           window_count=windows, window_size=window_size)


def test_combine_never_truncates_windows():
    long, short = _windowed("a", 6), _windowed("b", 2)
    with pytest.warns(UserWarning, match=r"window_count \(the datasets have different window layouts .*5 x 6, 5 x 2"):
        both = ba.combine([long, short])
    assert "window_count" not in both and "window_size" not in both.attrs
    with pytest.raises(DatasetError, match=r"^datasets: .*window_count"):
        ba.combine([long, short], mismatch="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "window_count" not in ba.combine([long, short], mismatch="drop")


def test_combine_keeps_windows_that_line_up():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        both = ba.combine([_windowed("a", 3), _windowed("b", 3)])
    assert both["window_count"].shape == (3, 4) and both.attrs["window_size"] == 5
    with pytest.warns(UserWarning, match=r"window layouts .*5 x 4, 2 x 10"):
        ba.combine([_windowed("a", 4), _windowed("b", 10, window_size=2)])


def _with_events(network: str, n_samples: int, labels=None) -> xr.Dataset:
    fired = np.zeros((n_samples, 2), dtype=bool)
    fired[0] = True
    return ba.make_dataset(fired.sum(0), n_samples, network=network, layer="l", fired=fired,
                           label=np.zeros(n_samples, int) if labels is None else labels)


def test_combine_says_when_fired_is_dropped():
    with pytest.warns(UserWarning, match=r"fired \(the datasets have different numbers of samples: 8, 6\)"):
        both = ba.combine([_with_events("a", 8), _with_events("b", 8 - 2)])
    assert "fired" not in both and "sample" not in both.dims
    with pytest.warns(UserWarning, match=r"fired \(the datasets' samples differ in label\)"):
        both = ba.combine([_with_events("a", 8), _with_events("b", 8, labels=np.arange(8))])
    assert "fired" not in both
    same = ba.combine([_with_events("a", 8), _with_events("b", 8)])
    assert same["fired"].shape == (8, 4)


def test_combine_checks_mismatch():
    with pytest.raises(ArgumentError, match=r"^mismatch: expected one of"):
        ba.combine([_windowed("a", 2)], mismatch="truncate")


def test_make_dataset_refuses_fired_values_other_than_0_and_1():
    with pytest.raises(DatasetError, match="fired: expected booleans or 0/1"):
        ba.make_dataset([1], 2, network="n", layer="l", fired=[[0.5], [1.0]])
