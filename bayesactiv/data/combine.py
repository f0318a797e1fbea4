"""Concatenating activation datasets along ``unit``: :func:`combine`."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr

from bayesactiv.data.checks import check_choice
from bayesactiv.data.contract import (
    LAYER_CLUSTER_VARS,
    DatasetError,
    dense_cluster_stats,
    validate,
)
from bayesactiv.data.files import digest

__all__ = ["combine"]

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

    The ``cluster_*`` statistics of clustered events are per unit; a dataset of dense
    layers combined with clustered ones gets the values of one event per input.

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
    bayesactiv.data.contract.DatasetError: datasets: they do not line up: window_count (only 1 of the 2 datasets have it); pass mismatch='drop' to drop what does not line up
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
    if any("cluster_n" in ds.data_vars for ds in datasets):
        # a dataset of dense layers: each input is a cluster of one event
        datasets = [ds if "cluster_n" in ds.data_vars else ds.assign(
            {k: ("unit", v) for k, v in dense_cluster_stats(ds["count"].values,
                                                            ds["n"].values).items()})
            for ds in datasets]
    if any("layer_count" in ds.data_vars for ds in datasets):  # -1: not streamed
        datasets = [ds if "layer_count" in ds.data_vars else ds.assign(
            {k: ("unit", np.full(ds.sizes["unit"], -1, dtype=np.int64))
             for k in LAYER_CLUSTER_VARS}) for ds in datasets]
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
              if len({digest(ds[c].values) if c in ds.coords else None for ds in datasets}) > 1]
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
