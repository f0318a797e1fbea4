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

__version__ = "0.1.0"

from bayesactiv.checks import ArgumentError
from bayesactiv.dataset import DatasetError, combine, make_dataset, open_dataset, save, validate

# public name -> module that defines it (imported lazily)
_LAZY = {
    "record": "bayesactiv.recording",
    "FractionOfMax": "bayesactiv.recording",
    "Quantile": "bayesactiv.recording",
    "Fixed": "bayesactiv.recording",
    "fit": "bayesactiv.models",
    "FiringFit": "bayesactiv.models",
    "compare_models": "bayesactiv.models",
    "compare": "bayesactiv.comparison",
}
_SUBMODULES = (
    "baselines", "calibration", "checks", "comparison", "dataset", "demo", "descriptive", "grouping",
    "models", "networks", "plots", "recording", "report", "unitview", "zoo",
)

__all__ = [  # noqa: PLE0604 - the lazily imported names are listed in _LAZY and _SUBMODULES
    "ArgumentError",
    "DatasetError",
    "combine",
    "make_dataset",
    "open_dataset",
    "save",
    "validate",
    *_LAZY.keys(),
    *_SUBMODULES,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"bayesactiv.{name}")
    raise AttributeError(f"module 'bayesactiv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
