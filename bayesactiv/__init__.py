"""bayesactiv: Bayesian analysis of how the hidden units of neural networks fire.

Data flow::

    torch network + inputs --record--> activation dataset (xarray)
        --baselines--> Monte Carlo / bootstrap / spike-train statistics
        --fit-------> PyMC hierarchical posterior (ArviZ DataTree)
        --compare---> posterior differences between networks / layers / epochs
        --report----> tables, plots, HTML report

Heavy dependencies (torch, PyMC) are imported on first use of the names that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

from bayesactiv.data import (
    ArgumentError,
    DatasetError,
    combine,
    make_dataset,
    merge,
    open_dataset,
    save,
    validate,
)
from bayesactiv.version import __version__  # noqa: F401 - re-exported

# public name -> module that defines it (imported lazily: torch and PyMC load on first use)
_LAZY = {
    "record": "bayesactiv.recording",
    "capture": "bayesactiv.recording",
    "FractionOfMax": "bayesactiv.recording",
    "Quantile": "bayesactiv.recording",
    "Fixed": "bayesactiv.recording",
    "fit": "bayesactiv.bayes",
    "FiringFit": "bayesactiv.bayes",
    "ConvergenceWarning": "bayesactiv.bayes",
    "ClusteredEventsWarning": "bayesactiv.bayes",
    "compare_models": "bayesactiv.bayes",
    "compare": "bayesactiv.comparison",
    "Comparison": "bayesactiv.comparison",
    "FiringMonitor": "bayesactiv.monitor",
}
# the rooms, one per stage (see the README's "Architecture")
_ROOMS = ("data", "recording", "stats", "bayes", "comparison", "monitor", "viz", "report", "studies",
          "zoo")
# names of the 0.1 flat layout, kept as aliases of the modules that now hold them
_ALIASES = {
    "dataset": "bayesactiv.data",
    "checks": "bayesactiv.data.checks",
    "grouping": "bayesactiv.data.grouping",
    "baselines": "bayesactiv.stats.baselines",
    "descriptive": "bayesactiv.stats.descriptive",
    "models": "bayesactiv.bayes.models",
    "calibration": "bayesactiv.bayes.calibration",
    "plots": "bayesactiv.viz.plots",
    "unitview": "bayesactiv.viz.unitview",
    "demo": "bayesactiv.studies.memorization",
    "networks": "bayesactiv.zoo.architectures",
}

__all__ = [  # noqa: PLE0604 - the lazily imported names are listed in _LAZY, _ROOMS and _ALIASES
    "ArgumentError",
    "DatasetError",
    "combine",
    "merge",
    "make_dataset",
    "open_dataset",
    "save",
    "validate",
    *_LAZY.keys(),
    *_ROOMS,
    *_ALIASES.keys(),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _ROOMS:
        value = importlib.import_module(f"bayesactiv.{name}")
    elif name in _ALIASES:
        value = importlib.import_module(_ALIASES[name])
    else:
        raise AttributeError(f"module 'bayesactiv' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
