"""What ArviZ reads besides the draws: observed and constant data, and the pointwise
log-likelihood per unit as a lazy array (computed when first read).

Examples
--------
>>> import numpy as np, xarray as xr
>>> post = xr.Dataset({"mu": (("chain", "draw", "group"), np.arange(12.0).reshape(2, 3, 2))})
>>> flat_draws(post, "mu").shape  # (group, chain x draw)
(2, 6)
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from bayesactiv.bayes.likelihood import observed_name, pointwise_log_lik
from bayesactiv.bayes.specs import GROUP_PARAMS
from bayesactiv.bayes.sufficient import Groups, Stats

__all__ = ["LazyLogLik", "add_data_groups", "flat_draws"]

class LazyLogLik(BackendArray):
    """The pointwise log-likelihood of a fit, (chain, draw, unit), computed on first read.

    It is O(units x draws) in memory (3.2 GB for 10^5 units x 4,000 draws), so ``fit`` only
    declares it; ArviZ (``az.loo``, ``az.compare``) computes it when it reads the values, once.
    """

    def __init__(self, model: str, stats: Stats, group_index: np.ndarray,
                 posterior: xr.Dataset):
        self.model, self.stats, self.group_index = model, stats, group_index
        self.posterior = posterior
        self.shape = (posterior.sizes["chain"], posterior.sizes["draw"], len(group_index))
        self.dtype = np.dtype(np.float64)
        self._values: np.ndarray | None = None

    def values(self) -> np.ndarray:
        """The whole array (computed on the first call, then kept)."""
        if self._values is None:
            params = {name: flat_draws(self.posterior, name)
                      for name in ("mu", "kappa", "alpha", "beta", "phi")
                      if name in self.posterior.data_vars}
            if self.stats.kind == "beta":
                mu, kappa = params.pop("mu"), params.pop("kappa")
                params = {"a": mu * kappa, "b": (1 - mu) * kappa}
            ll = pointwise_log_lik(self.model, self.stats, self.group_index, params)
            self._values = ll.reshape(self.shape)
        return self._values

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC,
                                                  lambda k: self.values()[k])


def flat_draws(posterior: xr.Dataset, name: str) -> np.ndarray:
    """Draws of a group-level parameter as an array (group, chain x draw)."""
    arr = posterior[name].transpose("group", "chain", "draw").values
    return arr.reshape(arr.shape[0], -1)


def add_data_groups(idata: xr.DataTree, ds: xr.Dataset, model: str, st: Stats,
                    groups: Groups) -> xr.DataTree:
    """Add what ArviZ reads besides the draws: ``observed_data`` (the data the model saw),
    ``constant_data`` (trials ``n`` or the window size) and ``log_likelihood`` (per unit, lazy).
    """
    name = observed_name(model)
    if name == "count":
        observed = ds[["count"]]
        constant = ds[["n"]]
    else:
        observed = ds[["window_count"]]
        constant = xr.Dataset({"window_size": int(ds.attrs["window_size"])})
    post = idata["posterior"].to_dataset()
    lazy = LazyLogLik(model, st, groups.index,
                      post[[v for v in GROUP_PARAMS if v in post.data_vars]])
    log_lik = xr.Variable(("chain", "draw", "unit"), indexing.LazilyIndexedArray(lazy),
                          attrs={"description": "log-likelihood of all of the unit's data "
                                 "given the group parameters, the unit parameter integrated "
                                 "out (the unit is the observation of PSIS-LOO)"})
    coords = {"chain": post["chain"].values, "draw": post["draw"].values,
              "unit": ds["unit"].values}
    idata["observed_data"] = xr.DataTree(observed)
    idata["constant_data"] = xr.DataTree(constant)
    idata["log_likelihood"] = xr.DataTree(xr.Dataset({name: log_lik}, coords=coords))
    return idata
