"""The data a firing model sees: the units' groups and their sufficient statistics.

Units are compressed to the distinct (group, statistic) pairs with multiplicities, so every
later stage (likelihood, sampling, per-unit summaries) costs O(distinct pairs), not O(units).

Examples
--------
>>> import bayesactiv as ba
>>> ds = ba.make_dataset([0, 2, 2, 5], 20, network="net", layer="fc1")
>>> groups = make_groups(ds, ("network", "layer"), False)
>>> st = unit_stats(ds, "beta_binomial", groups)
>>> st.pair_x.tolist(), st.pair_weight.tolist()
([0, 2, 5], [1.0, 2.0, 1.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import special

from bayesactiv.data import DatasetError, require
from bayesactiv.data.checks import ArgumentError
from bayesactiv.data.grouping import group_units

__all__ = ["CHUNK", "DEFF_PRIOR_INPUTS", "EFFECTIVE_STEPS", "Groups", "Stats", "design_effects", "layer_design_effects", "make_groups",
           "unit_stats"]

CHUNK = 2_000_000  # elements per (pairs x draws) block in summaries: memory stays bounded
DEFF_PRIOR_INPUTS = 5.0  # weight, in inputs, of the layer's design effect in a unit's
# effective counts of clustered events are rounded to multiples of 1 / EFFECTIVE_STEPS (a
# power of two, so exact in floating point): the likelihood keeps its cheap tail-sum form
EFFECTIVE_STEPS = 32
# design effects are rounded to a geometric grid of this ratio (at most 2.5% off, far below
# their own sampling error of about sqrt(2 / inputs), 12% at 150 inputs), so that the units of
# a layer share few distinct (count, design effect) pairs and per-unit summaries stay fast
DEFF_GRID = 1.05


@dataclass
class Groups:
    index: np.ndarray  # group of each unit, shape (unit,)
    labels: np.ndarray  # str label per group
    coords: dict[str, np.ndarray]  # one coordinate per group_by key
    network_index: np.ndarray  # network of each group (for pool_layers)
    networks: np.ndarray


def make_groups(ds: xr.Dataset, group_by: Sequence[str] | str | None, pool_layers: bool
                ) -> Groups:
    """The units' groups (:func:`bayesactiv.data.grouping.group_units`) and, for ``pool_layers``,
    the network of each group."""
    grouping = group_units(ds, group_by)
    if pool_layers:
        if "network" not in grouping.keys:
            raise ArgumentError("pool_layers: needs 'network' in group_by (layers are pooled "
                                "per network)")
        networks, network_index = np.unique(grouping.coords["network"].astype(str),
                                            return_inverse=True)
    else:
        networks = np.array(["all"])
        network_index = np.zeros(grouping.n_groups, dtype=np.int64)
    return Groups(grouping.index, grouping.labels.astype(str).astype(object), grouping.coords,
                  network_index.astype(np.int64), networks)


def design_effects(ds: xr.Dataset, group_index: np.ndarray,
                   prior_inputs: float = DEFF_PRIOR_INPUTS) -> np.ndarray:
    """Per-unit design effect of clustered events: how much less a token tells than an input.

    For unit ``u`` with per-input counts ``c_i`` of ``t_i`` events over ``I`` inputs and
    ``p = count / n``, the cluster-robust variance of the total count is
    ``V = I / (I - 1) sum_i (c_i - p t_i)**2`` (from the streamed ``cluster_*`` sums), and
    the design effect is its ratio to the binomial variance, ``d = V / (n p (1 - p))``
    (Rao and Scott 1992; for a beta-binomial over inputs with equal ``t``,
    ``d = 1 + (t - 1) / (phi + 1)``). A unit's own ``d`` rests on the inputs in which it
    fired (``k = cluster_fired``); it is pooled with its group's ``d_g`` (ratio of the
    sums of ``V`` and of the binomial variances over the group's units) as
    ``(k d + k0 d_g) / (k + k0)`` with ``k0 = prior_inputs``, so a unit seen firing in few
    inputs (or none) takes the layer's clustering. Values are floored at 1 (clustered
    events never count as more than independent ones) and rounded to a geometric grid of
    ratio :data:`DEFF_GRID` (1.05: at most 2.5% off, far below their own sampling error).
    Units without clusters (dense layers, or datasets without the ``cluster_*``
    statistics) get exactly 1.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    group_index : numpy.ndarray of int, shape (unit,)
        The group of each unit (its layer, by default).
    prior_inputs : float
        ``k0`` above.

    Returns
    -------
    numpy.ndarray of float, shape (unit,)

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> c = np.array([[8, 0], [0, 1], [8, 1], [0, 0]])  # unit 0 fires in bursts, unit 1 alone
    >>> ds = ba.data.from_input_counts(c, [8, 8, 8, 8], network="lm", layer="mlp")
    >>> design_effects(ds, np.zeros(2, dtype=int)).round(2).tolist()
    [9.43, 6.39]
    """
    from bayesactiv.data import clustered
    from bayesactiv.stats.intervals import cluster_variances

    is_clustered = clustered(ds)
    d = np.ones(ds.sizes["unit"])
    if not is_clustered.any():
        return d
    cv = cluster_variances(ds)
    var, binom, informative = cv["var"], cv["binom"], cv["informative"] & is_clustered
    n_groups = int(group_index.max(initial=0)) + 1
    v_g = np.bincount(group_index[informative], weights=var[informative], minlength=n_groups)
    b_g = np.bincount(group_index[informative], weights=binom[informative], minlength=n_groups)
    d_group = np.where(b_g > 0, v_g / np.where(b_g > 0, b_g, 1.0), 1.0)[group_index]
    own = np.divide(var, binom, out=np.zeros_like(var), where=informative)
    k = np.where(informative, ds["cluster_fired"].values.astype(float), 0.0)
    pooled = (k * own + prior_inputs * d_group) / (k + prior_inputs)
    d[is_clustered] = np.maximum(pooled[is_clustered], 1.0)
    step = math.log(DEFF_GRID)
    return np.exp(np.rint(np.log(d) / step) * step)


def layer_design_effects(ds: xr.Dataset, group_index: np.ndarray) -> np.ndarray:
    """Per group, how much more a layer's mean firing varies from input to input than its
    units would if they varied independently: ``R_g = V_layer / sum_u V_u``.

    One input moves many units of a layer together (a sentence's topic, an image's
    contrast), so the estimation errors of the units' firing probabilities are correlated
    and the variance of the layer's mean is ``R_g`` times the sum of its units' own.
    ``V_layer = I / (I - 1) sum_i (C_i - S t_i)**2`` is the cluster-robust variance of the
    layer's total count (``C_i``: the layer's fired events in input ``i``, from the streamed
    ``layer_count_*`` sums; ``S = sum_u count_u / n_u``) and ``V_u`` the units' own
    (:func:`design_effects`). Floored at 1; exactly 1 for a group that is not one whole
    layer of one recording (its units' count does not add up to ``layer_count``), for layers
    without the layer sums (dense layers) and for datasets without clusters.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> c = np.array([[4, 4], [0, 0], [4, 4], [0, 1]])  # both units fire on inputs 0 and 2
    >>> ds = ba.data.from_input_counts(c, [4, 4, 4, 4], network="lm", layer="mlp")
    >>> layer_design_effects(ds, np.zeros(2, dtype=int)).round(2).tolist()
    [1.97]
    """
    n_groups = int(group_index.max(initial=0)) + 1
    out = np.ones(n_groups)
    if "layer_count" not in ds.data_vars or "cluster_n" not in ds.data_vars:
        return out
    from bayesactiv.stats.groups import cluster_residual_sq
    from bayesactiv.stats.intervals import cluster_variances

    n = ds["n"].values.astype(float)
    count = ds["count"].values.astype(float)
    inputs = ds["cluster_n"].values.astype(float)
    scale = np.where(inputs > 1, inputs / np.maximum(inputs - 1, 1), 0.0)
    cv = cluster_variances(ds)
    if cv is None:
        return out
    p, own = cv["p"], cv["var"]
    layer_sq = ds["layer_count_sq"].values
    layer_n = ds["layer_count_n"].values
    layer_total = ds["layer_count"].values
    for g in range(n_groups):
        units = np.flatnonzero(group_index == g)
        first = units[0] if units.size else None
        whole = (first is not None and layer_total[first] >= 0
                 and np.all(layer_total[units] == layer_total[first])
                 and count[units].sum() == layer_total[first]
                 and np.all(ds["cluster_n_sq"].values[units] == ds["cluster_n_sq"].values[first])
                 and np.all(n[units] == n[first]))
        if not whole or own[units].sum() <= 0:
            continue
        v_layer = scale[first] * cluster_residual_sq(layer_sq[first], layer_n[first],
                                                     ds["cluster_n_sq"].values[first],
                                                     p[units].sum())
        out[g] = max(v_layer / own[units].sum(), 1.0)
    return out


@dataclass
class Stats:
    """Per-unit sufficient statistics of a model, and their compression to distinct pairs."""

    kind: str  # "beta" (x successes of m trials) or "rate" (x events in exposure k*W)
    x: np.ndarray  # successes / events, shape (unit,)
    m: np.ndarray  # trials (beta) or number of windows (rate), shape (unit,)
    const: np.ndarray  # log-likelihood constant per unit (not needed for sampling)
    window: float  # W for rate models (1 for beta models)
    # compression
    pair_group: np.ndarray = field(default_factory=lambda: np.empty(0))
    pair_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    pair_m: np.ndarray = field(default_factory=lambda: np.empty(0))
    pair_weight: np.ndarray = field(default_factory=lambda: np.empty(0))
    unit_pair: np.ndarray = field(default_factory=lambda: np.empty(0))
    # negative binomial: histogram of window counts per group
    hist_group: np.ndarray | None = None
    hist_y: np.ndarray | None = None
    hist_weight: np.ndarray | None = None
    unit_windows: np.ndarray | None = None  # (unit, window) for pointwise NB log-likelihood
    # clustered events: per-unit design effect (x = count / d, m = n / d); ones otherwise
    design_effect: np.ndarray | None = None
    pair_design_effect: np.ndarray | None = None  # its mean over the units of each pair


def unit_stats(ds: xr.Dataset, model: str, groups: Groups) -> Stats:
    """The sufficient statistics of ``model`` per unit, compressed to distinct pairs.

    ``clustered_beta_binomial`` sees the effective counts ``count / d`` of ``n / d``
    trials (``d``: :func:`design_effects`); where every ``d`` is 1 they are the integer
    counts of ``beta_binomial`` exactly.
    """
    if model in ("beta_binomial", "clustered_beta_binomial"):
        x = ds["count"].values.astype(np.int64)
        m = ds["n"].values.astype(np.int64)
        deff = np.ones(x.shape)
        if model == "clustered_beta_binomial":
            deff = design_effects(ds, groups.index)
            if (deff != 1).any():  # rounded to 1/32 of an event (exact binary fractions)
                x = np.rint(x / deff * EFFECTIVE_STEPS) / EFFECTIVE_STEPS
                m = np.maximum(np.rint(m / deff * EFFECTIVE_STEPS) / EFFECTIVE_STEPS, x)
        const = special.gammaln(m + 1) - special.gammaln(x + 1) - special.gammaln(m - x + 1)
        st = Stats("beta", x, m, const, 1.0)
        st.design_effect = deff
    else:
        how = "record(..., window_size=W) or make_dataset(..., window_count=, window_size=)"
        require(ds, "window_count", f"the {model!r} model", how)
        y = ds["window_count"].values.astype(np.int64)  # (window, unit)
        w = int(ds.attrs["window_size"])
        k = y.shape[0]
        if k == 0:
            raise DatasetError(f"window_count: the {model!r} model needs at least one window")
        x = y.sum(axis=0)
        if model == "binomial_window":
            m = np.full(x.shape, k * w, dtype=np.int64)
            const = (special.gammaln(w + 1) - special.gammaln(y + 1)
                     - special.gammaln(w - y + 1)).sum(axis=0)
            st = Stats("beta", x, m, const, 1.0)
        else:
            m = np.full(x.shape, k, dtype=np.int64)
            const = (x * math.log(w) - special.gammaln(y + 1).sum(axis=0)) if model == \
                "gamma_poisson" else -special.gammaln(y + 1).sum(axis=0)
            st = Stats("rate", x, m, const, float(w))
            if model == "negative_binomial":
                st.unit_windows = y.T.copy()
                keys = groups.index[None, :] * (w + 1) + y
                uniq, counts = np.unique(keys.ravel(), return_counts=True)
                st.hist_group = uniq // (w + 1)
                st.hist_y = uniq % (w + 1)
                st.hist_weight = counts.astype(float)
    ng = int(groups.index.max(initial=0)) + 1
    scale = EFFECTIVE_STEPS if st.x.dtype.kind == "f" else 1  # effective counts: in 1/32
    sx = np.rint(st.x * scale).astype(np.int64)
    sm = np.rint(st.m * scale).astype(np.int64)
    xr_, mr_ = int(sx.max(initial=0)) + 1, int(sm.max(initial=0)) + 1
    if float(ng) * mr_ * xr_ < 2.0**62:  # one int64 key per unit: a fast 1-d unique
        key = (groups.index * mr_ + sm) * xr_ + sx
        uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        st.pair_group, rest = np.divmod(uniq, mr_ * xr_)
        st.pair_m, st.pair_x = np.divmod(rest, xr_)
    else:
        keys = np.stack([groups.index, sm, sx], axis=1)
        uniq, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        st.pair_group, st.pair_m, st.pair_x = uniq[:, 0], uniq[:, 1], uniq[:, 2]
    if scale != 1:
        st.pair_m, st.pair_x = st.pair_m / scale, st.pair_x / scale
    st.pair_weight = counts.astype(float)
    st.unit_pair = inverse.ravel()
    if st.design_effect is not None:
        st.pair_design_effect = (np.bincount(st.unit_pair, weights=st.design_effect,
                                             minlength=len(counts)) / st.pair_weight)
    return st
