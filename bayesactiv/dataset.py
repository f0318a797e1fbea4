"""The activation dataset: the one contract between the stages.

An activation dataset is an :class:`xarray.Dataset` holding, per hidden unit,
the sufficient statistics of its firing:

========================  ==================  =======  ==========================================
name                      dims                dtype    meaning
========================  ==================  =======  ==========================================
``count``                 (unit,)             int64    events in which the unit fired
``n``                     (unit,)             int64    events observed for the unit
``window_count``          (window, unit)      int64    fired count in each consecutive block of
                                                       ``attrs["window_size"]`` events (optional)
``fired``                 (sample, unit)      bool     raw firing events (optional, bit-packed on
                                                       disk)
``act_min`` ... ``act_var``  (unit,)          float64  streamed summary of raw activations
``hist_count``            (hist_group, hist_bin)  int64  per-layer histogram of raw activations
``hist_edges``            (hist_group, hist_edge) float64  its bin edges
``topk_sample``           (unit, rank)        int64    events that made the unit fire most (-1: none)
``topk_value``            (unit, rank)        float64  their activation values
========================  ==================  =======  ==========================================

An *event* is what ``n`` counts: one input for a dense layer, one input (or one
spatial position, with ``spatial="per_position"``) for a convolution, one token
for a sequence layer. The ``sample`` axis of ``fired`` enumerates events, so
``fired.sum("sample") == count`` and ``n == fired.sizes["sample"]``; its
optional ``input`` coordinate names the input each event came from.

Coordinates on ``unit``: ``unit`` (the id ``network/layer/index``, with
``@epoch`` appended when an ``epoch`` coordinate is present), ``network``,
``layer`` (str), ``index`` (int) and optionally ``epoch`` (int). On ``sample``:
``sample`` (int, the order in which events were seen), optionally ``label``,
``split``, ``input``.

Attributes: ``threshold_rule`` (the rule in words), ``threshold_params`` (JSON),
``window_size`` (when ``window_count`` is present), ``spatial``, ``source``,
``created``, ``bayesactiv_version``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "DatasetError",
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
    >>> from bayesactiv.dataset import unit_ids
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

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 5, 20], 20, network="net", layer="fc1")
    >>> ds["unit"].values.tolist()
    ['net/fc1/0', 'net/fc1/1', 'net/fc1/2']
    """
    count = np.asarray(count)
    if count.ndim != 1:
        raise DatasetError(f"count: expected a 1-d array over units, got shape {count.shape}")
    k = count.shape[0]
    n = np.broadcast_to(np.asarray(n), (k,)).copy()
    network_arr = np.broadcast_to(np.asarray(network, dtype=object), (k,)).astype(str)
    layer_arr = np.broadcast_to(np.asarray(layer, dtype=object), (k,)).astype(str)
    if index is None:
        index_arr = np.zeros(k, dtype=np.int64)
        keys = np.char.add(np.char.add(network_arr, "/"), layer_arr)
        for key in dict.fromkeys(keys.tolist()):
            mask = keys == key
            index_arr[mask] = np.arange(mask.sum())
    else:
        index_arr = np.asarray(index, dtype=np.int64)
    epoch_arr = None if epoch is None else np.broadcast_to(np.asarray(epoch, dtype=np.int64), (k,))
    coords: dict[str, Any] = {
        "unit": ("unit", unit_ids(network_arr, layer_arr, index_arr, epoch_arr)),
        "network": ("unit", network_arr.astype(object)),
        "layer": ("unit", layer_arr.astype(object)),
        "index": ("unit", index_arr),
    }
    if epoch_arr is not None:
        coords["epoch"] = ("unit", epoch_arr.copy())
    data_vars: dict[str, Any] = {"count": ("unit", _as_int(count, "count")), "n": ("unit", _as_int(n, "n"))}
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
        data_vars["window_count"] = (("window", "unit"), _as_int(np.asarray(window_count), "window_count"))
        all_attrs["window_size"] = int(window_size)
    if fired is not None:
        fired = np.asarray(fired)
        data_vars["fired"] = (("sample", "unit"), fired.astype(bool))
        coords["sample"] = ("sample", np.arange(fired.shape[0], dtype=np.int64))
        if label is not None:
            coords["label"] = ("sample", np.asarray(label))
    elif label is not None:
        raise DatasetError("label: a per-event label needs fired events (pass fired=...)")
    all_attrs.update(attrs or {})
    return validate(xr.Dataset(data_vars, coords=coords, attrs=all_attrs))


def _as_int(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "b":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            raise DatasetError(f"{name}: contains NaN or infinite values")
        if not np.all(values == np.round(values)):
            raise DatasetError(f"{name}: counts must be integers, got non-integer values")
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
        _check_dims(ds, "window_count", ("window", "unit"))
        if "window_size" not in ds.attrs:
            raise DatasetError("window_size: attribute required with window_count")
        w = int(ds.attrs["window_size"])
        if w < 1:
            raise DatasetError(f"window_size: must be >= 1, got {w}")
        wc = _check_counts(ds, "window_count")
        if (wc > w).any():
            raise DatasetError(f"window_count: a window count exceeds window_size={w}")
        if (wc.sum(axis=0) > count).any():
            raise DatasetError("window_count: windows hold more events than count")
        if (ds.sizes["window"] * w > n).any():
            raise DatasetError("window_count: windows cover more events than n")
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
        _check_dims(ds, "hist_count", ("hist_group", "hist_bin"))
        _check_dims(ds, "hist_edges", ("hist_group", "hist_edge"))
    return ds


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


def _encode(ds: xr.Dataset) -> xr.Dataset:
    """Prepare for disk: bit-pack ``fired`` along ``sample``."""
    out = ds.copy()
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


def _decode(ds: xr.Dataset) -> xr.Dataset:
    if "fired_packed" in ds.data_vars:
        n_samples = int(ds["fired_packed"].attrs["n_samples"])
        fired = np.unpackbits(ds["fired_packed"].values, axis=0, count=n_samples).astype(bool)
        ds = ds.drop_vars("fired_packed")
        ds["fired"] = (("sample", "unit"), fired)
    for name in ("unit", "network", "layer"):
        if name in ds.coords:
            ds = ds.assign_coords({name: ("unit", ds[name].values.astype(str).astype(object))})
    return ds


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".nc":
        return "netcdf"
    if suffix == ".zarr":
        return "zarr"
    raise DatasetError(f"path: unknown format for {str(path)!r}; use a '.nc' or '.zarr' suffix")


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write an activation dataset to netCDF (``.nc``) or zarr (``.zarr``), atomically.

    The data go to a temporary name beside ``path`` and are renamed into place
    only when complete, so no half-written file survives an exception or a kill.
    ``fired`` is bit-packed on disk (8 events a byte) and restored as bool.

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

    Examples
    --------
    >>> import bayesactiv as ba, tempfile, os
    >>> ds = ba.make_dataset([1, 2], 10, network="net", layer="fc")
    >>> path = ba.save(ds, os.path.join(tempfile.mkdtemp(), "acts.nc"))
    >>> int(ba.open_dataset(path)["count"].sum())
    3
    """
    validate(ds)
    path = Path(path)
    fmt = _format_of(path)
    if not path.parent.exists():
        raise DatasetError(f"path: directory {str(path.parent)!r} does not exist")
    encoded = _encode(ds)
    tmp_dir = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_dir) / path.name
    try:
        if fmt == "netcdf":
            encoded.to_netcdf(tmp, engine="h5netcdf")
        else:
            encoded.to_zarr(tmp, mode="w", consolidated=False)
        _replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def _replace(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst``; for directories, keep the old one until the new one is in place."""
    if src.is_dir():
        backup = None
        if dst.exists():
            backup = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.replace(dst, backup)
        os.replace(src, dst)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    else:
        if dst.is_dir():
            shutil.rmtree(dst)
        os.replace(src, dst)


def open_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read an activation dataset written by :func:`save` and validate it.

    Parameters
    ----------
    path : str or path-like
        A ``.nc`` file or ``.zarr`` store.

    Returns
    -------
    xarray.Dataset
        Loaded into memory, ``fired`` unpacked to bool.

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
        if fmt == "netcdf":
            with xr.open_dataset(path, engine="h5netcdf") as raw:
                ds = raw.load()
        else:
            with xr.open_zarr(path, consolidated=False) as raw:
                ds = raw.load()
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"path: {str(path)!r} is not a readable {fmt} activation dataset ({err})") from err
    return validate(_decode(ds))


def combine(datasets: Iterable[xr.Dataset]) -> xr.Dataset:
    """Concatenate activation datasets along ``unit``.

    Per-unit variables are concatenated. ``window_count`` is kept when all
    datasets have the same window size (windows are truncated to the shortest),
    ``fired`` only when all have the same number of samples; other per-sample
    and per-layer variables are dropped when they do not line up.

    Parameters
    ----------
    datasets : iterable of xarray.Dataset

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
    """
    datasets = [validate(ds) for ds in datasets]
    if not datasets:
        raise DatasetError("datasets: nothing to combine")
    if len(datasets) == 1:
        return datasets[0]
    has_epoch = ["epoch" in ds.coords for ds in datasets]
    if any(has_epoch) and not all(has_epoch):
        raise DatasetError("epoch: some datasets have an epoch coordinate and others do not")
    keep_windows = all("window_count" in ds for ds in datasets) and (
        len({int(ds.attrs["window_size"]) for ds in datasets}) == 1
    )
    keep_fired = all("fired" in ds for ds in datasets) and len({ds.sizes["sample"] for ds in datasets}) == 1
    keep_hist = all("hist_count" in ds for ds in datasets) and len({ds.sizes["hist_bin"] for ds in datasets}) == 1
    keep_topk = all("topk_sample" in ds for ds in datasets) and len({ds.sizes["rank"] for ds in datasets}) == 1
    n_windows = min(ds.sizes["window"] for ds in datasets) if keep_windows else 0
    parts = []
    for ds in datasets:
        drop = [v for v in ds.data_vars if "unit" not in ds[v].dims and v not in ("hist_count", "hist_edges")]
        if not keep_windows:
            drop += [v for v in ("window_count",) if v in ds]
        if not keep_fired:
            drop += [v for v in ("fired",) if v in ds]
        if not keep_topk:
            drop += [v for v in ("topk_sample", "topk_value") if v in ds]
        drop += [v for v in ("hist_count", "hist_edges") if v in ds]
        part = ds.drop_vars(drop)
        if keep_windows:
            part = part.isel(window=slice(0, n_windows))
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
