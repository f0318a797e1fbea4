"""Merging partial recordings of the same units over disjoint inputs: :func:`merge`.

A recording is a sum over its inputs, so recordings of the same units over consecutive
shards of the inputs merge exactly into the recording of all of them: counts, events, zeros
and the cluster sums add; minima and maxima take the extremes; the moments merge with the
parallel formulas of Chan, Golub and LeVeque (1979); top-k lists merge with the event
numbers shifted by the events before each part; histograms add when their bin edges agree;
window counts and kept events concatenate in input order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import xarray as xr

from bayesactiv.data.contract import CLUSTER_VARS, LAYER_CLUSTER_VARS, DatasetError, validate

__all__ = ["combine_moments", "merge", "shape_statistics"]

# attributes that must agree for the parts to be parts of one recording
_SAME_ATTRS = ("threshold_rule", "threshold_params", "spatial", "layer_spatial", "window_size",
               "network")
_SUMS = ("count", "n", "act_zero", *CLUSTER_VARS)


def merge(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """Merge recordings of the same units over disjoint, consecutive shards of the inputs.

    The parts are taken in input order (shard 0 first). The result equals one recording of
    all the inputs: ``count``, ``n``, ``act_zero`` and the cluster sums exactly; the moments
    (``act_mean``, ``act_var``, ``act_skewness``, ``act_kurtosis``) to float rounding; the
    top-k lists exactly in their values (ties keep the earlier event, as a recording does);
    ``window_count``, ``fired`` and its ``sample`` coordinates in input order.

    Parameters
    ----------
    parts : sequence of xarray.Dataset
        Valid activation datasets with the same units (same ``unit`` coordinate, in the
        same order), recorded under the same threshold rule, thresholds, window size and
        event definition, with the same histogram bin edges.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    DatasetError
        When the parts cannot be merged exactly, naming the part and the reason: other
        units, another threshold (a rule calibrated on each shard separately, such as
        ``FractionOfMax``, gives each shard its own), other bin edges, or a part before the
        last whose events do not fill whole windows (its open window was not kept).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> a = ba.make_dataset([1, 4], 10, network="n", layer="l")
    >>> b = ba.make_dataset([2, 0], 5, network="n", layer="l")
    >>> m = ba.merge([a, b])
    >>> m["count"].values.tolist(), m["n"].values.tolist()
    ([3, 4], [15, 15])
    """
    parts = [validate(p) for p in parts]
    if not parts:
        raise DatasetError("parts: nothing to merge")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    for i, p in enumerate(parts[1:], start=1):
        _check_compatible(first, p, i)
    for i, p in enumerate(parts[:-1]):
        _check_whole_windows(p, i)
    out = first.copy()
    for name in _SUMS:
        if name in first:
            out[name] = sum(p[name] for p in parts)
    for name in LAYER_CLUSTER_VARS:  # -1: not streamed (dense layers), in every part alike
        if name in first:
            values = [p[name] for p in parts]
            out[name] = xr.where(values[0] < 0, values[0], sum(values))
    if "act_min" in first:
        out["act_min"] = _extreme(parts, "act_min", np.minimum)
        out["act_max"] = _extreme(parts, "act_max", np.maximum)
    if "act_mean" in first:
        _merge_moments(out, parts)
    if "topk_value" in first:
        _merge_topk(out, parts)
    if "hist_count" in first:
        out["hist_count"] = sum(p["hist_count"] for p in parts)
    if "window_count" in first:
        out = out.drop_vars("window_count")
        out["window_count"] = xr.concat([p["window_count"] for p in parts], dim="window")
    if "fired" in first:
        out = _concat_events(out, parts)
    return validate(out)


def _check_compatible(first: xr.Dataset, other: xr.Dataset, i: int) -> None:
    where = f"parts[{i}]"
    if not np.array_equal(first["unit"].values, other["unit"].values):
        raise DatasetError(f"{where}: other units than parts[0] (merge records the same units "
                           "over other inputs; combine() concatenates other units)")
    for key in _SAME_ATTRS:
        if first.attrs.get(key) != other.attrs.get(key):
            raise DatasetError(f"{where}: attribute {key!r} is {other.attrs.get(key)!r}, "
                               f"parts[0] has {first.attrs.get(key)!r}")
    names = set(first.data_vars)
    if set(other.data_vars) != names:
        diff = sorted(names.symmetric_difference(other.data_vars))
        raise DatasetError(f"{where}: other variables than parts[0] ({', '.join(diff)})")
    if "threshold" in first and not np.array_equal(first["threshold"].values,
                                                   other["threshold"].values, equal_nan=True):
        rule = json.loads(first.attrs.get("threshold_params", "{}")).get("rule", "the rule")
        raise DatasetError(f"{where}: other per-unit thresholds than parts[0] ({rule} was "
                           "calibrated on each shard; fix the thresholds before recording, "
                           "e.g. record every shard with the thresholds of one calibration)")
    if "hist_edges" in first and not np.array_equal(first["hist_edges"].values,
                                                    other["hist_edges"].values):
        raise DatasetError(f"{where}: other histogram bin edges than parts[0] (record every "
                           "shard with the same hist_range)")
    if "topk_value" in first and first.sizes["rank"] != other.sizes["rank"]:
        raise DatasetError(f"{where}: top-k of {other.sizes['rank']} ranks, parts[0] has "
                           f"{first.sizes['rank']}")


def _check_whole_windows(p: xr.Dataset, i: int) -> None:
    if "window_count" not in p:
        return
    w = int(p.attrs["window_size"])
    covered = p.sizes["window"] * w
    short = p["n"].values != covered
    if short.any():
        unit = str(p["unit"].values[np.flatnonzero(short)[0]])
        raise DatasetError(f"parts[{i}]: unit {unit} has {int(p['n'].values[short][0])} events, "
                           f"not the {covered} of its {p.sizes['window']} whole windows of "
                           f"{w}: the open window at the end of a shard is not kept, so only "
                           "shards of whole windows merge exactly (make each shard but the "
                           "last a multiple of window_size)")


def _extreme(parts: list[xr.Dataset], name: str, op) -> xr.DataArray:
    values = parts[0][name].values
    for p in parts[1:]:
        values = op(values, p[name].values)  # NaN (a non-finite value seen) propagates
    return parts[0][name].copy(data=values)


def combine_moments(na, a, nb, b):
    """Mean and centred power sums ``(mean, M2, M3, M4)`` of ``na`` events and of ``nb``
    others, merged (Chan, Golub and LeVeque 1979; Pébay 2008): numpy arrays or torch tensors,
    per unit; ``na + nb`` must not be 0.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0, 4.0, 8.0])
    >>> def central(v):
    ...     d = v - v.mean()
    ...     return v.mean(), (d**2).sum(), (d**3).sum(), (d**4).sum()
    >>> merged = combine_moments(1, central(x[:1]), 3, central(x[1:]))
    >>> bool(np.allclose(merged, central(x)))
    True
    """
    mean, m2, m3, m4 = a
    mb, m2b, m3b, m4b = b
    n = na + nb
    delta = mb - mean
    dn = delta / n
    m4 = (m4 + m4b + delta * dn ** 3 * na * nb * (na * na - na * nb + nb * nb)
          + 6 * dn ** 2 * (na * na * m2b + nb * nb * m2)
          + 4 * dn * (na * m3b - nb * m3))
    m3 = (m3 + m3b + delta * dn ** 2 * na * nb * (na - nb)
          + 3 * dn * (na * m2b - nb * m2))
    m2 = m2 + m2b + delta * dn * na * nb
    mean = mean + dn * nb
    return mean, m2, m3, m4


def _merge_moments(out: xr.Dataset, parts: list[xr.Dataset]) -> None:
    """The parts' moments merged pairwise by :func:`combine_moments` (units that saw no
    event in either part keep zeros)."""
    n = parts[0]["n"].values.astype(np.float64)
    moments = _central(parts[0], n)
    for p in parts[1:]:
        nb = p["n"].values.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            merged = combine_moments(n, moments, nb, _central(p, nb))
        n = n + nb
        moments = tuple(np.where(n > 0, v, 0.0) for v in merged)
    mean, m2, m3, m4 = moments
    skew, kurt = shape_statistics(m2, m3, m4, n)
    var = np.maximum(m2 / np.maximum(n, 1), 0.0)
    for name, values in (("act_mean", mean), ("act_var", var), ("act_skewness", skew),
                         ("act_kurtosis", kurt)):
        out[name] = out[name].copy(data=values)


def shape_statistics(m2: np.ndarray, m3: np.ndarray, m4: np.ndarray, n_events
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Skewness and Fisher excess kurtosis from centred power sums of ``n_events`` events
    (an int, or per unit; NaN for a constant unit).

    Examples
    --------
    >>> skew, kurt = shape_statistics(np.array([2.0]), np.array([0.0]), np.array([2.0]), 2)
    >>> float(skew[0]), float(kurt[0])  # two events at -1 and +1
    (0.0, -2.0)
    """
    n = np.maximum(n_events, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m2 = m2 / n
        m3 = m3 / n
        m4 = m4 / n
        positive = m2 > 0
        skew = np.where(positive, m3 / np.where(positive, m2, 1.0) ** 1.5, np.nan)
        kurt = np.where(positive, m4 / np.where(positive, m2, 1.0) ** 2 - 3.0, np.nan)
    return skew, kurt
def _central(p: xr.Dataset, n: np.ndarray):
    """(mean, M2, M3, M4) of one part from its mean, variance, skewness and kurtosis."""
    var = p["act_var"].values
    m2 = var * n
    sd3 = var**1.5
    m3 = np.where(var > 0, np.nan_to_num(p["act_skewness"].values) * sd3 * n, 0.0)
    m4 = np.where(var > 0, (np.nan_to_num(p["act_kurtosis"].values) + 3.0) * var * var * n, 0.0)
    mean = np.where(n > 0, p["act_mean"].values.astype(np.float64), 0.0)  # no events: weight 0
    return mean, np.where(n > 0, m2, 0.0), np.where(n > 0, m3, 0.0), np.where(n > 0, m4, 0.0)


def _merge_topk(out: xr.Dataset, parts: list[xr.Dataset]) -> None:
    """Each unit's k largest values over the parts, event numbers shifted by the events of
    the parts before; ties keep the earlier event."""
    k = parts[0].sizes["rank"]
    values, events = [], []
    offset = np.zeros(parts[0].sizes["unit"], dtype=np.int64)
    for p in parts:
        v = p["topk_value"].transpose("unit", "rank").values
        e = p["topk_sample"].transpose("unit", "rank").values
        missing = e < 0
        values.append(np.where(missing, -np.inf, v))
        events.append(np.where(missing, np.iinfo(np.int64).max, e + offset[:, None]))
        offset += p["n"].values.astype(np.int64)
    v = np.concatenate(values, axis=1)
    e = np.concatenate(events, axis=1)
    order = np.lexsort((e, -v), axis=1)[:, :k]  # by value descending, then event ascending
    top_v = np.take_along_axis(v, order, axis=1)
    top_e = np.take_along_axis(e, order, axis=1)
    missing = np.isneginf(top_v)
    out["topk_value"] = (("unit", "rank"), np.where(missing, np.nan, top_v))
    out["topk_sample"] = (("unit", "rank"), np.where(missing, -1, top_e).astype(np.int64))


def _concat_events(out: xr.Dataset, parts: list[xr.Dataset]) -> xr.Dataset:
    """``fired`` and its ``sample`` coordinates in input order: ``sample`` numbered anew;
    ``input`` (tokens, positions) shifted past the inputs of the parts before."""
    fired = [p["fired"] for p in parts]
    coords = {}
    sample_coords = [c for c in parts[0]["fired"].coords if c != "sample"
                     and parts[0][c].dims == ("sample",)]
    for c in sample_coords:
        values = [p[c].values for p in parts]
        if c == "input":
            shifted, start = [], 0
            for v in values:
                shifted.append(v + start)
                start += int(v.max()) + 1 if v.size else 0
            values = shifted
        coords[c] = ("sample", np.concatenate(values))
    total = sum(f.sizes["sample"] for f in fired)
    if any(hasattr(f.data, "dask") for f in fired):  # out-of-core parts stay out of core
        import dask.array as da

        data = da.concatenate([f.transpose("sample", "unit").data for f in fired], axis=0)
    else:
        data = np.concatenate([f.transpose("sample", "unit").values for f in fired], axis=0)
    drop = ["fired", "sample", *sample_coords]
    out = out.drop_vars([d for d in drop if d in out.variables])
    out = out.assign_coords(sample=("sample", np.arange(total)), **coords)
    out["fired"] = (("sample", "unit"), data)
    return out
