"""The data contract: the activation dataset, its files, and the checks at every boundary.

Everything above this room reads and writes activation datasets through these names:
:func:`validate` (called by every public entry point), :func:`make_dataset`,
:func:`combine`, :func:`save` / :func:`open_dataset`, the one grouping of units
(:func:`group_units`) and the argument checks (:mod:`bayesactiv.data.checks`).
"""

from bayesactiv.data.checks import (
    ArgumentError,
    check_choice,
    check_int,
    check_number,
    check_prob,
    check_seed,
)
from bayesactiv.data.combine import combine
from bayesactiv.data.contract import (
    CLUSTER_VARS,
    LAYER_CLUSTER_VARS,
    DatasetError,
    clustered,
    dense_cluster_stats,
    from_input_counts,
    input_count_sums,
    make_dataset,
    require,
    set_epoch,
    unit_ids,
    validate,
)
from bayesactiv.data.files import check_save_path, open_dataset, save
from bayesactiv.data.grouping import GROUP_KEYS, Grouping, group_units, normalize_group_by
from bayesactiv.data.merge import merge

__all__ = [
    "CLUSTER_VARS",
    "GROUP_KEYS",
    "LAYER_CLUSTER_VARS",
    "ArgumentError",
    "DatasetError",
    "Grouping",
    "check_choice",
    "check_int",
    "check_number",
    "check_prob",
    "check_save_path",
    "check_seed",
    "clustered",
    "combine",
    "dense_cluster_stats",
    "from_input_counts",
    "group_units",
    "input_count_sums",
    "make_dataset",
    "merge",
    "normalize_group_by",
    "open_dataset",
    "require",
    "save",
    "set_epoch",
    "unit_ids",
    "validate",
]
