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

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.comparison.bootstrap import bootstrap_contrasts, bootstrap_groups
from bayesactiv.comparison.levels import (
    MINUS,
    check_levels,
    check_matching,
    check_thresholds,
    coerce_reference,
    collect,
    contrast_table,
    group_table,
    keep_last_layers,
    level_values,
    threshold_mismatch,
)
from bayesactiv.comparison.posterior import (
    available_quantities,
    contrast_coords,
    fit_groups,
    posterior_differences,
    summarize_differences,
)
from bayesactiv.data import DatasetError, combine
from bayesactiv.data.checks import (
    ArgumentError,
    check_choice,
    check_int,
    check_prob,
    check_seed,
)
from bayesactiv.stats.resampling import resampled_statement

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
            f"{QUANTITIES[quantity]} {subject}: {level} {MINUS} {ref} = {_fmt(mean, dec)} "
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
        quantity gets its own x axis, as their scales differ. The drawing is
        :func:`bayesactiv.viz.forest.comparison_forest`.

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
        from bayesactiv.viz.forest import comparison_forest  # the drawing lives in viz

        return comparison_forest(self.result, self.differences, quantities, path=path,
                                 **plot_kwargs)


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
        s = s[1:] if float(s) == 0 else MINUS + s[1:]
    return s


# ---------------------------------------------------------------- compare


def compare(
    datasets_or_fits: Any,
    *,
    by: Literal["network", "layer", "epoch"] = "network",
    reference: Any = None,
    model: str | None = None,
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
    two is a finding about the data, not a numerical error. For clustered events (tokens,
    positions) both are the Fano factor of each unit's per-input counts: the model's
    ``(1 - theta_u) d_u`` (``d_u`` its design effect) and, in the bootstrap (with kept
    events), the plug-in ``sum_i (c_i - p t_i)**2 / (p n)`` over resampled inputs, so the
    two estimate the same quantity and agree in sign when the model is right.

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
    model : str, optional
        Firing model passed to :func:`bayesactiv.fit`; default (None) its default:
        ``clustered_beta_binomial`` for tokens and positions, else ``beta_binomial``.
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
    by, match, quantities, default_quantities = _check_choices(by, match, quantities)
    prob = check_prob(prob)
    seed = check_seed(seed)
    draws = check_int(draws, "draws", minimum=1)
    chains = check_int(chains, "chains", minimum=1)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=0)
    if window_size is not None:
        window_size = check_int(window_size, "window_size", minimum=1)

    names, dss, fits = collect(datasets_or_fits, by)
    asked = model
    model = _check_inputs(names, dss, fits, by, model or "beta_binomial")
    combined = combine(dss)
    if asked is None and not fits:
        from bayesactiv.bayes.fitting import default_model  # imported on use: PyMC is slow

        model = default_model(combined)
    levels, reference = _levels_and_reference(combined, by, reference)
    group_by, keys, fit_ds, dss = _match_levels(combined, dss, by, match, reference)

    reuse = (len(fits) == 1 and len(dss) == 1 and match == "name"
             and set(group_by) <= set(getattr(fits[0], "group_by", ())))
    if reuse:
        fitted = fits[0]
    else:
        fitted = fit_groups(fit_ds, model, tuple(group_by), draws=draws, chains=chains, seed=seed,
                            **fit_kwargs)
    gd = fitted.group_draws()
    quantities = available_quantities(gd, quantities, default_quantities, model)
    groups = group_table(gd, group_by)
    table = contrast_table(groups, by, keys, levels, reference, match)

    coords = contrast_coords(table, keys, match)
    diffs = posterior_differences(gd, table, quantities, coords, {
        "by": by, "reference": str(reference), "model": model,
        "description": "posterior draws of level minus reference"})
    post = summarize_differences(diffs, prob)

    epsilon = float(fit_kwargs.get("epsilon", getattr(fitted, "epsilon", 0.01)))
    rng = np.random.default_rng(None if seed is None else np.random.SeedSequence(seed).spawn(1)[0])
    sources = [fitted.ds] if reuse else dss
    obs, reps, notes = bootstrap_groups(sources, groups, group_by,
                                        quantities, epsilon, window_size, max(n_resamples, 1), rng)
    boot = bootstrap_contrasts(obs, reps, notes, table, quantities, prob, n_resamples)

    result = _result_table(post, boot, table, quantities)
    result.attrs = {
        "by": by,
        "reference": str(reference),
        "model": model,
        "prob": float(prob),
        "ci_kind": "eti",
        "match": match,
        "epsilon": epsilon,
        "n_resamples": n_resamples,
        "bootstrap": _bootstrap_statement(sources),
    }
    boot_rep = boot[3]
    boot_diffs = xr.Dataset(
        {q: (("resample", "contrast"), boot_rep[:, :, j]) for j, q in enumerate(quantities)},
        coords=coords,
    )
    return Comparison(result, fitted, diffs, boot_diffs)


# ---------------------------------------------------------------- the steps of compare


def _bootstrap_statement(sources: Sequence[xr.Dataset]) -> str:
    """``attrs["bootstrap"]``: what the bootstrap resampled, in words, over the source datasets.

    Datasets with ``fired`` resample inputs (whole inputs with their events when events are
    clustered, :func:`~bayesactiv.stats.resampling.resampled_statement`); the others
    resample window blocks.
    """
    what: list[str] = []
    for ds in sources:
        item = (resampled_statement(ds) if "fired" in ds.data_vars
                else "window blocks (no fired events kept)")
        if item not in what:
            what.append(item)
    return ("percentile interval; " + "; ".join(what or ["nothing to resample"])
            + " resampled within each dataset independently")



def _check_choices(
    by: str, match: str, quantities: Sequence[str] | str
) -> tuple[str, str, tuple[str, ...], bool]:
    """Check ``by``, ``match`` and ``quantities``; whether the quantities are the default."""
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
    return by, match, quantities, default_quantities


def _check_inputs(names: list[str], dss: list[xr.Dataset], fits: list[Any], by: str,
                  model: str) -> str:
    """Warn about differing thresholds, check the levels; the model (that of the fits, if any)."""
    if len(dss) > 1:
        check_thresholds(names, dss)
    if fits:
        models = {f.model for f in fits}
        if len(models) > 1:
            raise ArgumentError(f"datasets_or_fits: the fits use different models {sorted(models)}; "
                                "compare fits of one model")
        model = fits[0].model
    check_levels(names, dss, by)
    return model


def _levels_and_reference(combined: xr.Dataset, by: str, reference: Any) -> tuple[list[Any], Any]:
    """The levels of ``by`` (at least two) and the checked reference."""
    levels = level_values(combined, by)
    if len(levels) < 2:
        raise DatasetError(
            f"{by}: compare needs at least two {by}s, found {levels}; pass datasets of several "
            f"{by}s (a dict {by} -> dataset names them)"
        )
    return levels, coerce_reference(reference, levels, by)


def _match_levels(
    combined: xr.Dataset, dss: list[xr.Dataset], by: str, match: str, reference: Any
) -> tuple[list[str], list[str], xr.Dataset, list[xr.Dataset]]:
    """Grouping keys, matched keys, the dataset to fit and the source datasets to resample.

    With ``match="last"`` only the last recorded layer of each network is kept.
    """
    group_by = ["network", "layer"] + (["epoch"] if "epoch" in combined.coords else [])
    keys = [k for k in group_by if k != by and not (match == "last" and k == "layer")]
    frame = pd.DataFrame({k: combined[k].values for k in group_by}).drop_duplicates()
    if match == "name":
        check_matching(frame, by, keys, reference)
        return group_by, keys, combined, dss
    outer = [k for k in group_by if k != "layer"]
    fit_ds = keep_last_layers(combined, outer)
    last = pd.DataFrame({k: fit_ds[k].values for k in group_by}).drop_duplicates()
    check_matching(last, by, keys, reference)
    return group_by, keys, fit_ds, [keep_last_layers(ds, outer) for ds in dss]


def _result_table(
    post: dict[str, xr.DataArray], boot: tuple, table: pd.DataFrame, quantities: Sequence[str]
) -> xr.Dataset:
    """The (contrast, quantity) table: posterior summary, bootstrap columns, labels."""
    boot_est, boot_low, boot_high, _, notes = boot
    cq = ("contrast", "quantity")
    result = xr.Dataset(
        {name: post[name].transpose(*cq) for name in ("mean", "low", "high", "pd", "p_positive", "p_negative")},
    )
    result["boot_estimate"] = (cq, boot_est)
    result["boot_low"] = (cq, boot_low)
    result["boot_high"] = (cq, boot_high)
    result["boot_note"] = ("quantity", np.array([notes[q] for q in quantities], dtype=object))
    return result.assign_coords(quantity=list(quantities)).assign_coords(
        level_label=("contrast", table["level_label"].to_numpy(dtype=object)),
        reference_label=("contrast", table["reference_label"].to_numpy(dtype=object)),
        subject=("contrast", table["subject"].to_numpy(dtype=object)),
    )
