"""The activation dataset (kept as the module behind ``bayesactiv.dataset``).

The contract lives in :mod:`bayesactiv.data.contract`, the files in
:mod:`bayesactiv.data.files` and :func:`combine` in :mod:`bayesactiv.data.combine`;
this module re-exports their public names.
"""

from bayesactiv.data.combine import combine
from bayesactiv.data.contract import (
    DatasetError,
    make_dataset,
    require,
    set_epoch,
    unit_ids,
    validate,
)
from bayesactiv.data.files import check_save_path, open_dataset, save

__all__ = [
    "DatasetError",
    "check_save_path",
    "combine",
    "make_dataset",
    "open_dataset",
    "require",
    "save",
    "set_epoch",
    "unit_ids",
    "validate",
]
