"""The 0–100 quality scale of ``compress``, and targets in bytes or bits per pixel.

A variable-rate model with ``n`` trained operating points (gain vectors) is
coded at any quality ``Q`` in 0..100: its position between the trained points
is ``t = Q / 100 * (n - 1)`` and the gains are interpolated between the two
neighbouring points (Cui et al., CVPR 2021). The trained points keep their
integer indices (``q1..qn``, what ``eval`` and the zoo list) and sit at
``Q = 100 * (i - 1) / (n - 1)``: for six points Q 0, 20, 40, 60, 80, 100.

Files store ``Q`` in hundredths (:data:`QUALITY_CODES`), an integer, so the
position the decoder computes from it (:func:`rate_position`) is one IEEE
division, the same on every machine. This module imports neither torch nor
numpy (argument checking happens before a model loads).
"""

from __future__ import annotations

import argparse
import math
import re
from fractions import Fraction

__all__ = [
    "QUALITY_CODES",
    "QUALITY_MAX",
    "code_of",
    "nearest_point",
    "parse_quality",
    "parse_size",
    "point_code",
    "point_of",
    "quality_of",
    "rate_position",
]

#: The top of the scale.
QUALITY_MAX = 100
#: Steps of the stored scale: Q is kept to 1/100.
QUALITY_CODES = 100 * QUALITY_MAX


def code_of(quality: float) -> int:
    """``quality`` (0..100) as the integer the file stores (hundredths, rounded)."""
    if not (math.isfinite(quality) and 0 <= quality <= QUALITY_MAX):
        raise ValueError(f"quality must be a number in 0..{QUALITY_MAX}, got {quality}")
    return int(round(quality * 100))


def quality_of(code: int) -> float:
    """The quality a stored code stands for."""
    return code / 100


def point_code(index: int, num_points: int) -> int | None:
    """The code of trained point ``index`` (1-based) of ``num_points``, if it is on the grid.

    With ``num_points - 1`` dividing 10000 (2, 3, 5, 6 ... points: every usual
    table) every point has an exact code; otherwise only the two ends do.
    """
    if num_points < 2 or not 1 <= index <= num_points:
        return None
    code = Fraction(QUALITY_CODES * (index - 1), num_points - 1)
    return int(code) if code.denominator == 1 else None


def point_of(code: int, num_points: int) -> int | None:
    """The trained point (1-based) that ``code`` lands on exactly, or None between points."""
    if num_points < 2:
        return None
    t = Fraction(code * (num_points - 1), QUALITY_CODES)
    return int(t) + 1 if t.denominator == 1 else None


def nearest_point(code: int, num_points: int) -> int:
    """The trained point (1-based) nearest to ``code`` (ties go down)."""
    if num_points < 2:
        return 1
    t = Fraction(code * (num_points - 1), QUALITY_CODES)
    return int(math.ceil(t - Fraction(1, 2))) + 1


def rate_position(code: int, num_points: int) -> int | float:
    """The model's rate position ``t`` in ``0..num_points-1`` (an int at a trained point).

    One correctly rounded division of two integers: the same float on every machine.
    """
    exact = point_of(code, num_points)
    if exact is not None:
        return exact - 1
    return (code * (num_points - 1)) / QUALITY_CODES


def parse_quality(text: str) -> float:
    """argparse type: a quality on 0..100 (a float; kept to 1/100)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a quality in 0..{QUALITY_MAX}, got {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= QUALITY_MAX):
        raise argparse.ArgumentTypeError(f"expected a quality in 0..{QUALITY_MAX}, got {text}")
    return value


_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)(i?[bB]?)\s*$")
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


def parse_size(text: str) -> int:
    """argparse type: a file size in bytes: ``20000``, ``20k``, ``1.5M`` (k = 1000, Ki = 1024)."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a size such as 20000, 20k or 1.5M, got {text!r}")
    number, unit, binary = m.groups()
    scale = _UNITS[unit.lower()]
    if binary.lower().startswith("i"):
        if not unit:
            raise argparse.ArgumentTypeError(f"expected a size such as 20k or 20Ki, got {text!r}")
        scale = 1024 ** ("kmg".index(unit.lower()) + 1)
    value = float(number) * scale
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"size must be at least 1 byte, got {text!r}")
    return int(round(value))
