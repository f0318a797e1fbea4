"""Boundary checks for the arguments of public functions: one check per kind, one error type.

Every public function of bayesactiv checks its scalar arguments here, so a bad
``prob``, a negative ``draws`` or a string seed gets the same message whether it
came from a notebook, the command line or the report. Each check returns the
value in its canonical Python type (``float`` or ``int``), so numpy scalars are
accepted wherever a number is.

All checks raise :class:`ArgumentError`, a :class:`ValueError` that names the
argument and shows what was given.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

__all__ = [
    "ArgumentError",
    "check_choice",
    "check_int",
    "check_number",
    "check_prob",
    "check_seed",
]


class ArgumentError(ValueError):
    """An argument of a public function is invalid; the message names the argument."""


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_prob(value: Any, name: str = "prob") -> float:
    """Check a probability mass of an interval (or a confidence level): a number in (0, 1).

    Parameters
    ----------
    value : float
        Python or numpy number; strings and booleans are refused.
    name : str
        The argument's name, used in the message.

    Returns
    -------
    float

    Raises
    ------
    ArgumentError
        When ``value`` is not a real number strictly between 0 and 1.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesactiv.data.checks import check_prob
    >>> check_prob(np.float32(0.9)) == float(np.float32(0.9))
    True
    >>> check_prob("0.9")
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: prob: expected a number strictly between 0 and 1, got '0.9' (str)
    """
    if not _is_real(value) or not 0.0 < float(value) < 1.0:
        raise ArgumentError(f"{name}: expected a number strictly between 0 and 1, got {_shown(value)}")
    return float(value)


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Check an integer argument (a count, a size), with optional bounds.

    Python and numpy integers are accepted, and so are floats with an integral
    value (``1000.0``); booleans, strings and fractions are refused.

    Parameters
    ----------
    value : int
    name : str
        The argument's name, used in the message.
    minimum, maximum : int, optional
        Inclusive bounds.

    Returns
    -------
    int

    Raises
    ------
    ArgumentError

    Examples
    --------
    >>> from bayesactiv.data.checks import check_int
    >>> check_int(1000, "draws", minimum=1)
    1000
    >>> check_int(0, "tune", minimum=1)
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: tune: expected an integer >= 1, got 0 (int)
    """
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum}")
    if maximum is not None:
        bounds.append(f"<= {maximum}")
    want = "an integer" + (" " + " and ".join(bounds) if bounds else "")
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok and _is_real(value):
        ok = float(value).is_integer()
    if not ok:
        raise ArgumentError(f"{name}: expected {want}, got {_shown(value)}")
    out = int(value)
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        raise ArgumentError(f"{name}: expected {want}, got {_shown(value)}")
    return out


def check_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive: bool = False,
) -> float:
    """Check a finite real number, with optional bounds (inclusive unless ``exclusive``).

    Examples
    --------
    >>> from bayesactiv.data.checks import check_number
    >>> check_number(0.01, "epsilon", minimum=0, maximum=1, exclusive=True)
    0.01
    """
    if not _is_real(value) or not float(value) == float(value) or abs(float(value)) == float("inf"):
        raise ArgumentError(f"{name}: expected a finite number, got {_shown(value)}")
    out = float(value)
    low_bad = minimum is not None and (out <= minimum if exclusive else out < minimum)
    high_bad = maximum is not None and (out >= maximum if exclusive else out > maximum)
    if low_bad or high_bad:
        op_lo, op_hi = (">", "<") if exclusive else (">=", "<=")
        parts = ([f"{op_lo} {minimum:g}"] if minimum is not None else []) + (
            [f"{op_hi} {maximum:g}"] if maximum is not None else []
        )
        raise ArgumentError(f"{name}: expected a number {' and '.join(parts)}, got {_shown(value)}")
    return out


def check_seed(value: Any, name: str = "seed") -> int | None:
    """Check a random seed: ``None`` or a non-negative integer.

    Examples
    --------
    >>> from bayesactiv.data.checks import check_seed
    >>> check_seed(None) is None, check_seed(7)
    (True, 7)
    """
    if value is None:
        return None
    return check_int(value, name, minimum=0)


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of ``choices`` (strings).

    Examples
    --------
    >>> from bayesactiv.data.checks import check_choice
    >>> check_choice("pymc", "sampler", ("nutpie", "pymc"))
    'pymc'
    """
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ArgumentError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {_shown(value)}")
    return value
