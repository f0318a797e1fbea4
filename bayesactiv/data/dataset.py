"""The activation dataset: the one contract between the stages.

An activation dataset is an :class:`xarray.Dataset` holding, per hidden unit,
the sufficient statistics of its firing:

================  ========================  =======  ==============================================
name              dims                      dtype    meaning
================  ========================  =======  ==============================================
``count``         (unit,)                   int64    events in which the unit fired
``n``             (unit,)                   int64    events observed for the unit
``window_count``  (window, unit)            int64    fired count in each consecutive block of
                                                     ``attrs["window_size"]`` events (optional)
``fired``         (sample, unit)            bool     raw firing events (optional, bit-packed on
                                                     disk)
``threshold``     (unit,)                   float64  the threshold applied (when recorded)
``act_*``         (unit,)                   float64  streamed summary of raw activations:
                                                     ``act_min``, ``act_max``, ``act_mean``,
                                                     ``act_var``, ``act_skewness``,
                                                     ``act_kurtosis``, ``act_zero``
``hist_count``    (hist_group, hist_bin)    int64    per-layer histogram of raw activations
``hist_edges``    (hist_group, hist_edge)   float64  its bin edges
``topk_sample``   (unit, rank)              int64    events that made the unit fire most (-1: none)
``topk_value``    (unit, rank)              float64  their activation values
================  ========================  =======  ==============================================

An *event* is what ``n`` counts: one input for a dense layer, one input (or one
spatial position, with ``spatial="per_position"``) for a convolution, one token
for a sequence layer. The ``sample`` axis of ``fired`` enumerates events, so
``fired.sum("sample") == count`` and ``n == fired.sizes["sample"]``; its
optional ``input`` coordinate names the input each event came from.

Coordinates on ``unit``: ``unit`` (the id ``network/layer/index``, with
``@epoch`` appended when an ``epoch`` coordinate is present), ``network``,
``layer`` (str), ``index`` (int) and optionally ``epoch`` (int). On ``sample``:
``sample`` (int, the order in which events were seen), optionally ``label``,
``split``, ``input``. On ``hist_group``: ``hist_group`` (str, ``network/layer``).

Attributes: ``threshold_rule`` (the rule in words), ``threshold_params`` (JSON),
``window_size`` (when ``window_count`` is present), ``spatial``, ``source``,
``created``, ``bayesactiv_version``.

On disk (:func:`save`, :func:`open_dataset`) the root attribute
``bayesactiv_checksums`` also holds a SHA-256 digest of every variable, so that a
damaged file or store (a zarr chunk file lost, say, which zarr would read back as
zeros) is refused instead of read; it is removed again on reading.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data.checks import check_choice

__all__ = [
    "DatasetError",
    "check_save_path",
    "combine",
    "make_dataset",
    "open_dataset",
    "require",
    "save",
    "set_epoch",
    "unit_ids",
    "validate",
]

_UNIT_STATS = ("act_min", "act_max", "act_mean", "act_var", "act_skewness", "act_kurtosis", "act_zero")
_INT64_MAX = int(np.iinfo(np.int64).max)


class DatasetError(ValueError):
    """An activation dataset does not follow the contract; the message names the field."""


def _version() -> str:
    from bayesactiv import __version__
    return __version__


def unit_ids(
    network: Sequence[str], layer: Sequence[str], index: Sequence[int], epoch: Sequence[int] | None = None
) -> np.ndarray:
    """Build the stable unit ids ``network/layer/index`` (``@epoch`` appended when given).

    Examples
    --------
    >>> from bayesactiv.data.dataset import unit_ids
    >>> unit_ids(["mlp"], ["fc1"], [3]).tolist()
    ['mlp/fc1/3']
    """
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


def make_dataset(
    count: Any,
    n: Any,
    *,
    network: str | Sequence[str],
    layer: str | Sequence[str],
    index: Sequence[int] | None = None,
    epoch: int | Sequence[int] | None = None,
    window_count: Any = None,
    window_size: int | None = None,
    fired: Any = None,
    label: Any = None,
    threshold_rule: str = "activation > 0",
    threshold_params: dict | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Build a validated activation dataset from arrays.

    This is how activations recorded elsewhere (JAX, a saved numpy array, spike
    counts of real neurons) enter bayesactiv.

    Parameters
    ----------
    count, n : array_like of int, shape (unit,)
        Events in which each unit fired, and events observed. ``n`` may be a scalar.
    network, layer : str or sequence of str
        Name of the network and of the layer of each unit (a scalar applies to all).
    index : sequence of int, optional
        Index of each unit within its layer; defaults to ``0..k-1`` within each layer.
    epoch : int or sequence of int, optional
        Training epoch of each unit's network, when datasets of several epochs are combined.
    window_count : array_like of int, shape (window, unit), optional
        Fired count per consecutive block of ``window_size`` events.
    window_size : int, optional
        Events per window; required with ``window_count``.
    fired : array_like of bool, shape (sample, unit), optional
        Raw firing events.
    label : array_like, shape (sample,), optional
        A label per event (needs ``fired``).
    threshold_rule : str
        The rule that turned activations into firing events, in words.
    threshold_params : dict, optional
        Its parameters (stored as JSON).
    attrs : dict, optional
        Further attributes.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    DatasetError
        Naming the argument, when an array has the wrong length or shape (the
        message gives both lengths) or holds counts that are negative, not
        integers or beyond the int64 range.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 5, 20], 20, network="net", layer="fc1")
    >>> ds["unit"].values.tolist()
    ['net/fc1/0', 'net/fc1/1', 'net/fc1/2']
    >>> ba.make_dataset([0, 5, 20], 20, network="net", layer=["a", "b"])
    Traceback (most recent call last):
    ...
    bayesactiv.data.dataset.DatasetError: layer: expected 3 values (one per unit of count), got 2
    """
    count = np.asarray(count)
    if count.ndim != 1:
        raise DatasetError(f"count: expected a 1-d array over units, got shape {count.shape}")
    k = count.shape[0]
    count = _as_int(count, "count")
    n = _as_int(_per_unit(n, "n", k), "n")
    network_arr = _per_unit(np.asarray(network, dtype=object), "network", k).astype(str)
    layer_arr = _per_unit(np.asarray(layer, dtype=object), "layer", k).astype(str)
    if index is None:
        index_arr = np.zeros(k, dtype=np.int64)
        keys = np.char.add(np.char.add(network_arr, "/"), layer_arr)
        for key in dict.fromkeys(keys.tolist()):
            mask = keys == key
            index_arr[mask] = np.arange(mask.sum())
    else:
        index_arr = _per_unit(np.asarray(index, dtype=np.int64), "index", k, scalar=False)
    epoch_arr = None if epoch is None else _per_unit(np.asarray(epoch, dtype=np.int64), "epoch", k)
    coords: dict[str, Any] = {
        "unit": ("unit", unit_ids(network_arr, layer_arr, index_arr, epoch_arr)),
        "network": ("unit", network_arr.astype(object)),
        "layer": ("unit", layer_arr.astype(object)),
        "index": ("unit", index_arr),
    }
    if epoch_arr is not None:
        coords["epoch"] = ("unit", epoch_arr.copy())
    data_vars: dict[str, Any] = {"count": ("unit", count), "n": ("unit", n)}
    all_attrs = {
        "threshold_rule": threshold_rule,
        "threshold_params": json.dumps(threshold_params or {}),
        "spatial": "none",
        "source": "make_dataset",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "bayesactiv_version": _version(),
    }
    if window_count is not None:
        if window_size is None:
            raise DatasetError("window_size: required when window_count is given")
        windows = _per_window_or_sample(window_count, "window_count", "window", k)
        data_vars["window_count"] = (("window", "unit"), _as_int(windows, "window_count"))
        all_attrs["window_size"] = int(window_size)
    if fired is not None:
        fired = _per_window_or_sample(fired, "fired", "sample", k)
        if fired.dtype != bool and not np.isin(fired, (0, 1)).all():
            raise DatasetError("fired: expected booleans or 0/1 values, got other values")
        data_vars["fired"] = (("sample", "unit"), fired.astype(bool))
        coords["sample"] = ("sample", np.arange(fired.shape[0], dtype=np.int64))
        if label is not None:
            coords["label"] = ("sample", _per_sample_label(label, fired.shape[0]))
    elif label is not None:
        raise DatasetError("label: a per-event label needs fired events (pass fired=...)")
    all_attrs.update(attrs or {})
    return validate(xr.Dataset(data_vars, coords=coords, attrs=all_attrs))


def _per_unit(values: Any, name: str, k: int, *, scalar: bool = True) -> np.ndarray:
    """``values`` as one value per unit: a 1-d array of length ``k`` (a scalar is repeated)."""
    values = np.asarray(values)
    if values.ndim == 0 and scalar:
        return np.full(k, values.item(), dtype=values.dtype)
    if values.ndim != 1:
        raise DatasetError(f"{name}: expected a 1-d sequence of {k} values (one per unit of count), "
                           f"got shape {values.shape}")
    if values.shape[0] != k:
        raise DatasetError(f"{name}: expected {k} values (one per unit of count), got {values.shape[0]}")
    return values


def _per_window_or_sample(values: Any, name: str, rows: str, k: int) -> np.ndarray:
    """A 2-d ``(rows, unit)`` array whose ``unit`` axis matches ``count``."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise DatasetError(f"{name}: expected a 2-d array ({rows}, unit), got shape {values.shape}")
    if values.shape[1] != k:
        raise DatasetError(f"{name}: expected {k} units (as in count) along its second axis, "
                           f"got {values.shape[1]} (shape {values.shape})")
    return values


def _per_sample_label(label: Any, n_samples: int) -> np.ndarray:
    label = np.asarray(label)
    if label.ndim != 1 or label.shape[0] != n_samples:
        got = label.shape[0] if label.ndim == 1 else f"shape {label.shape}"
        raise DatasetError(f"label: expected {n_samples} values (one per sample of fired), got {got}")
    return label


def _exceeds_int64(values: np.ndarray) -> bool:
    """Whether an integer or float array holds values outside the int64 range."""
    if values.size == 0:
        return False
    if values.dtype.kind == "u":
        return bool(values.max() > _INT64_MAX)
    if values.dtype.kind == "f":
        return bool((np.abs(values) >= 2.0**63).any())
    return False


def _range_error(name: str) -> DatasetError:
    return DatasetError(f"{name}: values exceed the int64 range (counts must be below 2**63)")


def _as_int(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        if _exceeds_int64(values):
            raise _range_error(name)
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            raise DatasetError(f"{name}: contains NaN or infinite values")
        if not np.all(values == np.round(values)):
            raise DatasetError(f"{name}: counts must be integers, got non-integer values")
        if _exceeds_int64(values):
            raise _range_error(name)
        return values.astype(np.int64)
    raise DatasetError(f"{name}: expected integer counts, got dtype {values.dtype}")


def _check_dims(ds: xr.Dataset, name: str, dims: tuple[str, ...]) -> None:
    if ds[name].dims != dims:
        raise DatasetError(f"{name}: expected dims {dims}, got {ds[name].dims}")


def _check_counts(ds: xr.Dataset, name: str) -> np.ndarray:
    values = ds[name].values
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            raise DatasetError(f"{name}: contains NaN")
        if not np.isfinite(values).all():
            raise DatasetError(f"{name}: contains infinite values")
        if not np.all(values == np.round(values)):
            raise DatasetError(f"{name}: counts must be integers")
    elif values.dtype.kind not in "iub":
        raise DatasetError(f"{name}: expected integer counts, got dtype {values.dtype}")
    if _exceeds_int64(values):
        raise _range_error(name)
    if (values < 0).any():
        bad = np.flatnonzero(np.asarray(values < 0).ravel())[:5]
        raise DatasetError(f"{name}: negative counts (at flat positions {bad.tolist()})")
    return values


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check that ``ds`` follows the activation-dataset contract.

    Every public entry point of bayesactiv calls this first.

    Parameters
    ----------
    ds : xarray.Dataset

    Returns
    -------
    xarray.Dataset
        The same dataset, for chaining.

    Raises
    ------
    DatasetError
        Naming the field that is missing or malformed.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([1, 2], 10, network="net", layer="fc")
    >>> ba.validate(ds) is ds
    True
    """
    if not isinstance(ds, xr.Dataset):
        raise DatasetError(f"dataset: expected an xarray.Dataset, got {type(ds).__name__}")
    for name in ("count", "n"):
        if name not in ds.data_vars:
            raise DatasetError(f"{name}: missing variable (an activation dataset needs 'count' and 'n')")
        _check_dims(ds, name, ("unit",))
    if ds.sizes["unit"] == 0:
        raise DatasetError("unit: the dataset has no units")
    for name in ("unit", "network", "layer", "index"):
        if name not in ds.coords:
            raise DatasetError(f"{name}: missing coordinate on 'unit'")
        if ds[name].dims != ("unit",):
            raise DatasetError(f"{name}: coordinate must have dims ('unit',), got {ds[name].dims}")
    count = _check_counts(ds, "count")
    n = _check_counts(ds, "n")
    if (count > n).any():
        bad = ds["unit"].values[count > n][:5]
        raise DatasetError(f"count: exceeds n for units {bad.tolist()}")
    if ds["index"].dtype.kind not in "iu":
        raise DatasetError(f"index: expected integers, got dtype {ds['index'].dtype}")
    epoch = ds["epoch"].values if "epoch" in ds.coords else None
    expected = unit_ids(ds["network"].values, ds["layer"].values, ds["index"].values, epoch)
    actual = ds["unit"].values
    mismatch = expected != actual.astype(object)
    if mismatch.any():
        bad = int(np.flatnonzero(mismatch)[0])
        raise DatasetError(
            f"unit: id {actual[bad]!r} does not match its network/layer/index coordinates "
            f"(expected {expected[bad]!r})"
        )
    if not pd.Index(actual).is_unique:
        raise DatasetError("unit: ids are not unique")
    if "window_count" in ds.data_vars:
        _check_windows(ds, count, n)
    if "fired" in ds.data_vars:
        _check_dims(ds, "fired", ("sample", "unit"))
        if ds["fired"].dtype != bool:
            raise DatasetError(f"fired: expected bool, got dtype {ds['fired'].dtype}")
        if not np.array_equal(ds["fired"].values.sum(axis=0), count):
            raise DatasetError("fired: per-unit sums over 'sample' do not equal count")
        if (n != ds.sizes["sample"]).any():
            raise DatasetError("fired: n must equal the number of samples when fired is kept")
    for name in _UNIT_STATS:
        if name in ds.data_vars:
            _check_dims(ds, name, ("unit",))
    for name in ("topk_sample", "topk_value"):
        if name in ds.data_vars:
            _check_dims(ds, name, ("unit", "rank"))
    if "hist_count" in ds.data_vars:
        if "hist_edges" not in ds.data_vars:
            raise DatasetError("hist_edges: missing variable (the bin edges of hist_count)")
        _check_dims(ds, "hist_count", ("hist_group", "hist_bin"))
        _check_dims(ds, "hist_edges", ("hist_group", "hist_edge"))
    return ds


def _check_windows(ds: xr.Dataset, count: np.ndarray, n: np.ndarray) -> None:
    """``window_count`` must fit ``window_size``, ``n`` and ``count``.

    The windows cover the first ``window * window_size`` events of each unit; the
    fired events outside them are ``count - window_count.sum("window")``, which
    must lie between 0 and the number of events left outside, ``n - covered``
    (so windows that cover all ``n`` events add up to ``count`` exactly).
    """
    _check_dims(ds, "window_count", ("window", "unit"))
    if "window_size" not in ds.attrs:
        raise DatasetError("window_size: attribute required with window_count")
    w = int(ds.attrs["window_size"])
    if w < 1:
        raise DatasetError(f"window_size: must be >= 1, got {w}")
    wc = _check_counts(ds, "window_count")
    if (wc > w).any():
        raise DatasetError(f"window_count: a window count exceeds window_size={w}")
    covered = ds.sizes["window"] * w
    if (covered > n).any():
        raise DatasetError("window_count: windows cover more events than n")
    in_windows = wc.sum(axis=0, dtype=np.int64)
    if (in_windows > count).any():
        raise DatasetError("window_count: windows hold more events than count")
    outside = count - in_windows
    bad = outside > n - covered
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"window_count: windows of unit {ds['unit'].values[first]!r} cover {covered} of its "
            f"{int(n[first])} events and add up to {int(in_windows[first])}, but count is "
            f"{int(count[first])}: more than the {int(n[first]) - covered} events outside "
            f"the windows can hold"
        )




def set_epoch(ds: xr.Dataset, epoch: int) -> xr.Dataset:
    """Tag every unit of ``ds`` with a training ``epoch`` (unit ids gain ``@epoch``).

    Use it before :func:`combine` on recordings of several checkpoints of one network.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset without an ``epoch`` coordinate.
    epoch : int

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.dataset.set_epoch(ba.make_dataset([1], 4, network="n", layer="l"), 3)
    >>> ds["unit"].values.tolist()
    ['n/l/0@3']
    """
    validate(ds)
    if "epoch" in ds.coords:
        raise DatasetError("epoch: the dataset already has an epoch coordinate")
    epochs = np.full(ds.sizes["unit"], int(epoch), dtype=np.int64)
    ids = unit_ids(ds["network"].values, ds["layer"].values, ds["index"].values, epochs)
    out = ds.assign_coords(epoch=("unit", epochs)).assign_coords(unit=("unit", ids))
    out.attrs["epoch"] = int(epoch)
    return validate(out)


def require(ds: xr.Dataset, name: str, purpose: str, how: str) -> None:
    """Raise a :class:`DatasetError` when ``ds`` lacks variable ``name``.

    Parameters
    ----------
    ds : xarray.Dataset
    name : str
        The variable needed.
    purpose : str
        What needs it (e.g. ``"the Fano factor"``).
    how : str
        How to record it (e.g. ``"record(..., window_size=50)"``).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([1], 5, network="n", layer="l")
    >>> ba.dataset.require(ds, "count", "a rate", "record(...)")
    """
    if name not in ds.data_vars:
        raise DatasetError(f"{name}: {purpose} needs '{name}', which this dataset lacks; record it with {how}")


# ---------------------------------------------------------------- files


# ---------------------------------------------------------------- files

_CHECKSUMS = "bayesactiv_checksums"
_TEMP_MARKER = ".bayesactiv-save.json"
_REPLACED = "replaced"  # where the fallback of _move_into_place keeps the old store meanwhile
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _encode(ds: xr.Dataset) -> xr.Dataset:
    """Prepare for disk: bit-pack ``fired`` along ``sample``."""
    out = ds.copy()
    out.attrs.pop(_CHECKSUMS, None)
    if "fired" in out.data_vars:
        fired = out["fired"].values
        packed = np.packbits(fired, axis=0)
        out = out.drop_vars("fired")
        out["fired_packed"] = (("packed_sample", "unit"), packed)
        out["fired_packed"].attrs["n_samples"] = int(fired.shape[0])
    for name, var in out.variables.items():
        if var.dtype == object:
            out[name] = var.astype(str)
    return out


def _decode(ds: xr.Dataset, path: Path) -> xr.Dataset:
    if "fired_packed" in ds.data_vars:
        n_samples = _packed_samples(ds["fired_packed"], path)
        fired = np.unpackbits(ds["fired_packed"].values, axis=0, count=n_samples).astype(bool)
        ds = ds.drop_vars("fired_packed")
        ds["fired"] = (("sample", "unit"), fired)
    for name in ("unit", "network", "layer"):
        if name in ds.coords:
            ds = ds.assign_coords({name: ("unit", ds[name].values.astype(str).astype(object))})
    return ds


def _packed_samples(packed: xr.DataArray, path: Path) -> int:
    """The number of events bit-packed in ``fired_packed`` (its ``n_samples`` attribute), checked."""
    where = f"in {str(path)!r}"
    if packed.dims != ("packed_sample", "unit"):
        raise DatasetError(f"fired_packed: expected dims ('packed_sample', 'unit') {where}, got {packed.dims}")
    if "n_samples" not in packed.attrs:
        raise DatasetError(f"fired_packed: attribute 'n_samples' (the number of packed events) is missing {where}")
    value = packed.attrs["n_samples"]
    rows = packed.shape[0]
    low, high = max(8 * rows - 7, 0), 8 * rows
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer) or not low <= value <= high:
        shown = value.item() if isinstance(value, np.generic) else value
        raise DatasetError(f"fired_packed: attribute n_samples={shown!r} {where} does not fit its {rows} "
                           f"packed rows (expected an integer from {low} to {high})")
    return int(value)


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".nc":
        return "netcdf"
    if suffix == ".zarr":
        return "zarr"
    raise DatasetError(f"path: unknown format for {str(path)!r}; use a '.nc' or '.zarr' suffix")


def _read(path: Path, fmt: str) -> xr.Dataset:
    """The variables and attributes of a file as stored (``fired`` still packed), in memory."""
    if fmt == "netcdf":
        with xr.open_dataset(path, engine="h5netcdf") as raw:
            return raw.load()
    with xr.open_zarr(path, consolidated=False) as raw:
        return raw.load()


def _write(encoded: xr.Dataset, path: Path, fmt: str) -> None:
    if fmt == "netcdf":
        encoded.to_netcdf(path, engine="h5netcdf")
    else:
        encoded.to_zarr(path, mode="w", consolidated=False)


def _digest(values: np.ndarray) -> str:
    """SHA-256 of an array's shape and values, independent of how a format stores its dtype."""
    values = np.asarray(values)
    digest = hashlib.sha256(repr(values.shape).encode())
    kind = values.dtype.kind
    if kind in "biu":
        canonical = values.astype("<u8" if values.dtype == np.uint64 else "<i8")
    elif kind == "f":
        canonical = np.where(np.isnan(values), np.nan, values).astype("<f8")
    elif kind == "c":
        canonical = values.astype("<c16")
    elif kind in "mM":
        canonical = values.astype(f"{values.dtype.name.split('[')[0]}[ns]").view("<i8")
    else:
        text = "\0".join(map(str, values.ravel().tolist()))
        digest.update(text.encode("utf-8", "surrogatepass"))
        return "sha256:" + digest.hexdigest()
    digest.update(np.ascontiguousarray(canonical).tobytes())
    return "sha256:" + digest.hexdigest()


def _checksums(ds: xr.Dataset) -> dict[str, str]:
    return {str(name): _digest(var.values) for name, var in ds.variables.items()}


def _write_checksums(path: Path, fmt: str, checksums: dict[str, str]) -> None:
    text = json.dumps(checksums, sort_keys=True)
    if fmt == "netcdf":
        import h5netcdf

        with h5netcdf.File(path, "a") as file:
            file.attrs[_CHECKSUMS] = text
    else:
        import zarr

        zarr.open_group(str(path), mode="r+").attrs[_CHECKSUMS] = text


def _damage(raw: xr.Dataset, recorded: Any) -> str | None:
    """What in ``raw`` differs from the checksums ``save`` recorded, in words (None: nothing)."""
    try:
        expected = json.loads(recorded)
    except (TypeError, ValueError):
        expected = None
    if not isinstance(expected, dict):
        return "its checksum attribute is unreadable"
    missing = [name for name in expected if name not in raw.variables]
    changed = [name for name, digest in expected.items()
               if name in raw.variables and _digest(raw[name].values) != digest]
    problems = []
    if missing:
        problems.append(_listed(missing, "is missing", "are missing"))
    if changed:
        problems.append(_listed(changed, "does not match its checksum", "do not match their checksums"))
    return "; ".join(problems) or None


def _listed(names: list[str], one: str, several: str) -> str:
    quoted = ", ".join(repr(name) for name in names)
    return f"variable {quoted} {one}" if len(names) == 1 else f"variables {quoted} {several}"


def check_save_path(path: str | os.PathLike) -> Path:
    """Check that :func:`save` may write ``path``; call it before long work that ends in a save.

    :func:`save` replaces a file at a ``.nc`` target and a zarr store that
    bayesactiv wrote at a ``.zarr`` target. It refuses, so that nothing else is
    ever deleted: a folder at a ``.nc`` target, a file at a ``.zarr`` target, and a
    ``.zarr`` folder that is not an activation dataset written by bayesactiv.

    Parameters
    ----------
    path : str or path-like
        The target; its suffix (``.nc`` or ``.zarr``) picks the format.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DatasetError
        Naming the path, when it has an unknown suffix, its folder does not exist
        or it holds something that save must not replace.

    Examples
    --------
    >>> import bayesactiv as ba, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> ba.dataset.check_save_path(os.path.join(folder, "acts.nc")).name
    'acts.nc'
    >>> os.mkdir(os.path.join(folder, "results.nc"))
    >>> ba.dataset.check_save_path(os.path.join(folder, "results.nc"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayesactiv.data.dataset.DatasetError: path: '...results.nc' is a folder; save replaces only a file ...
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.parent.exists():
        raise DatasetError(f"path: directory {str(path.parent)!r} does not exist")
    if not path.parent.is_dir():
        raise DatasetError(f"path: {str(path.parent)!r} is not a directory")
    shown = repr(str(path))
    if fmt == "netcdf":
        if path.is_dir():
            raise DatasetError(f"path: {shown} is a folder; save replaces only a file at a '.nc' "
                               "target (remove the folder or choose another name)")
    elif path.exists():
        if not path.is_dir():
            raise DatasetError(f"path: {shown} is a file, not a zarr store; save refuses to replace it "
                               "(remove it or choose another name)")
        if not _written_by_bayesactiv(path):
            raise DatasetError(f"path: {shown} is a folder that is not an activation dataset written by "
                               "bayesactiv; save refuses to replace it (remove it or choose another name)")
    return path


def _written_by_bayesactiv(store: Path) -> bool:
    """Whether ``store`` is a zarr group whose root attributes carry the marks of :func:`save`."""
    import zarr

    try:
        attrs = dict(zarr.open_group(str(store), mode="r").attrs)
    except (OSError, ValueError, TypeError, KeyError):  # not a zarr group it can read: not ours
        return False
    return _CHECKSUMS in attrs or "bayesactiv_version" in attrs


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write an activation dataset to netCDF (``.nc``) or zarr (``.zarr``), atomically.

    The data go to a temporary folder beside ``path``, named
    ``.NAME.PID.RANDOM.tmp``, and are moved into place only when complete, so no
    half-written file survives an exception or a kill. An existing zarr store is
    swapped with the new one in one step where the system allows it (Linux
    ``renameat2`` with ``RENAME_EXCHANGE``), so the target is never missing;
    elsewhere the old store is moved aside, the new one moved in, and the old
    one put back if that fails. The temporary folder, holding the old store by
    then, is removed last. Temporary folders left by a save that was killed are
    removed by the next save to the same target, once their process is gone.

    Only what :func:`check_save_path` allows is replaced: a file at a ``.nc``
    target, a zarr store written by bayesactiv at a ``.zarr`` target.

    ``fired`` is bit-packed on disk (8 events a byte) and restored as bool. A
    SHA-256 checksum of every variable is stored with the data (root attribute
    ``bayesactiv_checksums``) and checked by :func:`open_dataset`.

    Parameters
    ----------
    ds : xarray.Dataset
        A valid activation dataset.
    path : str or path-like
        Target file; the suffix picks the format.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    DatasetError
        When ``ds`` breaks the contract or ``path`` may not be written (see
        :func:`check_save_path`).

    Examples
    --------
    >>> import bayesactiv as ba, tempfile, os
    >>> ds = ba.make_dataset([1, 2], 10, network="net", layer="fc")
    >>> path = ba.save(ds, os.path.join(tempfile.mkdtemp(), "acts.nc"))
    >>> int(ba.open_dataset(path)["count"].sum())
    3
    """
    validate(ds)
    path = check_save_path(path)
    fmt = _format_of(path)
    encoded = _encode(ds)
    _remove_stale_temps(path)
    tmp_dir = _make_temp_dir(path)
    try:
        tmp = tmp_dir / path.name
        _write(encoded, tmp, fmt)
        _write_checksums(tmp, fmt, _checksums(_read(tmp, fmt)))
        check_save_path(path)  # the target may have changed while the data were written
        _move_into_place(tmp, path, tmp_dir)
    finally:
        if not _holds_the_only_copy(tmp_dir, path):
            _remove_tree(tmp_dir)
    return path


def _make_temp_dir(path: Path) -> Path:
    """A new temporary folder beside ``path``, marked as this process's."""
    tmp_dir = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp_dir.mkdir()
    marker = {"pid": os.getpid(), "host": socket.gethostname(), "target": path.name}
    try:
        (tmp_dir / _TEMP_MARKER).write_text(json.dumps(marker))
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return tmp_dir


def _remove_stale_temps(path: Path) -> None:
    """Remove temporary folders of earlier saves to ``path`` whose process is gone."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    for entry in path.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        pid = int(match[1])
        marker = _read_marker(entry)
        if marker is None:  # killed between creating the folder and marking it: remove it only if empty
            if not _process_alive(pid):
                with contextlib.suppress(OSError):
                    entry.rmdir()
            continue
        ours = marker == {"pid": pid, "host": socket.gethostname(), "target": path.name}
        if ours and not _process_alive(pid) and not _holds_the_only_copy(entry, path):
            _remove_tree(entry)


def _holds_the_only_copy(tmp_dir: Path, path: Path) -> bool:
    """Whether ``tmp_dir`` holds an old store moved aside while ``path`` is missing (never removed)."""
    return (tmp_dir / _REPLACED).exists() and not (path.exists() or path.is_symlink())


def _read_marker(tmp_dir: Path) -> dict | None:
    try:
        marker = json.loads((tmp_dir / _TEMP_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` may still run (True whenever that cannot be ruled out)."""
    if pid == os.getpid() or sys.platform == "win32":  # on Windows, os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: it runs, as another user
        return True
    return True


def _remove_tree(tmp_dir: Path) -> None:
    """Remove a temporary folder of :func:`save`, its marker last (so a partial removal stays recognisable)."""
    with contextlib.suppress(OSError):
        for entry in tmp_dir.iterdir():
            if entry.name == _TEMP_MARKER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if all(entry.name == _TEMP_MARKER for entry in tmp_dir.iterdir()):
            (tmp_dir / _TEMP_MARKER).unlink(missing_ok=True)
            tmp_dir.rmdir()


def _move_into_place(src: Path, dst: Path, tmp_dir: Path) -> None:
    """Move the new ``src`` onto ``dst``; an old store at ``dst`` ends up inside ``tmp_dir``."""
    if not src.is_dir():  # a file: one atomic rename, which also removes the old file
        os.replace(src, dst)
        return
    if not (dst.exists() or dst.is_symlink()):
        if not _renameat2(src, dst, _RENAME_NOREPLACE):
            os.rename(src, dst)
        return
    if _renameat2(src, dst, _RENAME_EXCHANGE):  # dst is never missing; the old store is now at src
        return
    old = tmp_dir / _REPLACED
    os.rename(dst, old)
    try:
        os.rename(src, dst)
    except BaseException:
        os.rename(old, dst)
        raise


@functools.cache
def _renameat2_function() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Rename with Linux ``renameat2`` flags; False when the system or file system lacks it."""
    function = _renameat2_function()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(src), None, str(dst))


def open_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read an activation dataset written by :func:`save`, check it and validate it.

    The checksums that :func:`save` stored are compared with the data read, so a
    damaged file or store is refused instead of read (zarr, for one, reads a lost
    chunk file as zeros). A file without checksums (written by an older
    bayesactiv, or by another program) is read without that check; for a zarr
    store, where lost chunks would go unnoticed, a warning says so.

    Parameters
    ----------
    path : str or path-like
        A ``.nc`` file or ``.zarr`` store.

    Returns
    -------
    xarray.Dataset
        Loaded into memory, ``fired`` unpacked to bool.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    DatasetError
        When it cannot be read, does not match its checksums (the message names
        the path and the variables) or breaks the contract.

    Examples
    --------
    >>> import bayesactiv as ba, tempfile, os
    >>> path = ba.save(ba.make_dataset([3], 9, network="a", layer="b"),
    ...                os.path.join(tempfile.mkdtemp(), "x.zarr"))
    >>> ba.open_dataset(path)["unit"].values.tolist()
    ['a/b/0']
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    try:
        raw = _read(path, fmt)
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"path: {str(path)!r} is not a readable {fmt} activation dataset ({err})") from err
    recorded = raw.attrs.pop(_CHECKSUMS, None)
    damage = None if recorded is None else _damage(raw, recorded)
    if recorded is None and fmt == "zarr":
        warnings.warn(f"path: {str(path)!r} carries no checksums (written by an older bayesactiv or another "
                      "program), so lost chunk files, which zarr reads as zeros, cannot be detected; "
                      "save it again to add them", UserWarning, stacklevel=2)
    damaged = f"{str(path)!r} is damaged or was changed outside bayesactiv: {damage}"
    try:
        ds = validate(_decode(raw, path))
    except DatasetError as err:
        if damage:
            raise DatasetError(f"{err} ({damaged})") from err
        raise
    if damage:
        raise DatasetError(f"path: {damaged}")
    return ds


_MISMATCH = ("warn", "drop", "raise")


def combine(datasets: Iterable[xr.Dataset], *, mismatch: str = "warn") -> xr.Dataset:
    """Concatenate activation datasets along ``unit``.

    Per-unit variables (``count``, ``n``, the ``act_*`` summaries ...) are
    concatenated. Variables along another axis are kept only when they line up
    in every dataset, and are otherwise dropped, never truncated or padded:

    - ``window_count``: every dataset has it, with the same ``window_size`` and
      the same number of windows;
    - ``fired`` (with ``sample`` and its coordinates): every dataset has it, over
      the same samples (as many, with equal ``label``/``input``/``split``);
    - ``hist_count``/``hist_edges``: every dataset has them, with as many bins
      (the layers' histograms are merged along ``hist_group``);
    - ``topk_sample``/``topk_value``: every dataset has them, with as many ranks.

    Variables with no ``unit`` axis (other than the histograms) are dropped.

    Parameters
    ----------
    datasets : iterable of xarray.Dataset
    mismatch : {"warn", "drop", "raise"}
        What to do when something is dropped because it does not line up: drop
        it and warn, naming what was dropped and why (the default); drop it
        silently; or raise a :class:`DatasetError`.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import bayesactiv as ba
    >>> a = ba.make_dataset([1], 5, network="a", layer="l")
    >>> b = ba.make_dataset([2], 5, network="b", layer="l")
    >>> ba.combine([a, b])["count"].values.tolist()
    [1, 2]
    >>> c = ba.make_dataset([2], 10, network="c", layer="l", window_count=[[1], [1]], window_size=5)
    >>> ba.combine([a, c], mismatch="raise")
    Traceback (most recent call last):
    ...
    bayesactiv.data.dataset.DatasetError: datasets: they do not line up: window_count (only 1 of the 2 datasets have it); pass mismatch='drop' to drop what does not line up
    """
    check_choice(mismatch, "mismatch", _MISMATCH)
    datasets = [validate(ds) for ds in datasets]
    if not datasets:
        raise DatasetError("datasets: nothing to combine")
    if len(datasets) == 1:
        return datasets[0]
    has_epoch = ["epoch" in ds.coords for ds in datasets]
    if any(has_epoch) and not all(has_epoch):
        raise DatasetError("epoch: some datasets have an epoch coordinate and others do not")
    dropped: list[str] = []
    keep_windows = _lines_up(datasets, ("window_count",), "window layouts (window_size x windows)",
                             lambda ds: f"{int(ds.attrs['window_size'])} x {ds.sizes['window']}", dropped)
    keep_fired = _lines_up(datasets, ("fired",), "numbers of samples",
                           lambda ds: str(ds.sizes["sample"]), dropped) and _same_samples(datasets, dropped)
    keep_hist = _lines_up(datasets, ("hist_count", "hist_edges"), "numbers of histogram bins",
                          lambda ds: str(ds.sizes["hist_bin"]), dropped)
    keep_topk = _lines_up(datasets, ("topk_sample", "topk_value"), "numbers of top-k ranks",
                          lambda ds: str(ds.sizes["rank"]), dropped)
    no_unit = sorted({str(v) for ds in datasets for v in ds.data_vars
                      if "unit" not in ds[v].dims and v not in ("hist_count", "hist_edges")})
    if no_unit:
        dropped.append(f"{', '.join(no_unit)} (no unit axis)")
    if dropped:
        _report_dropped(dropped, mismatch)
    kept = {"window_count": keep_windows, "fired": keep_fired, "topk_sample": keep_topk, "topk_value": keep_topk}
    parts = []
    for ds in datasets:
        drop = [v for v in ds.data_vars if "unit" not in ds[v].dims]
        drop += [v for v, keep in kept.items() if not keep and v in ds.data_vars]
        part = ds.drop_vars(drop)
        if not keep_fired:
            part = part.drop_dims([d for d in ("sample",) if d in part.dims])
        parts.append(part)
    out = xr.concat(parts, dim="unit", data_vars="minimal", coords="minimal", compat="override",
                    combine_attrs="override", join="outer")
    if keep_hist:
        hists = xr.concat([ds[["hist_count", "hist_edges"]] for ds in datasets], dim="hist_group")
        _, first = np.unique(hists["hist_group"].values, return_index=True)
        out = out.merge(hists.isel(hist_group=np.sort(first)), join="outer")
    if "window_count" not in out:
        out.attrs.pop("window_size", None)
    out.attrs["source"] = "combine(" + ", ".join(str(ds.attrs.get("source", "?")) for ds in datasets) + ")"
    return validate(out)


def _lines_up(datasets: list[xr.Dataset], names: tuple[str, ...], what: str, layout: Any,
              dropped: list[str]) -> bool:
    """Whether every dataset has ``names`` with one ``layout``; if not, say why in ``dropped``."""
    label = "/".join(names)
    present = [all(name in ds.data_vars for name in names) for ds in datasets]
    if not any(present):
        return False
    if not all(present):
        dropped.append(f"{label} (only {sum(present)} of the {len(datasets)} datasets have it)")
        return False
    layouts = list(dict.fromkeys(layout(ds) for ds in datasets))
    if len(layouts) > 1:
        dropped.append(f"{label} (the datasets have different {what}: {', '.join(layouts)})")
        return False
    return True


def _same_samples(datasets: list[xr.Dataset], dropped: list[str]) -> bool:
    """Whether the per-sample coordinates (``label``, ``input`` ...) agree across ``datasets``."""
    names = sorted({str(c) for ds in datasets for c in ds.coords if ds[c].dims == ("sample",)})
    differ = [c for c in names
              if len({_digest(ds[c].values) if c in ds.coords else None for ds in datasets}) > 1]
    if differ:
        dropped.append(f"fired (the datasets' samples differ in {', '.join(differ)})")
        return False
    return True


def _report_dropped(dropped: list[str], mismatch: str) -> None:
    what = "; ".join(dropped)
    if mismatch == "raise":
        raise DatasetError(f"datasets: they do not line up: {what}; pass mismatch='drop' to drop what "
                           "does not line up")
    if mismatch == "warn":
        warnings.warn(f"combine: dropped {what}; combine datasets recorded alike to keep them, or pass "
                      "mismatch='drop' to drop them silently", UserWarning, stacklevel=3)
