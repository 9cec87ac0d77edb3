"""Argument checks shared by every public entry point.

Each error names the argument, what was expected and what was given, so users can
fix the call without reading our source.
"""
from __future__ import annotations

import numbers

import numpy as np


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices, key=str)!r}, got {value!r}")
    return value


def check_int(name, value, *, min_value=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if min_value is not None and value < min_value:
        raise ValueError(f"{name}: expected an int >= {min_value}, got {value!r}")
    return int(value)


def check_float(name, value, *, low, high, low_open=False, high_open=False):
    """A real number in [low, high]; ``*_open`` excludes that end."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__} {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high or value != value:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name}: expected a float in {interval}, got {value!r}")
    return value


def as_array(name, values, expected, dtype=None):
    """``np.asarray(values, dtype)``. Values that do not convert (nested lists of unequal lengths,
    text where numbers are due) raise a ValueError naming ``name`` and what was ``expected``."""
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected {expected}, got {type(values).__name__} that does not convert to one "
                         f"({exc})") from None
