"""The Overfitting-Underfitting Indicator (OUI), a baseline beside the firing monitor.

OUI (Fernández-Hernández, Mestre, Dolz, Duato and Quintana-Ortí, "OUI Need to Talk About
Weight Decay: A New Perspective on Overfitting Detection", arXiv:2504.17160, 2025) measures
how much the *activation patterns* of different inputs differ, without labels or validation
data.

Definition
----------
The activation pattern :math:`P_l(x)` of an input :math:`x` in a hidden layer :math:`l` is
the binary vector of the layer's activation states (1 where the ReLU output is positive),
of length :math:`N_l`, the number of the layer's neurons (for a convolution, every channel
at every position: the flattened feature map). Two patterns are compared by their
normalized Hamming distance

.. math:: d_H(p, q) = \\frac{1}{N_l} \\sum_{k=1}^{N_l} [p_k \\neq q_k],

and the layer's indicator averages it, clipped at one half, over the pairs of distinct
inputs :math:`Y = \\{(i, j) : i \\neq j\\}` of the batch :math:`x_1, \\dots, x_m`:

.. math:: \\mathrm{OUI}_l = \\frac{2}{|Y|} \\sum_{(i, j) \\in Y}
          \\min\\left(d_H(P_l(x_i), P_l(x_j)), \\tfrac{1}{2}\\right),

.. math:: \\mathrm{OUI} = \\frac{1}{L} \\sum_{l=1}^{L} \\mathrm{OUI}_l

for the network, over its :math:`L` hidden layers, all weighted alike. Both lie in [0, 1].
Every pair of inputs counts, whatever their classes (the indicator is label-free); ordered
and unordered pairs give the same mean, so each unordered pair is taken once here.

Reading it: ``OUI == 0`` exactly when every input has the same pattern in every layer, so
that the network acts on them as one affine map (a linear model: it *underfits*, the sign
of too strong a weight decay); ``OUI == 1`` exactly when every pair of inputs differs in at
least half of every layer's neurons, what the paper calls chaotic activation dynamics (it
*overfits*, too weak a weight decay). The paper reports that weight-decay values that keep
OUI at intermediate values, about 0.6 to 0.8, early in training reach the best validation
accuracy, and that OUI settles long before the loss or the accuracy does.

What is computed here, and where it departs from the paper
----------------------------------------------------------
* The patterns are the dataset's ``fired`` events (``activation > threshold``): the
  paper's binarization when the layers were recorded at ReLU outputs with the default
  threshold 0 (or at pre-activations with threshold 0). Another threshold gives the same
  formula on other patterns.
* An event is one input for a dense layer. For a convolution recorded with
  ``spatial="per_position"`` the events are (input, position) pairs and the ``sample``
  axis carries an ``input`` coordinate: the pattern of an input is then its events of the
  layer's units at every position side by side (:math:`N_l` = units x positions), which is
  the paper's flattened feature map. Inputs with unequal numbers of events (sequences of
  different lengths) have patterns of unequal lengths and are refused.
  ``spatial="any"`` records one event per channel and input (fired at any position): the
  pattern is then over channels only, a coarser one than the paper's.
* The paper computes OUI on training batches (the authors' code draws 28 random pairs of
  a batch every few steps and averages over the epoch); here it is computed on the inputs
  the dataset holds (a :class:`~bayesactiv.monitor.FiringMonitor` probe: the same inputs at
  every epoch), on *all* their pairs by default, exactly, or on a random subset of pairs
  (``pairs=``), the same pairs for every layer and epoch.
* The normalization is the paper's, :math:`\\min(2 H / N_l, 1)` for a pair at Hamming
  distance :math:`H`. The authors' code divides by :math:`\\lfloor N_l / 2 \\rfloor`
  instead of :math:`N_l / 2`, the same for an even :math:`N_l`, slightly larger values for
  an odd one.
* ``OUI`` of a network (the rows ``layer == "*"``) averages the layers the dataset holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data.checks import check_int, check_seed
from bayesactiv.data.contract import validate

__all__ = ["oui"]

#: ``layer`` of the rows that average a network's layers.
NETWORK_ROW = "*"
_BLOCK = 1 << 22  # elements of the blocks the pairwise distances are computed in


def oui(ds: xr.Dataset, *, pairs: int | None = None, seed: int | None = 0) -> pd.DataFrame:
    """The Overfitting-Underfitting Indicator of every layer and network, per epoch.

    See the module notes for the definition (arXiv:2504.17160): per layer, the mean over
    pairs of inputs of ``min(2 * d_H, 1)``, ``d_H`` the normalized Hamming distance between
    the inputs' activation patterns; per network, the mean over its layers.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset with the raw ``fired`` events (recorded with
        ``keep_events=True``), e.g. :meth:`bayesactiv.monitor.FiringMonitor.dataset`. With an
        ``epoch`` coordinate, one row per epoch; with an ``input`` coordinate on ``sample``
        (convolutions recorded per position), the events of each input form its pattern.
        An out-of-core ``fired`` is read into memory.
    pairs : int, optional
        None (default): every pair of inputs, exactly. An integer ``k``: ``k`` distinct
        pairs drawn uniformly at random (all pairs when there are no more than ``k``), the
        same for every layer and epoch.
    seed : int, optional
        Seed of the draw of pairs (only used with ``pairs``).

    Returns
    -------
    pandas.DataFrame
        One row per (network, layer, epoch), then per (network, epoch) a row with
        ``layer == "*"`` averaging the layers; ordered by network, epoch, and the layers in
        the order they were recorded, ``"*"`` last. Columns: ``network``, ``layer``,
        ``epoch`` (-1 without an ``epoch`` coordinate), ``units`` (the layer's units),
        ``pattern`` (the length :math:`N_l` of a pattern: units x events per input),
        ``inputs``, ``pairs`` (pairs compared), ``hamming`` (the mean normalized Hamming
        distance, not clipped) and ``oui``. On ``"*"`` rows, ``units`` and ``pattern`` are
        sums over the layers, ``hamming`` and ``oui`` means.

    Raises
    ------
    ValueError
        Naming what is wrong: no ``fired`` events (record with ``keep_events=True``),
        fewer than two inputs, inputs with unequal numbers of events, a bad ``pairs`` or
        ``seed``, a dataset that breaks the contract.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> from bayesactiv.monitor.hamming import oui
    >>> fired = np.array([[1, 1, 0, 0],    # input 0
    ...                   [1, 0, 0, 0],    # input 1: d_H = 1/4 from input 0
    ...                   [0, 0, 1, 1]],   # input 2: d_H = 1 and 3/4
    ...                  dtype=bool)
    >>> ds = ba.make_dataset(fired.sum(0), 3, network="net", layer="fc", fired=fired)
    >>> table = oui(ds)
    >>> table[["layer", "pairs", "hamming", "oui"]].round(4).values.tolist()
    [['fc', 3, 0.6667, 0.8333], ['*', 3, 0.6667, 0.8333]]
    """
    validate(ds)
    if pairs is not None:
        pairs = check_int(pairs, "pairs", minimum=1)
    seed = check_seed(seed)
    if "fired" not in ds.data_vars:
        raise ValueError("fired: the dataset holds no raw firing events, and OUI compares the "
                         "activation patterns of inputs; record with keep_events=True "
                         "(ba.record(..., keep_events=True) or FiringMonitor(..., "
                         "keep_events=True))")
    events, m, per_input = _events_by_input(ds)
    if m < 2:
        raise ValueError(f"fired: OUI compares pairs of inputs, but the dataset holds the events "
                         f"of {m} input{'s' if m != 1 else ''}; record at least two")
    total = m * (m - 1) // 2
    drawn = None if pairs is None or pairs >= total else _draw_pairs(m, pairs, seed)
    n_pairs = total if drawn is None else pairs

    units = pd.DataFrame({
        "network": ds["network"].values.astype(str),
        "layer": ds["layer"].values.astype(str),
        "epoch": (ds["epoch"].values.astype(np.int64) if "epoch" in ds.coords
                  else np.full(ds.sizes["unit"], -1, dtype=np.int64)),
    })
    rows = []
    for (network, layer, epoch), cols in units.groupby(["network", "layer", "epoch"],
                                                       sort=False).indices.items():
        patterns = events[:, :, cols].reshape(m, per_input * len(cols))
        hamming, clipped = _distances(patterns, drawn)
        size = patterns.shape[1]
        rows.append({"network": network, "layer": layer, "epoch": int(epoch),
                     "units": len(cols), "pattern": size, "inputs": m, "pairs": n_pairs,
                     "hamming": hamming / (size * n_pairs), "oui": clipped / (size * n_pairs)})
    table = pd.DataFrame(rows)
    nets = (table.groupby(["network", "epoch"], sort=False)
            .agg(units=("units", "sum"), pattern=("pattern", "sum"), inputs=("inputs", "first"),
                 pairs=("pairs", "first"), hamming=("hamming", "mean"), oui=("oui", "mean"))
            .reset_index())
    nets.insert(1, "layer", NETWORK_ROW)
    out = pd.concat([table, nets[table.columns]], ignore_index=True)
    out = out.sort_values(["network", "epoch"], kind="stable").reset_index(drop=True)
    return out.astype({"epoch": np.int64, "units": np.int64, "pattern": np.int64,
                       "inputs": np.int64, "pairs": np.int64, "hamming": np.float64,
                       "oui": np.float64})


def _events_by_input(ds: xr.Dataset) -> tuple[np.ndarray, int, int]:
    """``fired`` as an (input, event of the input, unit) array, the inputs and their events."""
    fired = np.asarray(ds["fired"].values, dtype=bool)
    if "input" not in ds.coords:
        return fired[:, None, :], fired.shape[0], 1
    owner = np.asarray(ds["input"].values)
    if owner.shape != (fired.shape[0],):
        raise ValueError(f"input: expected one value per sample of fired ({fired.shape[0]}), "
                         f"got shape {owner.shape}")
    inputs, counts = np.unique(owner, return_counts=True)
    if inputs.size == 0:
        return fired[:0, None, :], 0, 1
    if counts.min() != counts.max():
        raise ValueError(f"input: the inputs have unequal numbers of events ({int(counts.min())} "
                         f"to {int(counts.max())} per input), so their activation patterns "
                         f"have unequal lengths and OUI cannot compare them; record inputs of "
                         f"one size (or spatial='any', one event per input)")
    order = np.argsort(owner, kind="stable")  # each input's events together, in their order
    return (fired[order].reshape(inputs.size, int(counts[0]), fired.shape[1]), int(inputs.size),
            int(counts[0]))


def _distances(patterns: np.ndarray, drawn: np.ndarray | None) -> tuple[int, int]:
    """Sums over the pairs of the Hamming distances ``H`` and of ``min(2 H, N)``.

    All pairs ``i < j`` when ``drawn`` is None (from Gram matrices, in blocks of rows: for
    0/1 patterns ``H = s_i + s_j - 2 <p_i, p_j>``, exact in floating point), else the pairs
    of the ``(k, 2)`` array ``drawn``. Integers, so the means are exact.
    """
    m, size = patterns.shape
    if drawn is not None:
        h_sum = c_sum = 0
        step = max(1, _BLOCK // max(size, 1))
        for lo in range(0, drawn.shape[0], step):
            i, j = drawn[lo:lo + step, 0], drawn[lo:lo + step, 1]
            h = np.count_nonzero(patterns[i] != patterns[j], axis=1).astype(np.int64)
            h_sum += int(h.sum())
            c_sum += int(np.minimum(2 * h, size).sum())
        return h_sum, c_sum
    dtype = np.float32 if size < (1 << 24) else np.float64  # integers below 2**24 are exact
    values = patterns.astype(dtype)
    ones = patterns.sum(axis=1, dtype=np.int64)
    h_sum = c_sum = 0
    step = max(1, _BLOCK // max(m, 1))
    for lo in range(0, m - 1, step):
        hi = min(m, lo + step)
        gram = np.rint(values[lo:hi] @ values[lo:].T).astype(np.int64)
        h = ones[lo:hi, None] + ones[None, lo:] - 2 * gram
        h = h[np.arange(lo, m)[None, :] > np.arange(lo, hi)[:, None]]  # the pairs i < j
        h_sum += int(h.sum())
        c_sum += int(np.minimum(2 * h, size).sum())
    return h_sum, c_sum


def _draw_pairs(m: int, k: int, seed: int | None) -> np.ndarray:
    """``k`` distinct pairs ``i < j`` of ``range(m)``, uniformly at random, as a (k, 2) array."""
    rng = np.random.default_rng(seed)
    ranks = np.sort(rng.choice(m * (m - 1) // 2, size=k, replace=False))
    return _unrank_pairs(ranks, m)


def _unrank_pairs(ranks: Any, m: int) -> np.ndarray:
    """The pairs ``i < j`` of ``range(m)`` at positions ``ranks`` of their lexicographic order
    (that of :func:`itertools.combinations`), as a (k, 2) array."""
    t = np.asarray(ranks, dtype=np.int64)
    total = m * (m - 1) // 2
    back = total - 1 - t  # rank from the end: the last rows hold the fewest pairs
    i = m - 2 - ((np.sqrt(8.0 * back + 1.0) - 1.0) // 2).astype(np.int64)

    def first(row: np.ndarray) -> np.ndarray:  # rank of the pair (row, row + 1)
        return row * (2 * m - row - 1) // 2

    for _ in range(2):  # fix the rounding of the square root, if any
        i = np.where(first(i) > t, i - 1, i)
        i = np.where((i + 1 <= m - 2) & (first(i + 1) <= t), i + 1, i)
    j = t - first(i) + i + 1
    return np.stack([i, j], axis=1)
