"""Threshold rules: when a unit fires, and the calibration statistics the rules need.

Threshold rules
---------------
A plain number ``t`` means :class:`Fixed` (fired = activation > t).
:class:`FractionOfMax` and :class:`Quantile` need a statistic of the whole recording
and get it from calibration passes over the inputs before the recording pass, so
their inputs must be re-iterable (a tensor, an array, a list or a DataLoader).

*Quantile precision.* Pass 1 finds each unit's minimum and maximum; pass 2 builds a
per-unit histogram of up to 2,048 equal bins between them (and counts events equal
to the minimum exactly, so the ties of a ReLU unit that is 0 on most inputs are
exact); pass 3 keeps, per unit, the smallest values inside the bin holding the
wanted order statistic (up to 512 of them) and the smallest value above that bin.
The q-quantile is numpy's default (linear interpolation between order statistics
``floor(h)`` and ``floor(h) + 1`` with ``h = q (N - 1)``) and is exact, except for
units whose bin holds more than 512 values below the wanted rank: for those the
order statistic is interpolated linearly inside its bin, an error of at most one
bin width ``(max - min) / bins``; their number is stored in the attribute
``threshold_approximate_units``. The per-unit thresholds are stored in the
variable ``threshold``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["Calibration", "Fixed", "FractionOfMax", "Quantile", "ThresholdRule", "as_rule",
           "histogram_bins", "quantile_finish", "quantile_plan", "round_down", "round_down_array"]

_QUANTILE_BINS = 2048
_QUANTILE_BUFFER = 512


@dataclass(frozen=True)
class Fixed:
    """Fired when the activation exceeds a fixed value: ``activation > value``.

    Examples
    --------
    >>> from bayesactiv.recording.recorder import Fixed
    >>> Fixed(0.5).describe()
    'activation > 0.5'
    """

    value: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise TypeError(f"Fixed.value: expected a number, got {type(self.value).__name__}")
        if not math.isfinite(self.value):
            raise ValueError(f"Fixed.value: must be finite, got {self.value}")

    def describe(self) -> str:
        """The rule in words."""
        return f"activation > {self.value:g}"

    def params(self) -> dict[str, Any]:
        """The rule's parameters (JSON-serialisable)."""
        return {"rule": "Fixed", **asdict(self)}


@dataclass(frozen=True)
class FractionOfMax:
    """Fired when the activation exceeds a fraction of the unit's maximum over the recording.

    Seed 002's "50% of the maximum". The maximum is taken over all events of the
    recording (a calibration pass). A unit whose maximum is <= 0 (a ReLU unit that is 0
    on every input) never fires under this rule; a layer where every unit is so is refused.

    Examples
    --------
    >>> from bayesactiv.recording.recorder import FractionOfMax
    >>> FractionOfMax(0.5).describe()
    "activation > 0.5 x the unit's maximum over the recorded inputs"
    """

    fraction: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float)):
            raise TypeError(f"FractionOfMax.fraction: expected a number, got {self.fraction!r}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"FractionOfMax.fraction: must be in [0, 1], got {self.fraction}")

    def describe(self) -> str:
        """The rule in words."""
        return f"activation > {self.fraction:g} x the unit's maximum over the recorded inputs"

    def params(self) -> dict[str, Any]:
        """The rule's parameters (JSON-serialisable)."""
        return {"rule": "FractionOfMax", **asdict(self)}


@dataclass(frozen=True)
class Quantile:
    """Fired when the activation exceeds the unit's q-quantile over the recording.

    The quantile is numpy's default (linear) definition over all events of the
    recording, found by calibration passes (see the module notes on precision).
    Ties are honest: a ReLU unit that is 0 on 95% of events has its 0.9-quantile
    at 0 and fires on the other 5%.

    Examples
    --------
    >>> from bayesactiv.recording.recorder import Quantile
    >>> Quantile(0.9).params()
    {'rule': 'Quantile', 'q': 0.9}
    """

    q: float = 0.9

    def __post_init__(self) -> None:
        if isinstance(self.q, bool) or not isinstance(self.q, (int, float)):
            raise TypeError(f"Quantile.q: expected a number, got {self.q!r}")
        if not 0.0 <= self.q <= 1.0:
            raise ValueError(f"Quantile.q: must be in [0, 1], got {self.q}")

    def describe(self) -> str:
        """The rule in words."""
        return f"activation > the unit's {self.q:g}-quantile over the recorded inputs"

    def params(self) -> dict[str, Any]:
        """The rule's parameters (JSON-serialisable)."""
        return {"rule": "Quantile", **asdict(self)}


ThresholdRule = Fixed | FractionOfMax | Quantile


def as_rule(threshold: Any) -> ThresholdRule:
    """The rule ``threshold`` names: a rule as it is, a number ``t`` as ``Fixed(t)``."""
    if isinstance(threshold, (Fixed, FractionOfMax, Quantile)):
        return threshold
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        return Fixed(float(threshold))
    raise TypeError(
        f"threshold: expected a number or a rule (Fixed, FractionOfMax, Quantile), "
        f"got {type(threshold).__name__}"
    )


def round_down(thr: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Largest ``dtype`` values <= ``thr`` (float64), so that ``a > result`` iff ``a > thr``."""
    low = thr.to(dtype)
    above = low.double() > thr
    if bool(above.any()):
        low = torch.where(above, torch.nextafter(low, torch.full_like(low, -math.inf)), low)
    return low


_FINITE_MAX = {np.dtype(t): float(np.finfo(t).max) for t in (np.float32, np.float64)}


def round_down_array(thr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """:func:`round_down` of a float64 numpy array: the same values, in numpy.

    The steps of :func:`round_down` (IEEE round-to-nearest, compare in float64, one step
    towards -inf where the rounding went up), which numpy and torch take alike on the CPU.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesactiv.recording.rules import round_down_array
    >>> low = round_down_array(np.array([0.1, 0.5]), np.dtype(np.float32))
    >>> bool((low.astype(np.float64) <= [0.1, 0.5]).all()), low.dtype
    (True, dtype('float32'))
    """
    if thr.shape == (1,) and abs(float(thr[0])) <= _FINITE_MAX.get(dtype, 0.0):
        low = thr.astype(dtype)  # (within the dtype's range: no overflow to silence)
    else:
        with np.errstate(over="ignore"):  # beyond the dtype's range: inf, as torch gives
            low = thr.astype(dtype)
    above = low.astype(np.float64) > thr
    if above.any():
        low = np.where(above, np.nextafter(low, low.dtype.type(-np.inf)), low)
    return low


class Calibration:
    """Calibration passes: per-unit min/max, then histogram, then refinement of a quantile."""

    def __init__(self) -> None:
        self.stage = "minmax"
        self.n = 0
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None
        self.kind = ""

    def update(self, a: torch.Tensor) -> None:
        if self.stage == "minmax":
            lo, hi = a.amin(0), a.amax(0)
            if self.lo is None:
                self.lo, self.hi = lo, hi
            else:
                self.lo = torch.minimum(self.lo, lo)
                self.hi = torch.maximum(self.hi, hi)
            self.n += a.shape[0]
        elif self.stage == "hist":
            idx = self._bin(a)
            u = a.shape[1]
            flat = (idx + self.offsets).reshape(-1)
            self.hist += torch.bincount(flat, minlength=u * self.bins).view(u, self.bins)
            self.at_min += (a == self.lo).sum(0)
        else:
            idx = self._bin(a)
            inside = (idx == self.target) & (a != self.lo)
            inf = torch.tensor(math.inf, dtype=a.dtype, device=a.device)
            vals = torch.where(inside, a, inf)
            k = min(self.buffer_k, a.shape[0] + self.buffer.shape[0])
            both = torch.cat([self.buffer, vals], 0)
            self.buffer = torch.topk(both, k, dim=0, largest=False).values
            if self.buffer.shape[0] < self.buffer_k:
                pad = inf.expand(self.buffer_k - self.buffer.shape[0], a.shape[1])
                self.buffer = torch.cat([self.buffer, pad], 0)
            above = torch.where(idx > self.target, a, inf).amin(0)
            self.next_min = torch.minimum(self.next_min, above)

    def _bin(self, a: torch.Tensor) -> torch.Tensor:
        scaled = ((a - self.lo) * self.scale).floor_()
        return scaled.clamp_(0, self.bins - 1).long()

    def start_hist(self, bins: int) -> None:
        assert self.lo is not None and self.hi is not None
        u = self.lo.shape[0]
        self.bins = bins
        width = self.hi - self.lo
        self.scale = torch.where(width > 0, bins / width, torch.zeros_like(width))
        self.offsets = torch.arange(u, device=self.lo.device) * bins
        self.hist = torch.zeros(u, bins, dtype=torch.int64, device=self.lo.device)
        self.at_min = torch.zeros(u, dtype=torch.int64, device=self.lo.device)
        self.stage = "hist"


def quantile_plan(cal: Calibration, q: float) -> None:
    """After the histogram pass: locate the bins of order statistics floor(h) and floor(h)+1."""
    n = cal.n
    h = q * (n - 1)
    k = math.floor(h)
    cal.h, cal.k = h, k
    hist = cal.hist.clone()
    hist[:, 0] -= cal.at_min
    cum = hist.cumsum(1)  # events above the minimum, up to and including each bin
    rank = torch.full_like(cal.at_min, k) - cal.at_min  # rank among events above the minimum
    rank_c = rank.clamp(min=0)
    target = torch.searchsorted(cum, rank_c[:, None], right=True)[:, 0].clamp(max=cal.bins - 1)
    before = torch.where(target > 0, cum.gather(1, (target - 1).clamp(min=0)[:, None])[:, 0],
                         torch.zeros_like(target))
    cal.target = target
    cal.rank_in_bin = rank_c - before
    cal.in_bin = hist.gather(1, target[:, None])[:, 0]
    cal.below_min = rank < 0  # order statistic k is the minimum itself
    need = torch.where(cal.below_min, torch.zeros_like(rank), cal.rank_in_bin + 2)
    cal.buffer_k = int(min(max(int(need.max()), 1), _QUANTILE_BUFFER))
    u = cal.lo.shape[0]
    dtype = cal.lo.dtype
    cal.buffer = torch.empty(0, u, dtype=dtype, device=cal.lo.device)
    cal.next_min = torch.full((u,), math.inf, dtype=dtype, device=cal.lo.device)
    cal.stage = "refine"


def quantile_finish(cal: Calibration) -> tuple[torch.Tensor, int]:
    """Per-unit q-quantile (float64) and the number of units whose value is approximate."""
    lo, hi = cal.lo.double(), cal.hi.double()
    width = (hi - lo) / cal.bins
    buf = cal.buffer.double()
    bk = buf.shape[0]
    r = cal.rank_in_bin
    exact = r + 1 < bk
    r0 = r.clamp(max=bk - 1)
    r1 = (r + 1).clamp(max=bk - 1)
    s_k = buf.gather(0, r0[None, :])[0]
    s_k1 = torch.where(r + 1 < cal.in_bin, buf.gather(0, r1[None, :])[0], cal.next_min.double())
    # approximate units: interpolate inside the bin (ranks uniform over the bin)
    bin_lo = lo + cal.target.double() * width
    frac = (r.double() + 0.5) / cal.in_bin.clamp(min=1).double()
    approx_k = bin_lo + frac * width
    approx_k1 = torch.where(r + 1 < cal.in_bin,
                            bin_lo + (r.double() + 1.5) / cal.in_bin.clamp(min=1).double() * width,
                            cal.next_min.double())
    s_k = torch.where(exact, s_k, approx_k)
    s_k1 = torch.where(exact | (r + 1 >= cal.in_bin), s_k1, approx_k1)
    # order statistics at the minimum (ties at the minimum are counted exactly)
    s_k = torch.where(cal.below_min, lo, s_k)
    k1_at_min = (cal.k + 1) < cal.at_min
    first_above = torch.where(cal.in_bin > 0, buf[0], cal.next_min.double())
    s_k1 = torch.where(k1_at_min, lo, torch.where(cal.below_min, first_above, s_k1))
    if cal.k + 1 >= cal.n:
        s_k1 = s_k
    s_k1 = torch.where(torch.isfinite(s_k1), s_k1, s_k)
    frac_h = cal.h - cal.k
    quant = s_k + frac_h * (s_k1 - s_k) if frac_h > 0 else s_k
    n_approx = int((~exact & ~cal.below_min).sum())
    return quant, n_approx


def histogram_bins(units: int) -> int:
    """Bins of the calibration histogram of a layer of ``units`` units (at most 2**25 counters)."""
    return int(min(_QUANTILE_BINS, max(256, 2 ** 25 // max(units, 1))))
