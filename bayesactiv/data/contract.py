"""The activation dataset: the one contract between the stages, and its checks.

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
``cluster_*``     (unit,)                   int64    per-input (cluster) sums of clustered events;
                                                     see below (optional)
================  ========================  =======  ==============================================

An *event* is what ``n`` counts: one input for a dense layer, one input (or one
spatial position, with ``spatial="per_position"``) for a convolution, one token
for a sequence layer. The ``sample`` axis of ``fired`` enumerates events, so
``fired.sum("sample") == count`` and ``n == fired.sizes["sample"]``; its
optional ``input`` coordinate names the input each event came from.

Clustered events
----------------
Every event belongs to an input, its *cluster*: the tokens of a sequence, the positions
of a convolution's feature map. Events of one input share its context, so they are not
independent trials. When some input holds more than one event the dataset carries,
per unit, the statistics of its per-input counts ``c_i`` (events in which the unit
fired in input ``i``) and per-input events ``t_i``, over the inputs ``i`` with at least
one event (O(units) memory, whatever the number of inputs):

====================  ===============================================================
``cluster_n``         inputs (clusters) the unit's events came from, ``I``
``cluster_fired``     inputs in which the unit fired at least once, ``sum_i [c_i > 0]``
``cluster_count_sq``  ``sum_i c_i**2``
``cluster_count_n``   ``sum_i c_i t_i``
``cluster_n_sq``      ``sum_i t_i**2``
====================  ===============================================================

(``count = sum_i c_i`` and ``n = sum_i t_i`` as always.) One input also moves many units of
a layer together, so ``record`` streams the per-input sums of the layer's total count
``C_i = sum_u c_ui`` too, stored on each unit of the layer (optional):
``layer_count_sq`` (``sum_i C_i**2``), ``layer_count_n`` (``sum_i C_i t_i``) and
``layer_count`` (``sum_i C_i``, the layer's total when recorded: a dataset holding only some
of a layer's units is recognised by it); -1 in all three marks a layer whose sums were not
streamed (a dense layer recorded beside clustered ones). They are what the clustered
models (:mod:`bayesactiv.bayes.specs`) and cluster-robust variances need. A dense layer
(one event per input) has ``cluster_n == n`` and the sums reduce to ``count`` and ``n``;
a dataset of dense layers only carries none of them. :func:`clustered` tells, per unit,
whether its events come in clusters; :func:`from_input_counts` builds a dataset from
per-input counts.

Coordinates on ``unit``: ``unit`` (the id ``network/layer/index``, with
``@epoch`` appended when an ``epoch`` coordinate is present), ``network``,
``layer`` (str), ``index`` (int) and optionally ``epoch`` (int). On ``sample``:
``sample`` (int, the order in which events were seen), optionally ``label``,
``split``, ``input``. On ``hist_group``: ``hist_group`` (str, ``network/layer``).

Attributes: ``threshold_rule`` (the rule in words), ``threshold_params`` (JSON),
``window_size`` (when ``window_count`` is present), ``spatial``, ``source``,
``created``, ``bayesactiv_version``.

Files are written and read by :mod:`bayesactiv.data.files`; datasets are
concatenated by :mod:`bayesactiv.data.combine`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "CLUSTER_VARS",
    "LAYER_CLUSTER_VARS",
    "DatasetError",
    "clustered",
    "dense_cluster_stats",
    "from_input_counts",
    "input_count_sums",
    "make_dataset",
    "require",
    "set_epoch",
    "unit_ids",
    "validate",
]

_UNIT_STATS = ("act_min", "act_max", "act_mean", "act_var", "act_skewness", "act_kurtosis", "act_zero")
_INT64_MAX = int(np.iinfo(np.int64).max)
CLUSTER_VARS = ("cluster_n", "cluster_fired", "cluster_count_sq", "cluster_count_n",
                "cluster_n_sq")
LAYER_CLUSTER_VARS = ("layer_count_sq", "layer_count_n", "layer_count")


class DatasetError(ValueError):
    """An activation dataset does not follow the contract; the message names the field."""


def _version() -> str:
    from bayesactiv.version import __version__
    return __version__


def _str_list(values: Any) -> list:
    """``np.asarray(values).astype(str).tolist()``, without the copy through a fixed-width
    str array when the values are str already (a coordinate of str objects, or str values
    that such a copy would keep as they are: no trailing NUL, which it strips)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U":
        return arr.tolist()
    if arr.dtype == object and arr.ndim == 1:
        items = arr.tolist()
        try:
            distinct = set(items)
        except TypeError:  # unhashable values: the copy decides
            distinct = None
        if distinct is not None and all(type(v) is str and not v.endswith("\x00")
                                        for v in distinct):
            return items
    return arr.astype(str).tolist()


_RUN_IDS: dict[tuple[str, str, int], np.ndarray] = {}
_RUN_IDS_KEPT = [0]  # ids held by _RUN_IDS
_RUN_IDS_BUDGET = 1 << 16  # (a few MB of str objects at most)
_RUN_IDS_LOCK = threading.Lock()


def layer_unit_ids(network: str, layer: str, size: int) -> np.ndarray:
    """The ids ``network/layer/0`` ... ``network/layer/{size - 1}`` of a layer's units.

    A read-only object array of str, the ids :func:`unit_ids` builds for those units;
    the ids of recently seen layers are kept, so that recording or validating the same
    layers again does not build their strings again.

    Examples
    --------
    >>> from bayesactiv.data.contract import layer_unit_ids
    >>> layer_unit_ids("mlp", "fc1", 3).tolist()
    ['mlp/fc1/0', 'mlp/fc1/1', 'mlp/fc1/2']
    """
    key = (network, layer, size)
    ids = _RUN_IDS.get(key)
    if ids is not None:
        return ids
    prefix = f"{network}/{layer}/"  # f"{network}/{layer}/{i}" for each int i
    ids = np.empty(size, dtype=object)
    ids[:] = [prefix + str(i) for i in range(size)]
    ids.flags.writeable = False
    if size <= _RUN_IDS_BUDGET // 4:
        with _RUN_IDS_LOCK:
            if key not in _RUN_IDS:
                _RUN_IDS[key] = ids
                _RUN_IDS_KEPT[0] += size
                while _RUN_IDS_KEPT[0] > _RUN_IDS_BUDGET:  # the oldest layers go first
                    _RUN_IDS_KEPT[0] -= _RUN_IDS.pop(next(iter(_RUN_IDS))).shape[0]
    return ids


def _layer_runs(network: list, layer: list, index: np.ndarray) -> list[tuple[str, str, int]] | None:
    """``(network, layer, size)`` of each run of units numbered ``0 .. size - 1`` within one
    network and layer, when the units are such runs one after the other; else None."""
    k = index.shape[0]
    if not (isinstance(network, list) and isinstance(layer, list)) or k == 0 \
            or len(network) != k or len(layer) != k:
        return None
    first = index == 0
    # each index 0 or the one before it plus 1: by induction, the position in its run
    if not (first[0] and ((index[1:] == index[:-1] + 1) | first[1:]).all()):
        return None
    starts = np.flatnonzero(first).tolist()
    runs = []
    for start, stop in zip(starts, [*starts[1:], k], strict=True):
        net, lay = network[start], layer[start]
        if type(net) is not str or type(lay) is not str:
            return None
        size = stop - start
        if network[start:stop].count(net) != size or layer[start:stop].count(lay) != size:
            return None
        runs.append((net, lay, size))
    return runs


def unit_ids(
    network: Sequence[str], layer: Sequence[str], index: Sequence[int], epoch: Sequence[int] | None = None
) -> np.ndarray:
    """Build the stable unit ids ``network/layer/index`` (``@epoch`` appended when given).

    Examples
    --------
    >>> from bayesactiv.data import unit_ids
    >>> unit_ids(["mlp"], ["fc1"], [3]).tolist()
    ['mlp/fc1/3']
    """
    network = _str_list(network)
    layer = _str_list(layer)
    index_arr = np.asarray(index).astype(np.int64)
    if epoch is None:
        runs = _layer_runs(network, layer, index_arr) if index_arr.ndim == 1 else None
        if runs is not None:  # the ids of whole layers, numbered from 0
            return np.concatenate([layer_unit_ids(*run) for run in runs])
        index = index_arr.tolist()
        ids = [f"{n}/{l}/{i}" for n, l, i in zip(network, layer, index, strict=True)]
    else:
        index = index_arr.tolist()
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
    bayesactiv.data.contract.DatasetError: layer: expected 3 values (one per unit of count), got 2
    """
    count, n = _unit_counts(count, n)
    k = count.shape[0]
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
    data_vars, coords, all_attrs = _parts(count, n, coords, window_count, window_size, fired,
                                          label, threshold_rule, threshold_params, attrs)
    return validate(xr.Dataset(data_vars, coords=coords, attrs=all_attrs))


def unit_dataset_parts(
    count: Any,
    n: Any,
    coords: dict[str, Any],
    *,
    window_count: Any = None,
    window_size: int | None = None,
    fired: Any = None,
    label: Any = None,
    threshold_rule: str = "activation > 0",
    threshold_params: dict | None = None,
    attrs: dict | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The checked variables, coordinates and attributes of :func:`make_dataset`, not yet a
    dataset, for a caller that has built the coordinates on ``unit`` itself and adds
    variables of its own before building the dataset once (and validating it once).

    ``coords`` holds ``unit``, ``network``, ``layer`` and ``index`` (and ``epoch``, when
    there is one) as :func:`make_dataset` builds them, e.g. with :func:`layer_unit_ids`;
    they are taken as they are (:func:`validate` checks them on the dataset). ``count``,
    ``n`` and the other arguments are checked as by :func:`make_dataset`.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesactiv.data.contract import layer_unit_ids, unit_dataset_parts
    >>> coords = {"unit": ("unit", layer_unit_ids("net", "fc1", 2)),
    ...           "network": ("unit", np.array(["net", "net"], dtype=object)),
    ...           "layer": ("unit", np.array(["fc1", "fc1"], dtype=object)),
    ...           "index": ("unit", np.arange(2))}
    >>> data_vars, coords, attrs = unit_dataset_parts([0, 5], 20, coords)
    >>> data_vars["n"][1].tolist()
    [20, 20]
    """
    count, n = _unit_counts(count, n)
    return _parts(count, n, dict(coords), window_count, window_size, fired, label,
                  threshold_rule, threshold_params, attrs)


def _unit_counts(count: Any, n: Any) -> tuple[np.ndarray, np.ndarray]:
    """``count`` and ``n`` (a scalar repeated) as checked int64 arrays over the units."""
    count = np.asarray(count)
    if count.ndim != 1:
        raise DatasetError(f"count: expected a 1-d array over units, got shape {count.shape}")
    k = count.shape[0]
    return _as_int(count, "count"), _as_int(_per_unit(n, "n", k), "n")


def _parts(count: np.ndarray, n: np.ndarray, coords: dict[str, Any], window_count: Any,
           window_size: int | None, fired: Any, label: Any, threshold_rule: str,
           threshold_params: dict | None, attrs: dict | None
           ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The variables and attributes of checked counts and unit coordinates, and the rest."""
    k = count.shape[0]
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
    return data_vars, coords, all_attrs


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
    """A 2-d ``(rows, unit)`` array whose ``unit`` axis matches ``count`` (a dask array stays one)."""
    if not hasattr(values, "__dask_graph__"):
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
    if ds.variables[name].dims != dims:
        raise DatasetError(f"{name}: expected dims {dims}, got {ds.variables[name].dims}")


def _check_counts(ds: xr.Dataset, name: str) -> np.ndarray:
    values = ds.variables[name].values
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
    var = ds.variables  # (not ds[name]: each DataArray built costs more than its check)
    for name in ("count", "n"):
        if name not in ds.data_vars:
            raise DatasetError(f"{name}: missing variable (an activation dataset needs 'count' and 'n')")
        _check_dims(ds, name, ("unit",))
    if ds.sizes["unit"] == 0:
        raise DatasetError("unit: the dataset has no units")
    for name in ("unit", "network", "layer", "index"):
        if name not in ds.coords:
            raise DatasetError(f"{name}: missing coordinate on 'unit'")
        if var[name].dims != ("unit",):
            raise DatasetError(f"{name}: coordinate must have dims ('unit',), got {var[name].dims}")
    count = _check_counts(ds, "count")
    n = _check_counts(ds, "n")
    if (count > n).any():
        bad = var["unit"].values[count > n][:5]
        raise DatasetError(f"count: exceeds n for units {bad.tolist()}")
    if var["index"].dtype.kind not in "iu":
        raise DatasetError(f"index: expected integers, got dtype {var['index'].dtype}")
    epoch = var["epoch"].values if "epoch" in ds.coords else None
    expected = unit_ids(var["network"].values, var["layer"].values, var["index"].values,
                        epoch)
    actual = var["unit"].values
    mismatch = expected != actual.astype(object)
    if mismatch.any():
        bad = int(np.flatnonzero(mismatch)[0])
        raise DatasetError(
            f"unit: id {actual[bad]!r} does not match its network/layer/index coordinates "
            f"(expected {expected[bad]!r})"
        )
    if len(set(actual.tolist())) != actual.shape[0]:  # (the ids are str, checked above)
        raise DatasetError("unit: ids are not unique")
    if "window_count" in ds.data_vars:
        _check_windows(ds, count, n)
    if any(name in ds.data_vars for name in CLUSTER_VARS):
        _check_clusters(ds, count, n)
    present = [name for name in LAYER_CLUSTER_VARS if name in ds.data_vars]
    if present and len(present) < len(LAYER_CLUSTER_VARS):
        missing = sorted(set(LAYER_CLUSTER_VARS) - set(present))
        raise DatasetError(f"{missing[0]}: missing variable (the layer sums "
                           f"{list(LAYER_CLUSTER_VARS)} come together)")
    if present:
        vals = np.stack([var[name].values for name in LAYER_CLUSTER_VARS])
        for name in present:
            _check_dims(ds, name, ("unit",))
        unknown = (vals == -1).all(axis=0)
        bad = ~unknown & (vals < 0).any(axis=0)
        if bad.any() or not np.isin(vals.dtype.kind, list("iu")):
            raise DatasetError("layer_count: the layer sums must be non-negative integers "
                               "(-1 in all three: not streamed)")
    if "fired" in ds.data_vars:
        _check_dims(ds, "fired", ("sample", "unit"))
        if var["fired"].dtype != bool:
            raise DatasetError(f"fired: expected bool, got dtype {var['fired'].dtype}")
        # an out-of-core fired (a dask array) is not read here: its chunks are checked
        # against their checksums as they are read (bayesactiv.data.files)
        if not hasattr(var["fired"]._data, "__dask_graph__") and not np.array_equal(
                var["fired"].values.sum(axis=0), count):
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


def _check_clusters(ds: xr.Dataset, count: np.ndarray, n: np.ndarray) -> None:
    """The ``cluster_*`` sums must all be there and fit ``count`` and ``n``.

    With ``0 <= c_i <= t_i`` and ``t_i >= 1`` over ``I`` inputs: ``1 <= I <= n`` (``I = 0``
    only when ``n = 0``), ``sum [c_i > 0] <= min(count, I)``, ``count <= sum c_i**2 <=
    sum c_i t_i``, ``sum c_i t_i <= sum t_i**2`` and ``n <= sum t_i**2 <= n**2``.
    """
    missing = [name for name in CLUSTER_VARS if name not in ds.data_vars]
    if missing:
        raise DatasetError(f"{missing[0]}: missing variable (the cluster statistics "
                           f"{list(CLUSTER_VARS)} come together)")
    vals = {}
    for name in CLUSTER_VARS:
        _check_dims(ds, name, ("unit",))
        vals[name] = _check_counts(ds, name).astype(np.int64)
    inputs, fired = vals["cluster_n"], vals["cluster_fired"]
    csq, cn, nsq = vals["cluster_count_sq"], vals["cluster_count_n"], vals["cluster_n_sq"]
    checks = [
        ("cluster_n", (inputs > n) | ((inputs == 0) & (n > 0)),
         "must lie between 1 and n (inputs with at least one event)"),
        ("cluster_fired", (fired > np.minimum(count, inputs)) | ((count > 0) & (fired == 0)),
         "must lie between 1 and min(count, cluster_n) when the unit fired (0 otherwise)"),
        ("cluster_count_sq", (csq < count) | (csq > cn),
         "sum c_i**2 must lie between count and cluster_count_n = sum c_i t_i"),
        ("cluster_count_n", cn > nsq, "sum c_i t_i cannot exceed cluster_n_sq = sum t_i**2"),
        ("cluster_n_sq", (nsq < n) | (nsq.astype(float) > n.astype(float) ** 2),
         "sum t_i**2 must lie between n and n**2"),
    ]
    for name, bad, rule in checks:
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{name}: {rule}; unit {ds['unit'].values[first]!r} has "
                               f"{name}={int(vals[name][first])} with count="
                               f"{int(count[first])}, n={int(n[first])}")


def clustered(ds: xr.Dataset) -> np.ndarray:
    """Per unit, whether its events come in clusters (some input holds several events).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.

    Returns
    -------
    numpy.ndarray of bool, shape (unit,)
        False for every unit of a dataset without the ``cluster_*`` statistics.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> c = np.array([[3, 0], [0, 1]])  # (input, unit): fired tokens per input
    >>> ds = ba.data.from_input_counts(c, [4, 4], network="lm", layer="mlp")
    >>> ba.data.clustered(ds).tolist()
    [True, True]
    >>> ba.data.clustered(ba.make_dataset([1], 2, network="n", layer="l")).tolist()
    [False]
    """
    if "cluster_n" not in ds.data_vars:
        return np.zeros(ds.sizes["unit"], dtype=bool)
    return ds["cluster_n"].values < ds["n"].values


def dense_cluster_stats(count: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """The ``cluster_*`` statistics of units with one event per input (``c_i`` is 0 or 1).

    Examples
    --------
    >>> {k: v.tolist() for k, v in dense_cluster_stats(np.array([2]), np.array([5])).items()}
    {'cluster_n': [5], 'cluster_fired': [2], 'cluster_count_sq': [2], 'cluster_count_n': [2], 'cluster_n_sq': [5]}
    """
    count, n = np.asarray(count, dtype=np.int64), np.asarray(n, dtype=np.int64)
    return {"cluster_n": n.copy(), "cluster_fired": count.copy(), "cluster_count_sq": count.copy(),
            "cluster_count_n": count.copy(), "cluster_n_sq": n.copy()}


def input_count_sums(input_count: np.ndarray, input_events: np.ndarray) -> dict[str, np.ndarray]:
    """The ``cluster_*`` statistics of per-input counts: sums over the inputs with events.

    Parameters
    ----------
    input_count : numpy.ndarray of int, shape (input, unit)
        Events in which each unit fired, per input.
    input_events : numpy.ndarray of int, shape (input, unit) or (input,)
        Events per input.

    Returns
    -------
    dict of str to numpy.ndarray of shape (unit,)
        One entry per name of :data:`CLUSTER_VARS`.

    Examples
    --------
    >>> sums = input_count_sums(np.array([[3], [1]]), np.array([4, 2]))
    >>> {k: v.tolist() for k, v in sums.items()}
    {'cluster_n': [2], 'cluster_fired': [2], 'cluster_count_sq': [10], 'cluster_count_n': [14], 'cluster_n_sq': [20]}
    """
    c = np.asarray(input_count)
    t = np.asarray(input_events)
    if t.ndim == 1:
        t = t[:, None]
    return {"cluster_n": np.broadcast_to(t > 0, c.shape).sum(0), "cluster_fired": (c > 0).sum(0),
            "cluster_count_sq": (c * c).sum(0), "cluster_count_n": (c * t).sum(0),
            "cluster_n_sq": np.broadcast_to(t * t, c.shape).sum(0)}


def from_input_counts(
    input_count: Any,
    input_events: Any,
    *,
    network: str | Sequence[str],
    layer: str | Sequence[str],
    **kwargs: Any,
) -> xr.Dataset:
    """An activation dataset of clustered events from per-input counts.

    Parameters
    ----------
    input_count : array_like of int, shape (input, unit)
        Events in which each unit fired, per input (e.g. fired tokens of a sentence).
    input_events : array_like of int, shape (input,) or (input, unit)
        Events per input (e.g. the sentence's real tokens); inputs with no events are
        left out.
    network, layer : str or sequence of str
        As for :func:`make_dataset`.
    **kwargs
        Further arguments of :func:`make_dataset` (``index``, ``epoch``, ``attrs`` ...).

    Returns
    -------
    xarray.Dataset
        ``count`` and ``n`` (the sums over inputs) and the ``cluster_*`` statistics;
        ``attrs["spatial"]`` is ``"token"`` unless ``attrs`` says otherwise.

    Raises
    ------
    DatasetError
        When a count is negative or exceeds the events of its input, or shapes disagree.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> c = np.array([[3, 0], [0, 1], [2, 2]])  # 3 inputs, 2 units
    >>> ds = ba.data.from_input_counts(c, [4, 4, 2], network="lm", layer="mlp")
    >>> ds["count"].values.tolist(), ds["n"].values.tolist(), ds["cluster_count_sq"].values.tolist()
    ([5, 3], [10, 10], [13, 5])
    """
    c = np.asarray(input_count)
    if c.ndim != 2:
        raise DatasetError(f"input_count: expected a 2-d array (input, unit), got shape {c.shape}")
    c = _as_int(c, "input_count")
    t = np.asarray(input_events)
    if t.ndim == 1:
        if t.shape[0] != c.shape[0]:
            raise DatasetError(f"input_events: expected {c.shape[0]} values (one per input of "
                               f"input_count), got {t.shape[0]}")
        t = np.broadcast_to(t[:, None], c.shape)
    elif t.shape != c.shape:
        raise DatasetError(f"input_events: expected shape ({c.shape[0]},) or {c.shape}, got "
                           f"{t.shape}")
    t = _as_int(t, "input_events")
    if (c < 0).any() or (t < 0).any():
        raise DatasetError("input_count: counts and events must be non-negative")
    if (c > t).any():
        i, u = np.argwhere(c > t)[0]
        raise DatasetError(f"input_count: unit {int(u)} fired {int(c[i, u])} times in input "
                           f"{int(i)}, which has {int(t[i, u])} events")
    attrs = {"spatial": "token", "source": "from_input_counts", **kwargs.pop("attrs", {})}
    ds = make_dataset(c.sum(0), t.sum(0), network=network, layer=layer, attrs=attrs, **kwargs)
    stats = input_count_sums(c, t)
    layer_of = np.char.add(np.char.add(ds["network"].values.astype(str), "/"),
                           ds["layer"].values.astype(str))
    for key in dict.fromkeys(layer_of.tolist()):
        cols = layer_of == key
        total = c[:, cols].sum(1)
        tl = t[:, cols][:, 0]
        stats.setdefault("layer_count_sq", np.zeros(c.shape[1], dtype=np.int64))[cols] = \
            (total * total).sum()
        stats.setdefault("layer_count_n", np.zeros(c.shape[1], dtype=np.int64))[cols] = \
            (total * tl).sum()
        stats.setdefault("layer_count", np.zeros(c.shape[1], dtype=np.int64))[cols] = total.sum()
    for name, values in stats.items():
        ds[name] = ("unit", values.astype(np.int64))
    return validate(ds)


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
