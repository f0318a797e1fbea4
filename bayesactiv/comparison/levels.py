"""The levels a comparison contrasts: collecting the inputs, checking them, matching groups.

:func:`collect` turns what :func:`bayesactiv.compare` was given into datasets (and fits);
:func:`check_levels` validates them; :func:`check_matching` and :func:`contrast_table`
pair every group of a level with the reference group it is compared against.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data import DatasetError, unit_ids, validate
from bayesactiv.data.checks import ArgumentError

__all__ = [
    "MINUS",
    "check_levels",
    "check_matching",
    "check_thresholds",
    "coerce_reference",
    "collect",
    "contrast_table",
    "group_table",
    "is_fit",
    "keep_last_layers",
    "level_label",
    "level_values",
    "match_rows",
    "threshold_mismatch",
]

MINUS = "\u2212"


def is_fit(obj: Any) -> bool:
    """Whether ``obj`` is a fit (a FiringFit: it has ``group_draws`` and ``ds``)."""
    return hasattr(obj, "group_draws") and hasattr(obj, "ds")


def _relabel(ds: xr.Dataset, by: str, value: Any, key: Any) -> xr.Dataset:
    """Set the ``by`` coordinate of all units of ``ds`` to ``value`` (a dict key)."""
    if by in ds.coords:
        present = list(dict.fromkeys(ds[by].values.tolist()))
        if len(present) > 1:
            raise DatasetError(
                f"{by}: the dataset under key {key!r} holds several {by}s {present}; a dict key "
                f"names one {by}, so pass such a dataset directly (not in a dict)"
            )
    if by == "epoch":
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise DatasetError(f"epoch: dict key {key!r} is not an integer epoch") from None
        values = np.full(ds.sizes["unit"], value, dtype=np.int64)
    else:
        values = np.full(ds.sizes["unit"], str(value), dtype=object)
    out = ds.assign_coords({by: ("unit", values)})
    epoch = out["epoch"].values if "epoch" in out.coords else None
    ids = unit_ids(out["network"].values, out["layer"].values, out["index"].values, epoch)
    return validate(out.assign_coords(unit=("unit", ids)))


def collect(
    datasets_or_fits: Any, by: str
) -> tuple[list[str], list[xr.Dataset], list[Any]]:
    """Normalize the input to (source names, datasets, fits)."""
    obj = datasets_or_fits
    if isinstance(obj, xr.Dataset) or is_fit(obj):
        items: list[tuple[Any, Any, bool]] = [(None, obj, False)]
    elif isinstance(obj, Mapping):
        items = [(k, v, True) for k, v in obj.items()]
    elif isinstance(obj, Sequence) and not isinstance(obj, str):
        items = [(None, v, False) for v in obj]
    else:
        raise TypeError(
            "datasets_or_fits: expected an activation dataset, a FiringFit, or a list or dict of "
            f"them, got {type(obj).__name__}"
        )
    if not items:
        raise ArgumentError("datasets_or_fits: nothing to compare (empty list or dict)")
    names, dss, fits = [], [], []
    for i, (key, item, keyed) in enumerate(items):
        if is_fit(item):
            fits.append(item)
            ds = item.ds
        elif isinstance(item, xr.Dataset):
            ds = item
        else:
            where = f"key {key!r}" if keyed else f"item {i}"
            raise TypeError(
                f"datasets_or_fits: {where} is a {type(item).__name__}, expected an activation "
                "dataset (xarray.Dataset) or a FiringFit"
            )
        validate(ds)
        if keyed:
            ds = _relabel(ds, by, key, key)
        if keyed:
            names.append(str(key))
        else:
            present = ", ".join(map(str, dict.fromkeys(ds[by].values.tolist()))) if by in ds.coords else ""
            names.append(f"dataset {i} ({by} {present})" if present else f"dataset {i}")
        dss.append(ds)
    return names, dss, fits


def threshold_mismatch(names: Sequence[str], datasets: Sequence[xr.Dataset]) -> str | None:
    """Say how the datasets' threshold rules differ, or ``None`` when they all agree.

    Two datasets agree when both their ``threshold_rule`` text and their
    ``threshold_params`` are equal.

    Parameters
    ----------
    names : sequence of str
        A name per dataset, used in the message.
    datasets : sequence of xarray.Dataset

    Returns
    -------
    str or None

    Examples
    --------
    >>> import bayesactiv as ba
    >>> a = ba.make_dataset([1], 5, network="a", layer="l")
    >>> b = ba.make_dataset([1], 5, network="b", layer="l", threshold_rule="activation > 1")
    >>> threshold_mismatch(["a", "a"], [a, a]) is None
    True
    >>> print(threshold_mismatch(["a", "b"], [a, b]))
    the datasets were thresholded differently (a: activation > 0; b: activation > 1); a difference in firing may come from the thresholds rather than the networks
    """
    rules = [
        (str(ds.attrs.get("threshold_rule", "")), _norm_params(ds.attrs.get("threshold_params", "{}")))
        for ds in datasets
    ]
    if len(set(rules)) <= 1:
        return None
    texts = [r for r, _ in rules]
    shown = texts if len(set(texts)) == len(set(rules)) else [f"{r} {p}" for r, p in rules]
    listing = "; ".join(f"{n}: {r}" for n, r in zip(names, shown, strict=True))
    return (f"the datasets were thresholded differently ({listing}); a difference in firing may "
            "come from the thresholds rather than the networks")


def check_thresholds(names: list[str], dss: list[xr.Dataset]) -> None:
    """Warn (UserWarning) when the datasets were thresholded with different rules."""
    message = threshold_mismatch(names, dss)
    if message is not None:
        warnings.warn(f"threshold_rule: {message}", UserWarning, stacklevel=3)


def _norm_params(params: Any) -> str:
    try:
        return json.dumps(json.loads(params) if isinstance(params, str) else params, sort_keys=True)
    except (TypeError, ValueError):
        return str(params)


def level_values(ds: xr.Dataset, by: str) -> list[Any]:
    """The levels of ``by`` in ``ds``: in order of appearance, epochs sorted."""
    values = list(dict.fromkeys(ds[by].values.tolist()))
    return sorted(values) if by == "epoch" else values


def coerce_reference(reference: Any, levels: list[Any], by: str) -> Any:
    """The reference level, checked against ``levels`` (default: the first)."""
    if reference is None:
        return levels[0]
    if by == "epoch":
        try:
            reference = int(reference)
        except (TypeError, ValueError):
            raise ArgumentError(f"reference: {reference!r} is not an epoch (levels: {levels})") from None
    else:
        reference = str(reference)
    if reference not in levels:
        raise ArgumentError(f"reference: {reference!r} is not among the {by}s compared: {levels}")
    return reference


def keep_last_layers(ds: xr.Dataset, keys: list[str]) -> xr.Dataset:
    """Keep only the last recorded layer of each (network, epoch) combination."""
    frame = pd.DataFrame({k: ds[k].values for k in ["layer", *keys]})
    last = frame.groupby(keys, sort=False)["layer"].transform(lambda s: list(dict.fromkeys(s))[-1])
    mask = (frame["layer"] == last).to_numpy()
    return ds.isel(unit=np.flatnonzero(mask))


def check_matching(groups: pd.DataFrame, by: str, keys: list[str], reference: Any) -> None:
    """Every level must hold the same matched-key combinations as the reference."""
    def combos(level: Any) -> set[tuple]:
        sub = groups[groups[by] == level]
        return set(map(tuple, sub[keys].to_numpy().tolist())) if keys else {()}

    ref = combos(reference)
    problems = []
    for level in dict.fromkeys(groups[by].tolist()):
        if level == reference:
            continue
        have = combos(level)
        if have != ref:
            missing = sorted(map(str, ref - have))
            extra = sorted(map(str, have - ref))
            problems.append(
                f"{by} {level!r} lacks {'/'.join(keys)} {missing} that reference {reference!r} has"
                + (f" and has {extra} that it lacks" if extra else "")
                if missing else
                f"{by} {level!r} has {'/'.join(keys)} {extra} that reference {reference!r} lacks"
            )
    if problems:
        hint = (
            "; compare the last recorded layer of each with match='last', or select common layers "
            "before comparing" if "layer" in keys else ""
        )
        raise DatasetError(f"{'/'.join(keys)}: mismatched between levels: " + "; ".join(problems) + hint)


def group_table(gd: xr.Dataset, group_by: Sequence[str]) -> pd.DataFrame:
    """The grouping keys of each group of a fit's ``group_draws()``, one row per group."""
    missing = [k for k in group_by if k not in gd.coords]
    if missing:
        raise ValueError(f"fit: group_draws() lacks the group coordinates {missing}")
    table = pd.DataFrame({k: gd[k].values for k in group_by})
    if "epoch" in table:
        table["epoch"] = table["epoch"].astype(np.int64)
    return table


def contrast_table(
    groups: pd.DataFrame, by: str, keys: list[str], levels: list[Any], reference: Any, match: str
) -> pd.DataFrame:
    """One row per (level, matched keys): positions of the level and reference groups."""
    rows = []
    ref_groups = groups[groups[by] == reference]
    for level in levels:
        if level == reference:
            continue
        lev_groups = groups[groups[by] == level]
        for _, ref_row in ref_groups.iterrows():
            sel = lev_groups
            for k in keys:
                sel = sel[sel[k] == ref_row[k]]
            if len(sel) != 1:
                raise DatasetError(
                    f"{by}: expected one group of {by} {level!r} matching {dict(ref_row[keys])}, "
                    f"found {len(sel)}"
                )
            lev_row = sel.iloc[0]
            rows.append({
                "level": level,
                "reference": reference,
                "level_pos": int(sel.index[0]),
                "ref_pos": int(ref_row.name),
                **{k: ref_row[k] for k in keys},
                **({"layer": lev_row["layer"], "reference_layer": ref_row["layer"]}
                   if match == "last" else {}),
            })
    table = pd.DataFrame(rows)
    table["level_label"] = [level_label(by, v) for v in table["level"]]
    table["reference_label"] = [level_label(by, v) for v in table["reference"]]
    table["subject"] = [_subject(by, row, keys, match) for _, row in table.iterrows()]
    table["contrast"] = [
        f"{_short_subject(by, row, keys, match)}: {row['level_label']} {MINUS} {row['reference_label']}"
        for _, row in table.iterrows()
    ]
    return table


def level_label(by: str, value: Any) -> str:
    """How a level is named in verdicts: ``"epoch 5"`` or the network/layer name."""
    return f"epoch {value}" if by == "epoch" else str(value)


def _subject(by: str, row: pd.Series, keys: list[str], match: str) -> str:
    parts = []
    if match == "last":
        if row["layer"] == row["reference_layer"]:
            parts.append(f"of the last recorded layer ({row['layer']})")
        else:
            parts.append(f"of the last recorded layer ({row['layer']} vs {row['reference_layer']})")
    elif "layer" in keys:
        parts.append(f"of layer {row['layer']}")
    if "network" in keys:
        parts.append(f"{'of' if not parts else 'in'} network {row['network']}")
    if "epoch" in keys:
        parts.append(f"at epoch {row['epoch']}")
    return " ".join(parts) if parts else "overall"


def _short_subject(by: str, row: pd.Series, keys: list[str], match: str) -> str:
    parts = []
    if "network" in keys:
        parts.append(str(row["network"]))
    if match == "last":
        parts.append("last" if row["layer"] == row["reference_layer"]
                     else f"{row['layer']}|{row['reference_layer']}")
    elif "layer" in keys:
        parts.append(str(row["layer"]))
    label = "/".join(parts)
    if "epoch" in keys:
        label += f"@{row['epoch']}"
    return label or "all"


def match_rows(frame: pd.DataFrame, group_by: Sequence[str], key: tuple) -> np.ndarray:
    """Units (rows of ``frame``) whose ``group_by`` values equal ``key``."""
    mask = np.ones(len(frame), dtype=bool)
    for k, v in zip(group_by, key, strict=True):
        mask &= (frame[k] == v).to_numpy()
    return mask


def check_levels(names: list[str], dss: list[xr.Dataset], by: str) -> None:
    """Datasets of several levels must carry ``by`` (for epochs) and distinct unit ids."""
    if by == "epoch" and not all("epoch" in ds.coords for ds in dss):
        lacking = [n for n, ds in zip(names, dss, strict=True) if "epoch" not in ds.coords]
        raise DatasetError(
            f"epoch: {', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no epoch "
            "coordinate; pass a dict epoch -> dataset or build datasets with epoch=..."
        )
    if len(dss) > 1:
        ids = np.concatenate([ds["unit"].values.astype(str) for ds in dss])
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            clash = uniq[counts > 1][:3].tolist()
            raise DatasetError(
                f"unit: the datasets share unit ids {clash} (the same network, layer"
                f"{', epoch' if 'epoch' in dss[0].coords else ''} and index); name each {by} by "
                f"passing a dict {by} -> dataset"
            )
