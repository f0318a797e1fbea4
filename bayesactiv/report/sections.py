"""The per-layer analysis of a report: per-unit table, layer status in words, and the
detailed section of one layer (caterpillar, dead/saturated units, activations,
co-activation, unit view). :mod:`bayesactiv.report.pipeline` (``bayesactiv report``) and
:mod:`bayesactiv.studies.memorization` share them.

Examples
--------
>>> import pandas as pd
>>> from bayesactiv.report.sections import LayerStatus
>>> LayerStatus.of(pd.DataFrame({"count": [0, 4], "n": [4, 4]})).why_chosen(False)
'every unit of this layer fired on all or none of the 4 events; this one has the highest firing rate'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data import validate
from bayesactiv.data.checks import check_int, check_prob, check_seed
from bayesactiv.report.document import Report
from bayesactiv.report.errors import ReportError
from bayesactiv.stats import baselines
from bayesactiv.stats.units import pick_unit, threshold_value
from bayesactiv.viz.layers import activation_figure, caterpillar_figure, coactivation_figure
from bayesactiv.viz.unit import unit_view

__all__ = ["GROUP_QUANTITIES", "LayerStatus", "constant_layer_text", "group_frame",
           "layer_section", "threshold_rule", "unit_frame"]

#: Group-level quantities of a fit, each with ``_mean``, ``_low`` and ``_high`` columns.
GROUP_QUANTITIES: tuple[str, ...] = ("mfr", "mf", "frac_dead", "mu", "kappa")


def group_frame(fit: Any, prob: float, keys: Sequence[str],
                quantities: Sequence[str] = GROUP_QUANTITIES) -> pd.DataFrame:
    """One row per group of ``fit``: its ``keys`` and each quantity's posterior mean and ETI.

    Examples
    --------
    >>> import xarray as xr
    >>> class Fit:  # anything with groups(prob) -> Dataset
    ...     def groups(self, prob):
    ...         return xr.Dataset({"layer": ("g", ["a"]), "mfr_mean": ("g", [.2]),
    ...                            "mfr_low": ("g", [.1]), "mfr_high": ("g", [.3])})
    >>> group_frame(Fit(), 0.9, ["layer"], ["mfr"]).columns.tolist()
    ['layer', 'mfr_mean', 'mfr_low', 'mfr_high']
    """
    g = fit.groups(prob)
    frame = pd.DataFrame({k: g[k].values for k in keys})
    for q in quantities:
        for s in ("mean", "low", "high"):
            frame[f"{q}_{s}"] = g[f"{q}_{s}"].values
    return frame


def unit_frame(
    ds: xr.Dataset, fit: Any, *, prob: float = 0.9, n_resamples: int = 1000, seed: int | None = 0
) -> pd.DataFrame:
    """Per-unit table: observed rate, posterior mean/ETI and P(dead), Wald and bootstrap intervals.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset; its units must be among those ``fit`` was fitted to.
    fit : FiringFit
        A fit (possibly of more units, e.g. a joint fit of several networks).
    prob : float
        Interval mass.
    n_resamples : int
        Bootstrap resamples (bootstrap columns are NaN without ``fired``/``window_count``).
    seed : int, optional

    Returns
    -------
    pandas.DataFrame
        ``unit``, ``network``, ``layer``, ``index``, ``count``, ``n``, ``rate``,
        ``post_mean``, ``post_low``, ``post_high``, ``p_dead``, ``wald_low``, ``wald_high``,
        ``bootstrap_low``, ``bootstrap_high``.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
    >>> frame = unit_frame(ds, f)
    >>> frame["unit"].tolist()[:3], frame["rate"].tolist()[:3]
    (['net/fc1/0', 'net/fc1/1', 'net/fc1/2'], [0.0, 0.1, 0.15])
    >>> bool(frame["post_mean"].between(0, 1).all())
    True
    >>> bool(frame["bootstrap_low"].isna().all())  # no fired events or windows to resample
    True
    """
    prob = check_prob(prob)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    seed = check_seed(seed)
    validate(ds)
    post = fit.units(prob)
    ids = ds["unit"].values.astype(str)
    have = set(post["unit"].values.astype(str).tolist())
    missing = [u for u in ids if u not in have]
    if missing:
        raise ReportError(f"fit: units {missing[:3]} of the dataset were not fitted")
    post = post.sel(unit=ds["unit"].values)
    wald = baselines.intervals(ds, "wald", confidence_level=prob)
    count, n = ds["count"].values, ds["n"].values
    frame = pd.DataFrame({
        "unit": ids,
        "network": ds["network"].values.astype(str),
        "layer": ds["layer"].values.astype(str),
        "index": ds["index"].values,
        "count": count,
        "n": n,
        "rate": count / np.maximum(n, 1),
        "post_mean": post["mean"].values,
        "post_low": post["low"].values,
        "post_high": post["high"].values,
        "p_dead": post["p_dead"].values,
        "wald_low": wald["low"].values,
        "wald_high": wald["high"].values,
    })
    if "fired" in ds or "window_count" in ds:
        boot = baselines.bootstrap(ds, n_resamples=n_resamples, confidence_level=prob, seed=seed)
        frame["bootstrap_low"] = boot["low"].values
        frame["bootstrap_high"] = boot["high"].values
    else:
        frame["bootstrap_low"] = frame["bootstrap_high"] = np.nan
    return frame


def _p_saturated(fit: Any, units: list[str], epsilon: float) -> np.ndarray:
    """P(theta_u > 1 - epsilon | data) for a few units, from their posterior draws."""
    if not units:
        return np.zeros(0)
    draws = fit.unit_draws(units, max_draws=2000)
    other = [d for d in draws.dims if d != "unit"]
    return (draws > 1 - epsilon).mean(other).values


def layer_section(
    rep: Report,
    ds: xr.Dataset,
    units: pd.DataFrame,
    fit: Any,
    network: str,
    layer: str,
    *,
    prob: float = 0.9,
    module: Any = None,
    inputs: Any = None,
    images: Any = None,
    n_images: int = 8,
    level: int = 4,
) -> Report:
    """Add the detailed section of one layer: caterpillar, dead/saturated, activations,
    co-activation and a unit view.

    Parameters
    ----------
    rep : Report
    ds : xarray.Dataset
        The activation dataset holding the layer.
    units : pandas.DataFrame
        :func:`unit_frame` rows (of at least this layer).
    fit : FiringFit
        The fit the posterior columns came from (for P(saturated)).
    network, layer : str
    prob : float
        Interval mass of ``units``.
    module, inputs : optional
        The torch network and its inputs: the unit view then shows exact activations
        (:func:`bayesactiv.recording.unit.unit_activations`).
    images : callable or array, optional
        Image source for the unit view's top inputs.
    n_images : int
    level : int
        Heading level.

    Returns
    -------
    Report

    Examples
    --------
    >>> import tempfile
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
    >>> rep = Report("Firing of net")
    >>> layer_section(rep, ds, unit_frame(ds, f), f, "net", "fc1") is rep
    True
    >>> path = rep.write(tempfile.mkdtemp() + "/report")
    >>> sorted(p.name for p in (path / "figures").iterdir())
    ['caterpillar_net_fc1.png', 'unitview_net_fc1.png']
    """
    prob = check_prob(prob)
    n_images = check_int(n_images, "n_images", minimum=1)
    pct = f"{100 * prob:g}%"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{network}_{layer}")
    u = units[(units["network"] == network) & (units["layer"] == layer)]
    if u.empty:
        raise ReportError(f"units: no rows for network {network!r}, layer {layer!r}")
    status = LayerStatus.of(u)
    rep.section(f"{network} / {layer}", level=level, id=f"{network}-{layer}")
    rep.text(
        f"{len(u)} units; fired = {threshold_rule(ds)}, over {status.events} events. "
        f"{status.summary()} Observed MFR {u['rate'].mean():.3f}; posterior mean MFR "
        f"{u['post_mean'].mean():.3f}."
    )
    _add_caterpillar(rep, u, status, f"{network} / {layer}", stem, prob)
    _add_dead_saturated(rep, u, fit, stem)
    _add_activations(rep, ds, network, layer, stem)
    _add_coactivation(rep, ds, status, network, layer, stem)
    _add_unit_view(rep, ds, u, status, network, layer, stem, pct,
                   module=module, inputs=inputs, images=images, n_images=n_images)
    return rep


def _add_caterpillar(rep: Report, u: pd.DataFrame, status: LayerStatus, title: str, stem: str,
                     prob: float) -> None:
    """The sorted caterpillar plot, or words when no unit varies."""
    pct = f"{100 * prob:g}%"
    baseline = "bootstrap" if u["bootstrap_low"].notna().all() else "wald"
    if status.varying:
        rep.figure(caterpillar_figure(u, title=title, prob=prob, baseline=baseline),
                   f"caterpillar_{stem}",
                   caption=f"Units sorted by posterior mean; blue {pct} posterior ETI, orange the "
                           f"{pct} {baseline} interval beside it (open circle: observed rate).")
    else:
        rep.text(constant_layer_text(u, status, pct))


def _add_dead_saturated(rep: Report, u: pd.DataFrame, fit: Any, stem: str) -> None:
    """The table of dead and saturated units with their posterior probability."""
    dead = u[(u["count"] == 0) | (u["p_dead"] > 0.5)]
    sat = u[u["count"] == u["n"]]
    if not (len(dead) or len(sat)):
        rep.text("No unit of this layer was dead or saturated on these inputs.")
        return
    eps = float(getattr(fit, "epsilon", 0.01))
    table = pd.concat([
        dead.assign(status="dead", p_status=dead["p_dead"]),
        sat.assign(status="saturated", p_status=_p_saturated(fit, sat["unit"].tolist(), eps)),
    ], ignore_index=True)
    rep.table(table[["unit", "status", "count", "n", "post_mean", "post_low", "post_high",
                     "p_status", "wald_low", "wald_high"]],
              f"dead_saturated_{stem}", max_rows=20,
              caption=f"Dead units (never fired, or P(θ < {eps:g}) > 0.5) and saturated "
                      f"units (always fired); P(status) is the posterior probability of "
                      f"being dead (θ < {eps:g}) or saturated (θ > {1 - eps:g}).")


def _add_activations(rep: Report, ds: xr.Dataset, network: str, layer: str, stem: str) -> None:
    """Histogram and CDF of the layer's activations, when the recording kept them."""
    threshold = threshold_value(ds)
    if "hist_count" in ds and f"{network}/{layer}" in ds["hist_group"].values.astype(str):
        rep.figure(activation_figure(ds, network, layer, threshold=threshold),
                   f"activations_{stem}",
                   caption="Histogram (density) and empirical CDF of all activations of the "
                           "layer" + (f"; dotted line: the threshold {threshold:g}."
                                      if threshold is not None else "."))


def _add_coactivation(rep: Report, ds: xr.Dataset, status: LayerStatus, network: str,
                      layer: str, stem: str) -> None:
    """The co-activation heatmap, or why there is none."""
    if "fired" in ds and status.varying >= 2:
        rep.figure(coactivation_figure(ds, network, layer), f"coactivation_{stem}",
                   caption="Phi coefficient (correlation of firing) between the units that "
                           "vary, sorted by firing rate.")
    elif "fired" in ds:
        rep.text("No co-activation matrix: the phi coefficient (correlation of firing) is "
                 "undefined for a unit that fired on every event or on none, and "
                 + ("only one unit" if status.varying == 1 else "no unit")
                 + " of this layer fired on some but not all events.")


def _add_unit_view(rep: Report, ds: xr.Dataset, u: pd.DataFrame, status: LayerStatus,
                   network: str, layer: str, stem: str, pct: str, *, module: Any, inputs: Any,
                   images: Any, n_images: int) -> None:
    """The unit view of the layer's most telling unit (or why there is none)."""
    summaries = any(v in ds for v in ("act_mean", "act_max", "hist_count", "topk_value"))
    if not status.varying and not summaries and (module is None or inputs is None):
        rep.text("No unit view: every unit of this layer fired on all events or on none, and "
                 "the recording holds no activations to show.")
        return
    chosen = pick_unit(ds, network=network, layer=layer)
    row = u[u["unit"] == chosen].iloc[0]
    intervals = {
        f"posterior {pct} ETI": (row["post_mean"], row["post_low"], row["post_high"]),
        f"Wald {pct}": (row["rate"], row["wald_low"], row["wald_high"]),
    }
    if np.isfinite(row["bootstrap_low"]):
        intervals[f"bootstrap {pct}"] = (row["rate"], row["bootstrap_low"], row["bootstrap_high"])
    acts = None
    if module is not None and inputs is not None:
        import json

        from bayesactiv.recording.unit import unit_activations  # imported on use: it brings torch

        recorded = json.loads(ds.attrs.get("layer_spatial", "{}")).get(layer)
        spatial = recorded if recorded in ("any", "per_position") else "per_position"
        acts = unit_activations(module, inputs, layer, int(row["index"]), spatial=spatial)
    rep.figure(unit_view(ds, chosen, intervals=intervals, activations=acts, images=images,
                         n_images=n_images),
               f"unitview_{stem}",
               caption=f"Unit view of {chosen} ({status.why_chosen('act_max' in ds)}): its "
                       "firing intervals, its activations"
                       + (" on every input (network re-run)" if acts is not None else
                          " (approximate, from the recorded summaries)")
                       + (", and the inputs that activate it most, with their labels."
                          if images is not None else "."))


@dataclass(frozen=True)
class LayerStatus:
    """How many units of a layer never fired, always fired, or varied, and that in words.

    Examples
    --------
    >>> import pandas as pd
    >>> LayerStatus.of(pd.DataFrame({"count": [0, 3, 5], "n": [5, 5, 5]})).summary()
    'Of these, 1 fired on some but not all events, 1 on every event and 1 on none.'
    """

    events: int
    never: int
    always: int
    varying: int

    @classmethod
    def of(cls, units: pd.DataFrame) -> LayerStatus:
        never = int((units["count"] == 0).sum())
        always = int((units["count"] == units["n"]).sum())
        return cls(int(units["n"].iloc[0]), never, always, len(units) - never - always)

    def summary(self) -> str:
        total = self.never + self.always + self.varying
        if self.always == total:
            return f"Every unit fired on all {self.events} events (saturated)."
        if self.never == total:
            return "No unit fired on any event (all dead)."
        if self.varying == total:
            return "Every unit fired on some but not all events."
        parts = [(self.varying, "on some but not all events"), (self.always, "on every event"),
                 (self.never, "on none")]
        said = [f"{k} {what}" for k, what in parts if k]
        said[0] = said[0].replace(" on ", " fired on ", 1)
        return "Of these, " + ", ".join(said[:-1]) + f" and {said[-1]}."

    def why_chosen(self, by_activation: bool) -> str:
        best = "the strongest activation" if by_activation else "the highest firing rate"
        if self.varying:
            return f"{best} among the units that fire on some but not all events"
        if self.never == 0:
            return f"every unit of this layer fired on all {self.events} events; this one has {best}"
        if self.always == 0:
            return f"no unit of this layer fired on any of the {self.events} events"
        return (f"every unit of this layer fired on all or none of the {self.events} events; "
                f"this one has {best}")


def constant_layer_text(units: pd.DataFrame, status: LayerStatus, pct: str) -> str:
    """Words instead of a caterpillar plot of identical intervals (no unit varies).

    Examples
    --------
    >>> import pandas as pd
    >>> u = pd.DataFrame({"count": [4, 4], "n": [4, 4], "post_mean": [0.9, 0.9],
    ...                   "post_low": [0.7, 0.7], "post_high": [0.99, 0.99]})
    >>> constant_layer_text(u, LayerStatus.of(u), "90%")[:60]
    'No caterpillar plot: no unit of this layer varies, so it wou'
    """
    parts = []
    for label, rows in (("fired on all", units[units["count"] == units["n"]]),
                        ("fired on none of the", units[units["count"] == 0])):
        if rows.empty:
            continue
        parts.append(
            f"{len(rows)} {'unit' if len(rows) == 1 else 'units'} {label} {status.events} "
            f"events: posterior means {_span(rows['post_mean'])}, {pct} ETIs within "
            f"[{rows['post_low'].min():.3f}, {rows['post_high'].max():.3f}]"
        )
    return ("No caterpillar plot: no unit of this layer varies, so it would show identical "
            "intervals. " + "; ".join(parts) + ".")


def _span(values: pd.Series) -> str:
    low, high = float(values.min()), float(values.max())
    return f"{low:.3f}" if f"{low:.3f}" == f"{high:.3f}" else f"{low:.3f} to {high:.3f}"


def threshold_rule(ds: xr.Dataset) -> str:
    """The dataset's firing rule in words (its ``threshold_rule`` attribute).

    Examples
    --------
    >>> import xarray as xr
    >>> threshold_rule(xr.Dataset(attrs={"threshold_rule": "activation > 0"}))
    'activation > 0'
    """
    return str(ds.attrs.get("threshold_rule", "not recorded"))
