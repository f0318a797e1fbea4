"""Posterior differences between networks, layers or training epochs.

:func:`compare` fits the activation datasets of two or more *levels* (networks,
layers of one network, or training epochs of one network) jointly with one
hierarchical firing model, and returns for each quantity

* ``mfr`` — mean firing rate of a layer's units,
* ``mf`` — mean Fano factor implied by the model,
* ``frac_dead`` — fraction of units whose firing probability is below ``epsilon``,
* ``mu`` — population mean of the firing probabilities of a layer,
* ``kappa`` — their population concentration,

the posterior of each difference *level minus reference* (matched on the other
grouping keys: the same layer, or the last recorded layer, or the same network)
with an equal-tailed credible interval and the probability of direction, beside
the frequentist counterpart: a percentile bootstrap of the same difference that
resamples inputs (or window blocks) within each dataset independently.

Examples
--------
>>> import bayesactiv as ba
>>> a = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="A", layer="fc")
>>> b = ba.make_dataset([5, 8, 10, 11, 13, 15, 17, 19], 20, network="B", layer="fc")
>>> cmp = ba.compare([a, b], draws=2000, tune=1000, chains=2, seed=1)
>>> print(cmp.verdicts()[0])  # doctest: +ELLIPSIS
MFR of layer fc: B − A = 0.3... (90% CrI ...; P(>0) = 1.00): higher in B.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data.checks import (
    ArgumentError,
    check_choice,
    check_int,
    check_prob,
    check_seed,
)
from bayesactiv.data.dataset import DatasetError, combine, unit_ids, validate

__all__ = ["QUANTITIES", "Comparison", "compare", "threshold_mismatch"]

#: Quantities :func:`compare` knows, with the words used in verdicts.
QUANTITIES: dict[str, str] = {
    "mfr": "MFR",
    "mf": "MF",
    "frac_dead": "Fraction of dead units",
    "mu": "Population mean μ",
    "kappa": "Concentration κ",
}
_BY = ("network", "layer", "epoch")
_DEFAULT_QUANTITIES = ("mfr", "mf", "frac_dead", "mu", "kappa")
_MINUS = "\u2212"
_KAPPA_NOTE = (
    "no simple frequentist counterpart: kappa is the concentration of the hierarchical "
    "model's population of firing probabilities, not a statistic of the data (its "
    "method-of-moments estimate is unbounded when the between-unit variance is at or below "
    "the binomial noise)"
)


# ---------------------------------------------------------------- the result


class Comparison:
    """Posterior and bootstrap differences between levels, returned by :func:`compare`.

    Attributes
    ----------
    result : xarray.Dataset
        Dims ``(contrast, quantity)``: posterior ``mean``, ``low``, ``high`` (equal-tailed
        interval of mass ``attrs["prob"]``), ``pd`` (probability of direction),
        ``p_positive`` and ``p_negative`` (P(difference > 0), P(difference < 0); draws
        exactly 0, as a fraction of dead units can give, count for neither), and the bootstrap ``boot_estimate``,
        ``boot_low``, ``boot_high`` (percentile interval); ``boot_note`` (quantity) says
        why a bootstrap value is NaN.
    fit : FiringFit
        The joint fit of all levels.
    differences : xarray.Dataset
        Posterior draws of each difference, one variable per quantity, dims
        ``(chain, draw, contrast)``.
    boot_differences : xarray.Dataset
        Bootstrap replicates of each difference, dims ``(resample, contrast)``.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> a = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="A", layer="fc")
    >>> b = ba.make_dataset([5, 8, 10, 11, 13, 15, 17, 19], 20, network="B", layer="fc")
    >>> cmp = ba.compare({"A": a, "B": b}, draws=2000, tune=1000, chains=2, seed=1)
    >>> cmp  # doctest: +NORMALIZE_WHITESPACE
    <Comparison by='network' reference='A' contrasts=1
     quantities=['mfr', 'mf', 'frac_dead', 'mu', 'kappa']>
    >>> bool(cmp.to_dataframe().loc[("fc: B − A", "mfr"), "mean"] > 0.2)
    True
    """

    def __init__(
        self,
        result: xr.Dataset,
        fit: Any,
        differences: xr.Dataset,
        boot_differences: xr.Dataset,
    ) -> None:
        self.result = result
        self.fit = fit
        self.differences = differences
        self.boot_differences = boot_differences

    def __repr__(self) -> str:
        a = self.result.attrs
        return (
            f"<Comparison by={a['by']!r} reference={a['reference']!r} "
            f"contrasts={self.result.sizes['contrast']} quantities={self.result['quantity'].values.tolist()}>"
        )

    # ------------------------------------------------------------ views

    def to_dataframe(self) -> pd.DataFrame:
        """The result table, one row per (contrast, quantity).

        Returns
        -------
        pandas.DataFrame
            Columns ``level``, ``reference``, the matched keys, ``mean``, ``low``, ``high``,
            ``pd``, ``p_positive``, ``p_negative``, ``boot_estimate``, ``boot_low``, ``boot_high``,
            ``boot_note``, ``verdict``.

        Examples
        --------
        >>> import bayesactiv as ba
        >>> a = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="A", layer="fc")
        >>> b = ba.make_dataset([5, 8, 10, 11, 13, 15, 17, 19], 20, network="B", layer="fc")
        >>> cmp = ba.compare([a, b], draws=2000, tune=1000, chains=2, seed=1)
        >>> df = cmp.to_dataframe()
        >>> df.index.tolist()  # doctest: +NORMALIZE_WHITESPACE
        [('fc: B − A', 'mfr'), ('fc: B − A', 'mf'), ('fc: B − A', 'frac_dead'),
         ('fc: B − A', 'mu'), ('fc: B − A', 'kappa')]
        >>> bool((df["low"] <= df["high"]).all())
        True
        >>> bool(df["boot_estimate"].isna().all())  # no fired events or windows to resample
        True
        """
        res = self.result
        df = res.drop_vars("boot_note").to_dataframe()
        notes = dict(zip(res["quantity"].values.tolist(), res["boot_note"].values.tolist(), strict=True))
        df["boot_note"] = [notes[q] for q in df.index.get_level_values("quantity")]
        df["verdict"] = [
            self._verdict(c, q) for c, q in zip(df.index.get_level_values("contrast"),
                                                df.index.get_level_values("quantity"), strict=True)
        ]
        return df

    def verdicts(self, quantities: Sequence[str] | None = None) -> list[str]:
        """One plain-language line per (contrast, quantity).

        Each line states the posterior mean difference, its credible interval and the
        probability of direction; it calls a difference "higher" or "lower" only when
        the interval excludes 0, and otherwise says no difference is shown at this level.
        It makes no causal or general claim.

        Parameters
        ----------
        quantities : sequence of str, optional
            Restrict to these quantities (default: all compared).

        Returns
        -------
        list of str

        Examples
        --------
        >>> import bayesactiv as ba
        >>> a = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="A", layer="fc")
        >>> b = ba.make_dataset([5, 8, 10, 11, 13, 15, 17, 19], 20, network="B", layer="fc")
        >>> cmp = ba.compare([a, b], draws=2000, tune=1000, chains=2, seed=1)
        >>> print("\\n".join(cmp.verdicts(["mfr", "mu"])))  # doctest: +ELLIPSIS
        MFR of layer fc: B − A = 0.3... (90% CrI ...; P(>0) = 1.00): higher in B.
        Population mean μ of layer fc: B − A = ... (90% CrI ...; P(>0) = ...): higher in B.
        """
        qs = list(self.result["quantity"].values) if quantities is None else list(quantities)
        unknown = [q for q in qs if q not in self.result["quantity"].values]
        if unknown:
            raise ArgumentError(
                f"quantities: {unknown} were not compared; available: "
                f"{self.result['quantity'].values.tolist()}"
            )
        return [self._verdict(c, q) for q in qs for c in self.result["contrast"].values]

    def _verdict(self, contrast: str, quantity: str) -> str:
        r = self.result.sel(contrast=contrast, quantity=quantity)
        prob = float(self.result.attrs["prob"])
        mean, low, high = float(r["mean"]), float(r["low"]), float(r["high"])
        p_pos = float(r["p_positive"])
        p_neg = float(r["p_negative"]) if "p_negative" in r else 1 - p_pos
        level = str(r["level_label"].values)
        ref = str(r["reference_label"].values)
        subject = str(r["subject"].values)
        dec = _decimals(low, high)
        head = (
            f"{QUANTITIES[quantity]} {subject}: {level} {_MINUS} {ref} = {_fmt(mean, dec)} "
            f"({prob:.0%} CrI {_fmt(low, dec)} to {_fmt(high, dec)}; "
        )
        where = _where(self.result.attrs["by"], level)
        if low > 0:
            return head + f"P(>0) = {p_pos:.2f}): higher {where}."
        if high < 0:
            return head + f"P(<0) = {p_neg:.2f}): lower {where}."
        sign, p = (">", p_pos) if p_pos >= p_neg else ("<", p_neg)
        return head + f"P({sign}0) = {p:.2f}): interval includes 0: no difference shown at this level."

    def plot(
        self,
        quantities: Sequence[str] | None = None,
        *,
        path: str | None = None,
        **plot_kwargs: Any,
    ) -> Any:
        """Forest plot of the posterior differences, one row of panels per quantity.

        Uses :func:`arviz_plots.plot_forest` (equal-tailed intervals: thick 50%, thin
        ``prob``; point = posterior mean), with a dashed line at 0 in every panel. Each
        quantity gets its own x axis, as their scales differ.

        Parameters
        ----------
        quantities : sequence of str, optional
            Which quantities to plot (default: all compared).
        path : str, optional
            Save the figure there (PNG, PDF, ...).
        **plot_kwargs
            Passed to :func:`arviz_plots.plot_forest`.

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> import os, tempfile
        >>> import matplotlib.pyplot as plt
        >>> import bayesactiv as ba
        >>> a = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="A", layer="fc")
        >>> b = ba.make_dataset([5, 8, 10, 11, 13, 15, 17, 19], 20, network="B", layer="fc")
        >>> cmp = ba.compare([a, b], draws=2000, tune=1000, chains=2, seed=1)
        >>> path = os.path.join(tempfile.mkdtemp(), "compare.png")
        >>> fig = cmp.plot(["mfr", "mf"], path=path)
        >>> type(fig).__name__, os.path.exists(path)
        ('Figure', True)
        >>> plt.close(fig)
        """
        import arviz_plots as azp

        qs = list(self.differences.data_vars) if quantities is None else list(quantities)
        unknown = [q for q in qs if q not in self.differences.data_vars]
        if unknown:
            raise ArgumentError(f"quantities: {unknown} were not compared; available: "
                                f"{list(self.differences.data_vars)}")
        by, ref = self.result.attrs["by"], self.result.attrs["reference"]
        ref_label = _level_label(by, ref)
        rows, level = _row_labels(self.result["contrast"].values,
                                  self.result["level_label"].values, ref_label)
        diffs = self.differences[qs]
        keep = [c for c in diffs.coords if c not in ("chain", "draw", "contrast")]
        diffs = diffs.drop_vars(keep).rename({q: QUANTITIES[q] for q in qs})
        row_of = dict(zip(self.result["contrast"].values.tolist(), rows, strict=True))
        diffs = diffs.assign_coords(contrast=[row_of[c] for c in diffs["contrast"].values.tolist()])
        prob = float(self.result.attrs["prob"])
        plot_kwargs.setdefault("ci_kind", "eti")
        plot_kwargs.setdefault("ci_probs", (0.5, prob))
        plot_kwargs.setdefault("point_estimate", "mean")
        plot_kwargs.setdefault("combined", True)
        plot_kwargs.setdefault("labels", ["contrast"])
        plot_kwargs.setdefault("rows", ["__variable__"])
        visuals = dict(plot_kwargs.pop("visuals", None) or {})
        visuals.setdefault("ticklabels", False)  # one "contrast" tick per row panel otherwise clashes
        n_contrast = diffs.sizes["contrast"]
        figure_kwargs = dict(plot_kwargs.pop("figure_kwargs", {}))
        figure_kwargs.setdefault("figsize", (9, 0.9 + len(qs) * (0.8 + 0.4 * n_contrast)))
        figure_kwargs.setdefault("figsize_units", "inches")
        figure_kwargs.setdefault("sharey", "row")
        pc = azp.plot_forest(
            xr.DataTree.from_dict({"posterior": diffs}),
            backend="matplotlib",
            figure_kwargs=figure_kwargs,
            visuals=visuals,
            **plot_kwargs,
        )
        fig = pc.get_viz("figure")
        label_axes = []
        for q in qs:
            name = QUANTITIES[q]
            forest = pc.get_target(name, {"column": "forest"})
            labels = pc.get_target(name, {"column": "labels"})
            forest.axvline(0.0, color="0.4", linestyle="--", linewidth=0.8, zorder=0)
            forest.set_title(f"{name}: {level} {_MINUS} {ref_label}", fontsize=10, loc="left")
            labels.xaxis.set_visible(False)
            labels.spines["bottom"].set_visible(False)
            label_axes.append(labels)
        height = fig.get_size_inches()[1]
        if fig.get_layout_engine() is None:
            fig.subplots_adjust(hspace=0.9 / (0.8 + 0.4 * n_contrast) * 1.6, top=1 - 0.75 / height,
                                bottom=0.35 / height)
            if len(plot_kwargs["labels"]) == 1:  # one column of row labels, ours
                _fit_label_column(fig, label_axes)
        fig.suptitle(
            f"Posterior differences by {by} ({prob:.0%} and 50% equal-tailed intervals, "
            "point = mean)",
            fontsize=11, y=1 - 0.2 / height,
        )
        if path is not None:
            fig.savefig(path, dpi=110, bbox_inches="tight")
        return fig


def _row_labels(contrasts: Sequence[str], level_labels: Sequence[str], ref_label: str
                ) -> tuple[list[str], str]:
    """Row labels of the forest plot and the level named in the panel titles.

    A contrast is named ``"<subject>: <level> − <reference>"``; the reference is in
    every panel title, and so is the level when there is only one, so the rows keep
    just what differs between them (the full contrast names if shortening would make
    two rows alike).
    """
    contrasts = [str(c) for c in contrasts]
    rows = [c.removesuffix(f" {_MINUS} {ref_label}") for c in contrasts]
    level = "level"
    distinct = list(dict.fromkeys(str(v) for v in level_labels))
    if len(distinct) == 1:
        stripped = [r.removesuffix(f": {distinct[0]}") for r in rows]
        if len(set(stripped)) == len(stripped):
            rows, level = stripped, distinct[0]
    if len(set(rows)) != len(rows):
        return contrasts, "level"
    return rows, level


def _fit_label_column(fig: Any, label_axes: list[Any], *, min_forest_in: float = 4.0) -> None:
    """Widen the label column of a forest plot so that no row label runs under its panel.

    The labels start at the left edge of their axes; the gridspec's width ratios are
    set from the widest label, and the figure is widened when the panels would get
    narrower than ``min_forest_in`` inches.
    """
    if not label_axes or not any(ax.texts for ax in label_axes):
        return
    for ax in label_axes:
        ax.set_xlim(0.0, 1.0)
        for text in ax.texts:
            text.set_x(0.0)
            text.set_horizontalalignment("left")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    dpi = fig.dpi
    label_in = max(t.get_window_extent(renderer).width for ax in label_axes for t in ax.texts) / dpi
    label_in += 0.08
    left, right, gap = 0.12, 0.3, 0.25
    width, height = fig.get_size_inches()
    forest_in = width - left - right - gap - label_in
    if forest_in < min_forest_in:
        forest_in = min_forest_in
        width = left + label_in + gap + forest_in + right
        fig.set_size_inches(width, height)
    grid = label_axes[0].get_subplotspec().get_gridspec()
    grid.set_width_ratios([label_in, forest_in])
    fig.subplots_adjust(left=left / width, right=1 - right / width,
                        wspace=2 * gap / (label_in + forest_in))


def _where(by: str, level: str) -> str:
    return f"at {level}" if by == "epoch" else f"in {level}"


def _decimals(low: float, high: float) -> int:
    width = abs(high - low)
    if not np.isfinite(width) or width == 0:
        return 2
    magnitude = math.floor(math.log10(width))
    if width < 1:
        return int(min(6, max(2, -magnitude)))
    return int(max(0, 1 - magnitude))


def _fmt(x: float, dec: int) -> str:
    if not np.isfinite(x):
        return "nan"
    s = f"{x:.{dec}f}"
    if s.startswith("-"):
        s = s[1:] if float(s) == 0 else _MINUS + s[1:]
    return s


# ---------------------------------------------------------------- input handling


def _is_fit(obj: Any) -> bool:
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


def _collect(
    datasets_or_fits: Any, by: str
) -> tuple[list[str], list[xr.Dataset], list[Any]]:
    """Normalize the input to (source names, datasets, fits)."""
    obj = datasets_or_fits
    if isinstance(obj, xr.Dataset) or _is_fit(obj):
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
        if _is_fit(item):
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


def _check_thresholds(names: list[str], dss: list[xr.Dataset]) -> None:
    message = threshold_mismatch(names, dss)
    if message is not None:
        warnings.warn(f"threshold_rule: {message}", UserWarning, stacklevel=3)


def _norm_params(params: Any) -> str:
    try:
        return json.dumps(json.loads(params) if isinstance(params, str) else params, sort_keys=True)
    except (TypeError, ValueError):
        return str(params)


def _levels(ds: xr.Dataset, by: str) -> list[Any]:
    values = list(dict.fromkeys(ds[by].values.tolist()))
    return sorted(values) if by == "epoch" else values


def _coerce_reference(reference: Any, levels: list[Any], by: str) -> Any:
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


def _keep_last_layers(ds: xr.Dataset, keys: list[str]) -> xr.Dataset:
    """Keep only the last recorded layer of each (network, epoch) combination."""
    frame = pd.DataFrame({k: ds[k].values for k in ["layer", *keys]})
    last = frame.groupby(keys, sort=False)["layer"].transform(lambda s: list(dict.fromkeys(s))[-1])
    mask = (frame["layer"] == last).to_numpy()
    return ds.isel(unit=np.flatnonzero(mask))


def _check_matching(groups: pd.DataFrame, by: str, keys: list[str], reference: Any) -> None:
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


# ---------------------------------------------------------------- posterior


def _run_fit(ds: xr.Dataset, model: str, group_by: tuple[str, ...], **kwargs: Any) -> Any:
    from bayesactiv.bayes.models import fit

    return fit(ds, model, group_by=group_by, **kwargs)


def _group_table(gd: xr.Dataset, group_by: Sequence[str]) -> pd.DataFrame:
    missing = [k for k in group_by if k not in gd.coords]
    if missing:
        raise ValueError(f"fit: group_draws() lacks the group coordinates {missing}")
    table = pd.DataFrame({k: gd[k].values for k in group_by})
    if "epoch" in table:
        table["epoch"] = table["epoch"].astype(np.int64)
    return table


def _contrasts(
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
    table["level_label"] = [_level_label(by, v) for v in table["level"]]
    table["reference_label"] = [_level_label(by, v) for v in table["reference"]]
    table["subject"] = [_subject(by, row, keys, match) for _, row in table.iterrows()]
    table["contrast"] = [
        f"{_short_subject(by, row, keys, match)}: {row['level_label']} {_MINUS} {row['reference_label']}"
        for _, row in table.iterrows()
    ]
    return table


def _level_label(by: str, value: Any) -> str:
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


# ---------------------------------------------------------------- bootstrap


def _window_counts(ds: xr.Dataset, window_size: int | None) -> tuple[np.ndarray | None, str]:
    """Window counts (window, unit) to resample for the Fano factor, or a reason why none."""
    if window_size is not None and "fired" in ds.data_vars:
        fired = ds["fired"].values
        nw = fired.shape[0] // window_size
        if nw < 2:
            return None, f"fewer than two windows of {window_size} events"
        wc = fired[: nw * window_size].reshape(nw, window_size, -1).sum(axis=1)
        return wc.astype(np.float64), ""
    if "window_count" in ds.data_vars:
        recorded = int(ds.attrs["window_size"])
        if window_size is not None and window_size != recorded:
            raise DatasetError(
                f"window_size: {window_size} differs from the recorded window_size={recorded} and "
                "the dataset keeps no fired events to rebuild windows from; pass "
                f"window_size=None or record with keep_events=True"
            )
        if ds.sizes["window"] < 2:
            return None, "fewer than two windows"
        return ds["window_count"].values.astype(np.float64), ""
    if "fired" in ds.data_vars:
        return None, "needs window counts: pass window_size= (the dataset keeps fired events)"
    return None, "needs window counts: record with window_size=..."


def _weights(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Multiplicities of ``n`` items drawn with replacement, ``size`` times: (size, n)."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)


def _chunks(n_resamples: int, n_items: int, n_units: int) -> list[int]:
    per = max(1, int(2e7 // max(1, n_items * max(1, n_units) // 64 + n_items)))
    per = min(per, n_resamples)
    sizes = [per] * (n_resamples // per)
    if n_resamples % per:
        sizes.append(n_resamples % per)
    return sizes


def _rate_stats(
    counts: np.ndarray, total: float, group_units: list[np.ndarray], epsilon: float,
    rng: np.random.Generator, n_resamples: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observed and resampled (MFR, frac_dead) per group from items x units counts.

    ``counts`` is (item, unit): fired events (0/1) per input, or counts per window;
    ``total`` is the events per unit covered by all items.
    """
    n_items = counts.shape[0]

    def stats(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mfr = np.stack([rates[:, u].mean(axis=1) for u in group_units], axis=1)
        dead = np.stack([(rates[:, u] < epsilon).mean(axis=1) for u in group_units], axis=1)
        return mfr, dead

    obs_mfr, obs_dead = stats(counts.sum(axis=0, keepdims=True) / total)
    mfr_parts, dead_parts = [], []
    for size in _chunks(n_resamples, n_items, counts.shape[1]):
        w = _weights(rng, n_items, size)
        m, d = stats(w @ counts / total)
        mfr_parts.append(m)
        dead_parts.append(d)
    return obs_mfr[0], obs_dead[0], np.concatenate(mfr_parts), np.concatenate(dead_parts)


def _fano_stats(
    wc: np.ndarray, group_units: list[np.ndarray], rng: np.random.Generator, n_resamples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Observed and resampled mean Fano factor per group from window counts (window, unit).

    Fano factor of a unit = variance (ddof 0, as :func:`bayesactiv.stats.baselines.fano_factor`) /
    mean of its window counts; units that never fire in the (resampled) windows have no Fano
    factor and are left out of the mean.
    """
    nw = wc.shape[0]
    sq = wc**2

    def stats(w: np.ndarray) -> np.ndarray:
        mean = w @ wc / nw
        var = w @ sq / nw - mean**2
        with np.errstate(invalid="ignore", divide="ignore"):
            fano = np.where(mean > 0, np.maximum(var, 0.0) / mean, np.nan)
        out = np.full((w.shape[0], len(group_units)), np.nan)
        for j, u in enumerate(group_units):
            sub = fano[:, u]
            ok = np.isfinite(sub)
            cnt = ok.sum(axis=1)
            out[:, j] = np.where(cnt > 0, np.where(ok, sub, 0.0).sum(axis=1) / np.maximum(cnt, 1), np.nan)
        return out

    obs = stats(np.ones((1, nw)))[0]
    parts = [stats(_weights(rng, nw, size)) for size in _chunks(n_resamples, nw, wc.shape[1])]
    return obs, np.concatenate(parts)


def _bootstrap(
    dss: list[xr.Dataset],
    groups: pd.DataFrame,
    group_by: Sequence[str],
    quantities: Sequence[str],
    epsilon: float,
    window_size: int | None,
    n_resamples: int,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    """Observed statistic (group,) and replicates (resample, group) per quantity.

    Each source dataset is resampled independently; the groups within one dataset share
    its resampled inputs (or windows).
    """
    n_groups = len(groups)
    obs = {q: np.full(n_groups, np.nan) for q in quantities}
    reps = {q: np.full((n_resamples, n_groups), np.nan) for q in quantities}
    notes = {q: "" for q in quantities}
    if "kappa" in notes:
        notes["kappa"] = _KAPPA_NOTE
    key_tuples = {tuple(row): i for i, row in enumerate(groups[list(group_by)].itertuples(index=False))}
    rate_qs = [q for q in quantities if q in ("mfr", "mu", "frac_dead")]
    for ds in dss:
        frame = pd.DataFrame({k: ds[k].values for k in group_by})
        present = [(key, i) for key, i in key_tuples.items()
                   if len(frame) and np.any(_match_rows(frame, group_by, key))]
        if not present:
            continue
        units = [np.flatnonzero(_match_rows(frame, group_by, key)) for key, _ in present]
        cols = [i for _, i in present]
        if rate_qs:
            if "fired" in ds.data_vars:
                counts, total, how = ds["fired"].values.astype(np.float64), ds.sizes["sample"], "inputs"
            elif "window_count" in ds.data_vars:
                counts = ds["window_count"].values.astype(np.float64)
                total, how = counts.shape[0] * int(ds.attrs["window_size"]), "windows"
            else:
                counts, how = None, ""
            if counts is not None and counts.shape[0] >= 2:
                o_m, o_d, r_m, r_d = _rate_stats(counts, float(total), units, epsilon, rng, n_resamples)
                for q in rate_qs:
                    o, r = (o_d, r_d) if q == "frac_dead" else (o_m, r_m)
                    obs[q][cols] = o
                    reps[q][:, cols] = r
                    if how == "windows":
                        notes[q] = notes[q] or "resampled window blocks (no fired events kept)"
            else:
                for q in rate_qs:
                    notes[q] = ("needs fired events (record with keep_events=True) or window "
                                "counts (window_size=...) to resample inputs")
        if "mf" in quantities:
            wc, why = _window_counts(ds, window_size)
            if wc is not None:
                o, r = _fano_stats(wc, units, rng, n_resamples)
                obs["mf"][cols] = o
                reps["mf"][:, cols] = r
            else:
                notes["mf"] = why
    for q in quantities:
        if q != "kappa" and np.isnan(obs[q]).any() and not notes[q]:
            notes[q] = "not defined for some groups (e.g. no unit fired in any window)"
    return obs, reps, notes


def _match_rows(frame: pd.DataFrame, group_by: Sequence[str], key: tuple) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for k, v in zip(group_by, key, strict=True):
        mask &= (frame[k] == v).to_numpy()
    return mask


# ---------------------------------------------------------------- compare


def compare(
    datasets_or_fits: Any,
    *,
    by: Literal["network", "layer", "epoch"] = "network",
    reference: Any = None,
    model: str = "beta_binomial",
    quantities: Sequence[str] = _DEFAULT_QUANTITIES,
    prob: float = 0.9,
    seed: int | None = None,
    draws: int = 1000,
    chains: int = 4,
    n_resamples: int = 2000,
    window_size: int | None = None,
    match: Literal["name", "last"] = "name",
    **fit_kwargs: Any,
) -> Comparison:
    """Posterior differences in firing between networks, layers or training epochs.

    The datasets are combined with :func:`bayesactiv.combine` and fitted jointly by one
    :func:`bayesactiv.fit` with ``group_by`` = network, layer (and epoch when present).
    For every level other than ``reference`` and every matched group (the same layer —
    or, with ``match="last"``, the last recorded layer — of the same network and epoch,
    whichever keys are not ``by``) the posterior draws of *level − reference* are
    summarised by their mean, an equal-tailed credible interval of mass ``prob`` and the
    probability of direction ``pd = max(P(diff > 0), P(diff < 0))``.

    Beside each, the frequentist counterpart: a percentile bootstrap of the plug-in
    difference, resampling inputs (``fired``) — or window blocks when only
    ``window_count`` was kept — within each dataset independently (the groups of one
    dataset share its resampled inputs). Plug-in statistics: MFR and mu = mean over units
    of count/n; frac_dead = fraction of units with count/n < ``epsilon``; MF = mean over
    units of the variance/mean (ddof 0) of window counts; kappa has none (NaN, reason in
    ``result["boot_note"]``).

    Note what the model's ``mf`` is: for the binomial models the Fano factor implied by
    independent firing, ``1 - theta`` averaged over units, so its posterior difference
    mirrors the MFR difference; the bootstrap MF is the observed Fano factor of window
    counts, which also moves with clustering of firing in input order. A gap between the
    two is a finding about the data, not a numerical error.

    Parameters
    ----------
    datasets_or_fits : Dataset, FiringFit, list or dict of them
        Two or more levels: a list of activation datasets (one per network or epoch), one
        dataset holding several levels, or a dict ``name -> dataset`` whose keys set the
        ``by`` coordinate (network name, layer name, or integer epoch). One FiringFit whose
        ``group_by`` already holds ``by`` is reused without refitting (``model``, ``draws``,
        ``chains`` and ``fit_kwargs`` are then ignored); several FiringFits are refitted
        jointly on their datasets with their model.
    by : {"network", "layer", "epoch"}
        What differs between the levels.
    reference : str or int, optional
        The level the others are compared against; default the first network or layer
        (in input order) or the earliest epoch.
    model : str
        Firing model passed to :func:`bayesactiv.fit`.
    quantities : sequence of str
        Any of ``"mfr", "mf", "frac_dead", "mu", "kappa"``. By default all five, less
        ``mu`` and ``kappa`` for the rate models that have no such parameters.
    prob : float
        Mass of the credible and bootstrap percentile intervals, in (0, 1).
    seed : int, optional
        Seeds the fit and the bootstrap.
    draws, chains : int
        Posterior draws per chain and chains, passed to :func:`bayesactiv.fit`.
    n_resamples : int
        Bootstrap resamples (0 skips the bootstrap: its columns are NaN).
    window_size : int, optional
        Events per window for the bootstrap Fano factor, built from ``fired``; default
        the recorded ``window_count``.
    match : {"name", "last"}
        Match groups of different levels on the layer name, or compare the last recorded
        layer of each network (for networks of different depth or layer names; the
        paper's "last hidden layer"). Only for ``by="network"`` or ``"epoch"``.
    **fit_kwargs
        Passed to :func:`bayesactiv.fit` (e.g. ``tune``, ``epsilon``, ``method``).

    Returns
    -------
    Comparison

    Raises
    ------
    DatasetError
        A malformed dataset, fewer than two levels, clashing unit ids, or levels whose
        layers do not match (naming them).
    ArgumentError
        A bad argument (a :class:`ValueError`), e.g. a ``prob`` outside (0, 1) or a
        ``reference`` that is not among the levels.

    Warns
    -----
    UserWarning
        When the datasets were thresholded with different rules.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> a = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="A", layer="fc")
    >>> b = ba.make_dataset([5, 8, 10, 11, 13, 15, 17, 19], 20, network="B", layer="fc")
    >>> cmp = ba.compare([a, b], draws=2000, tune=1000, chains=2, seed=1)
    >>> cmp.result["contrast"].values.tolist(), cmp.result.attrs["reference"]
    (['fc: B − A'], 'A')
    >>> mfr = cmp.result.sel(contrast="fc: B − A", quantity="mfr")  # B: 98/160, A: 45/160
    >>> bool(0.1 < mfr["low"] < mfr["mean"] < mfr["high"] < 0.5), float(mfr["pd"])
    (True, 1.0)
    """
    by = check_choice(by, "by", _BY)
    match = check_choice(match, "match", ("name", "last"))
    if match == "last" and by == "layer":
        raise ArgumentError("match: 'last' matches the last layer of each network, so it needs "
                            "by='network' or 'epoch'")
    default_quantities = quantities is _DEFAULT_QUANTITIES
    if isinstance(quantities, str):
        quantities = (quantities,)
    quantities = tuple(dict.fromkeys(quantities))
    bad = [q for q in quantities if q not in QUANTITIES]
    if bad or not quantities:
        raise ArgumentError(f"quantities: unknown {bad}; expected some of {list(QUANTITIES)}")
    prob = check_prob(prob)
    seed = check_seed(seed)
    draws = check_int(draws, "draws", minimum=1)
    chains = check_int(chains, "chains", minimum=1)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=0)
    if window_size is not None:
        window_size = check_int(window_size, "window_size", minimum=1)

    names, dss, fits = _collect(datasets_or_fits, by)
    if len(dss) > 1:
        _check_thresholds(names, dss)
    if fits:
        models = {f.model for f in fits}
        if len(models) > 1:
            raise ArgumentError(f"datasets_or_fits: the fits use different models {sorted(models)}; "
                             "compare fits of one model")
        model = fits[0].model

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
    combined = combine(dss)
    levels = _levels(combined, by)
    if len(levels) < 2:
        raise DatasetError(
            f"{by}: compare needs at least two {by}s, found {levels}; pass datasets of several "
            f"{by}s (a dict {by} -> dataset names them)"
        )
    reference = _coerce_reference(reference, levels, by)

    group_by = ["network", "layer"] + (["epoch"] if "epoch" in combined.coords else [])
    keys = [k for k in group_by if k != by and not (match == "last" and k == "layer")]
    frame = pd.DataFrame({k: combined[k].values for k in group_by}).drop_duplicates()
    if match == "name":
        _check_matching(frame, by, keys, reference)
    fit_ds = combined
    if match == "last":
        fit_ds = _keep_last_layers(combined, [k for k in group_by if k != "layer"])
        last = pd.DataFrame({k: fit_ds[k].values for k in group_by}).drop_duplicates()
        _check_matching(last, by, keys, reference)
        dss = [_keep_last_layers(ds, [k for k in group_by if k != "layer"]) for ds in dss]

    reuse = (len(fits) == 1 and len(dss) == 1 and match == "name"
             and set(group_by) <= set(getattr(fits[0], "group_by", ())))
    if reuse:
        fitted = fits[0]
    else:
        fitted = _run_fit(fit_ds, model, tuple(group_by), draws=draws, chains=chains, seed=seed,
                          **fit_kwargs)
    gd = fitted.group_draws()
    missing = [q for q in quantities if q not in gd.data_vars]
    if missing and default_quantities and len(missing) < len(quantities):
        # rate models (gamma_poisson, negative_binomial) have no mu/kappa: compare the rest
        quantities = tuple(q for q in quantities if q in gd.data_vars)
    elif missing:
        raise ArgumentError(f"quantities: the fit ({model}) provides no {missing}; it has "
                         f"{list(gd.data_vars)}")
    groups = _group_table(gd, group_by)
    table = _contrasts(groups, by, keys, levels, reference, match)

    # posterior differences
    contrast_coords = {
        "contrast": ("contrast", table["contrast"].to_numpy(dtype=object)),
        "level": ("contrast", table["level"].to_numpy()),
        "reference": ("contrast", table["reference"].to_numpy()),
        **{k: ("contrast", table[k].to_numpy()) for k in keys},
    }
    if match == "last":
        contrast_coords["layer"] = ("contrast", table["layer"].to_numpy(dtype=object))
        contrast_coords["reference_layer"] = ("contrast", table["reference_layer"].to_numpy(dtype=object))
    lev_pos = xr.DataArray(table["level_pos"].to_numpy(), dims="contrast")
    ref_pos = xr.DataArray(table["ref_pos"].to_numpy(), dims="contrast")
    gvals = gd[list(quantities)].drop_vars([c for c in gd.coords if c not in ("chain", "draw")])
    diffs = (gvals.isel(group=lev_pos) - gvals.isel(group=ref_pos)).transpose("chain", "draw", "contrast")
    diffs = diffs.assign_coords(contrast_coords)
    diffs.attrs = {"by": by, "reference": str(reference), "model": model,
                   "description": "posterior draws of level minus reference"}

    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    stacked = diffs.stack(sample=("chain", "draw"))
    summary = {
        "mean": stacked.mean("sample"),
        "low": stacked.quantile(lo_q, dim="sample").drop_vars("quantile"),
        "high": stacked.quantile(hi_q, dim="sample").drop_vars("quantile"),
        "p_positive": (stacked > 0).mean("sample"),
        "p_negative": (stacked < 0).mean("sample"),
    }
    post = {name: val.to_dataarray("quantity") for name, val in summary.items()}
    post["pd"] = np.maximum(post["p_positive"], post["p_negative"])

    # bootstrap counterpart
    epsilon = float(fit_kwargs.get("epsilon", getattr(fitted, "epsilon", 0.01)))
    rng = np.random.default_rng(None if seed is None else np.random.SeedSequence(seed).spawn(1)[0])
    boot_dss = [fitted.ds] if reuse else dss
    obs, reps, notes = _bootstrap(boot_dss, groups, group_by, quantities, epsilon, window_size,
                                  max(n_resamples, 1), rng)
    lp, rp = table["level_pos"].to_numpy(), table["ref_pos"].to_numpy()
    boot_est = np.stack([obs[q][lp] - obs[q][rp] for q in quantities], axis=1)
    boot_rep = np.stack([reps[q][:, lp] - reps[q][:, rp] for q in quantities], axis=2)
    if n_resamples == 0:
        boot_rep = boot_rep[:0]
        notes = {q: notes[q] or "n_resamples=0" for q in quantities}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if boot_rep.shape[0]:
            boot_low = np.nanquantile(boot_rep, lo_q, axis=0)
            boot_high = np.nanquantile(boot_rep, hi_q, axis=0)
        else:
            boot_low = boot_high = np.full_like(boot_est, np.nan)
    boot_low = np.where(np.isnan(boot_est), np.nan, boot_low)
    boot_high = np.where(np.isnan(boot_est), np.nan, boot_high)

    cq = ("contrast", "quantity")
    result = xr.Dataset(
        {name: post[name].transpose(*cq) for name in ("mean", "low", "high", "pd", "p_positive", "p_negative")},
    )
    result["boot_estimate"] = (cq, boot_est)
    result["boot_low"] = (cq, boot_low)
    result["boot_high"] = (cq, boot_high)
    result["boot_note"] = ("quantity", np.array([notes[q] for q in quantities], dtype=object))
    result = result.assign_coords(quantity=list(quantities)).assign_coords(
        level_label=("contrast", table["level_label"].to_numpy(dtype=object)),
        reference_label=("contrast", table["reference_label"].to_numpy(dtype=object)),
        subject=("contrast", table["subject"].to_numpy(dtype=object)),
    )
    result.attrs = {
        "by": by,
        "reference": str(reference),
        "model": model,
        "prob": float(prob),
        "ci_kind": "eti",
        "match": match,
        "epsilon": epsilon,
        "n_resamples": n_resamples,
        "bootstrap": "percentile interval; inputs (fired) or window blocks resampled within "
                     "each dataset independently",
    }
    boot_diffs = xr.Dataset(
        {q: (("resample", "contrast"), boot_rep[:, :, j]) for j, q in enumerate(quantities)},
        coords=contrast_coords,
    )
    return Comparison(result, fitted, diffs, boot_diffs)
