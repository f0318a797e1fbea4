"""Convergence diagnostics of a fit (R-hat, bulk/tail ESS, divergences) and their warning.

Examples
--------
>>> RHAT_MAX, ESS_MIN
(1.01, 400)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["ESS_MIN", "RHAT_MAX", "ConvergenceWarning", "diagnose"]

RHAT_MAX = 1.01
ESS_MIN = 400
# warnings point at the first frame outside the package: the user's call
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class ConvergenceWarning(UserWarning):
    """A fit failed its convergence diagnostics (R-hat, bulk/tail ESS, divergences)."""


def _aggregate(d: xr.Dataset, fn) -> float:
    """``fn`` (max or min) over the finite values of all variables of ``d``."""
    vals = np.concatenate([np.ravel(d[v].values) for v in d.data_vars])
    vals = vals[np.isfinite(vals)]
    return float(fn(vals)) if vals.size else float("nan")


def _problems(out: dict[str, Any]) -> list[str]:
    """The diagnostics that fail their limits, in words."""
    problems = []
    if not out["rhat_max"] <= RHAT_MAX:
        problems.append(f"R-hat {out['rhat_max']:.3f} > {RHAT_MAX}")
    if not out["ess_bulk_min"] >= ESS_MIN:
        problems.append(f"bulk ESS {out['ess_bulk_min']:.0f} < {ESS_MIN}")
    if not out["ess_tail_min"] >= ESS_MIN:
        problems.append(f"tail ESS {out['ess_tail_min']:.0f} < {ESS_MIN}")
    if out["divergences"]:
        problems.append(f"{out['divergences']} divergent transitions")
    return problems


def diagnose(idata: xr.DataTree, param_names: Sequence[str], model: str) -> dict[str, Any]:
    """Convergence diagnostics of the group-level parameters; warns when they fail.

    Parameters
    ----------
    idata : xarray.DataTree
        The fit's draws (``posterior``, optionally ``sample_stats`` with ``diverging``).
    param_names : sequence of str
        The model's group-level parameters (``log_m``, ``M_network``, ``S_network`` are added
        when present).
    model : str
        The model's name, for the warning.

    Returns
    -------
    dict
        ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, ``ok``,
        ``problems`` and the per-parameter ``rhat``, ``ess_bulk``, ``ess_tail``.

    Warns
    -----
    ConvergenceWarning
        When R-hat > 1.01, bulk or tail ESS < 400, or any divergent transition.
    """
    import arviz as az

    post = idata["posterior"].to_dataset()
    names = [v for v in (*param_names, "log_m", "M_network", "S_network") if v in post.data_vars]
    post = post[names]
    rhat = az.rhat(post)
    ess_bulk = az.ess(post, method="bulk")
    ess_tail = az.ess(post, method="tail")
    div = 0
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"]:
        div = int(idata["sample_stats"]["diverging"].sum())
    out = {
        "rhat_max": _aggregate(rhat, np.max),
        "ess_bulk_min": _aggregate(ess_bulk, np.min),
        "ess_tail_min": _aggregate(ess_tail, np.min),
        "divergences": div,
        "rhat": rhat,
        "ess_bulk": ess_bulk,
        "ess_tail": ess_tail,
    }
    problems = _problems(out)
    out["ok"] = not problems
    out["problems"] = problems
    if problems:
        warnings.warn(
            f"bayesactiv.fit({model!r}): the sampler did not converge reliably: "
            + "; ".join(problems)
            + ". Run longer (draws=, tune=), more chains, or raise target_accept; "
            "do not trust the intervals yet.",
            ConvergenceWarning,
            skip_file_prefixes=(_PACKAGE_DIR,),  # point at the user's call, not at bayesactiv
        )
    return out
