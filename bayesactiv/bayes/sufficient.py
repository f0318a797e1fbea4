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

__all__ = ["CHUNK", "Groups", "Stats", "make_groups", "unit_stats"]

CHUNK = 2_000_000  # elements per (pairs x draws) block in summaries: memory stays bounded


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


def unit_stats(ds: xr.Dataset, model: str, groups: Groups) -> Stats:
    if model == "beta_binomial":
        x = ds["count"].values.astype(np.int64)
        m = ds["n"].values.astype(np.int64)
        const = special.gammaln(m + 1) - special.gammaln(x + 1) - special.gammaln(m - x + 1)
        st = Stats("beta", x, m, const, 1.0)
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
    xr_, mr_ = int(st.x.max(initial=0)) + 1, int(st.m.max(initial=0)) + 1
    ng = int(groups.index.max(initial=0)) + 1
    if float(ng) * mr_ * xr_ < 2.0**62:  # one int64 key per unit: a fast 1-d unique
        key = (groups.index * mr_ + st.m) * xr_ + st.x
        uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        st.pair_group, rest = np.divmod(uniq, mr_ * xr_)
        st.pair_m, st.pair_x = np.divmod(rest, xr_)
    else:
        keys = np.stack([groups.index, st.m, st.x], axis=1)
        uniq, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        st.pair_group, st.pair_m, st.pair_x = uniq[:, 0], uniq[:, 1], uniq[:, 2]
    st.pair_weight = counts.astype(float)
    st.unit_pair = inverse.ravel()
    return st
