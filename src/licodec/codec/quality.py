"""The encoder's knobs: the 0–100 quality scale, size/bpp targets, effort levels.

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
from collections.abc import Callable
from fractions import Fraction
from typing import Any

__all__ = [
    "EFFORT_MAX",
    "MAX_BPP",
    "QUALITY_CODES",
    "QUALITY_MAX",
    "code_of",
    "effort_steps",
    "nearest_point",
    "parse_bpp",
    "parse_effort",
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
#: Highest ``--bpp`` accepted (8-bit RGBA stored raw).
MAX_BPP = 32.0
#: Gradient steps of the encoder's latent refinement per effort level
#: (:mod:`licodec.entropy.refine`); level 0 codes the analysis transform's latents.
#: 160 steps were tried as level 4 and gained nothing over 80 on four Kodak images
#: (BD-rate -8.3 % against -8.4 % vs level 0, at twice the time): the README's table.
EFFORT_STEPS = (0, 10, 20, 40, 80)
#: Highest ``--effort``.
EFFORT_MAX = len(EFFORT_STEPS) - 1


def effort_steps(effort: int) -> int:
    """Refinement steps of effort level ``effort`` (0..:data:`EFFORT_MAX`)."""
    if not 0 <= effort <= EFFORT_MAX:
        raise ValueError(f"effort must be in 0..{EFFORT_MAX}, got {effort}")
    return EFFORT_STEPS[effort]


def code_of(quality: float) -> int:
    """``quality`` (0..100) as the integer the file stores (hundredths, rounded)."""
    if not (math.isfinite(quality) and 0 <= quality <= QUALITY_MAX):
        raise ValueError(f"quality must be a number in 0..{QUALITY_MAX}, got {quality}")
    return round(quality * 100)


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
    return math.ceil(t - Fraction(1, 2)) + 1


def rate_position(code: int, num_points: int) -> int | float:
    """The model's rate position ``t`` in ``0..num_points-1`` (an int at a trained point).

    One correctly rounded division of two integers: the same float on every machine.
    """
    exact = point_of(code, num_points)
    if exact is not None:
        return exact - 1
    return (code * (num_points - 1)) / QUALITY_CODES


def _number(text: str, kind: type, ok: Callable[[float], bool], expected: str, bad: str) -> Any:
    """``text`` as a ``kind`` for which ``ok`` holds; else argparse's error (``expected``
    when it is not a number at all, ``bad`` when it is out of range)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"{bad}, got {text}")
    return value


def parse_quality(text: str) -> float:
    """argparse type: a quality on 0..100 (a float; kept to 1/100)."""
    what = f"expected a quality in 0..{QUALITY_MAX}"
    return float(_number(text, float, lambda v: 0 <= v <= QUALITY_MAX, what, what))


_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)(i?[bB]?)\s*$")
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


def parse_size(text: str) -> int:
    """argparse type: a file size in bytes: ``20000``, ``20k``, ``1.5M`` (k = 1000, Ki = 1024)."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 20000, 20k or 1.5M, got {text!r}"
        )
    number, unit, binary = m.groups()
    scale = _UNITS[unit.lower()]
    if binary.lower().startswith("i"):
        if not unit:
            raise argparse.ArgumentTypeError(f"expected a size such as 20k or 20Ki, got {text!r}")
        scale = 1024 ** ("kmg".index(unit.lower()) + 1)
    value = float(number) * scale
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"size must be at least 1 byte, got {text!r}")
    return round(value)


def parse_bpp(text: str) -> float:
    """argparse type: a target in bits per pixel, in (0, MAX_BPP]."""
    return float(
        _number(
            text,
            float,
            lambda v: 0 < v <= MAX_BPP,
            "expected bits per pixel such as 0.5",
            f"bpp must be in (0, {MAX_BPP:g}]",
        )
    )


def parse_effort(text: str) -> int:
    """argparse type: an effort level, 0..EFFORT_MAX."""
    return int(
        _number(
            text,
            int,
            lambda v: 0 <= v <= EFFORT_MAX,
            f"expected an effort level in 0..{EFFORT_MAX}",
            f"effort must be in 0..{EFFORT_MAX}",
        )
    )
