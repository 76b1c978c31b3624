"""Find the quality that makes a file of a target size (``--size`` / ``--bpp``).

The search runs on real coded sizes, container included: ``probe(code)`` codes
the image at quality code ``code`` (0..10000, :mod:`licodec.codec.quality`) and
returns the file's length. Sizes grow with the quality, roughly exponentially,
so the search interpolates ``log(size)`` linearly between the closest sizes
below and above the target (regula falsi, with a bisection step whenever the
bracket does not shrink fast enough). It usually lands within the tolerance in
3-6 probes. Pure Python: no torch, so it is tested without a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from licodec.codec.quality import QUALITY_CODES, quality_of
from licodec.errors import TargetError

__all__ = ["TOLERANCE", "SearchResult", "search_size"]

#: Relative distance from the target a file may land at.
TOLERANCE = 0.02
#: Probes before the search gives up and returns the nearest size found.
MAX_PROBES = 24
#: Initial guess of d log(size) / d code (sizes grow about 10x over the scale).
_SLOPE = math.log(10) / QUALITY_CODES


@dataclass
class SearchResult:
    """The code the search chose, its size, and every probe made (code -> bytes)."""

    code: int
    size: int
    probes: dict[int, int] = field(default_factory=dict)


def _human(n: int) -> str:
    return f"{n} bytes" if n < 10_000 else f"{n / 1000:.1f} kB"


def search_size(
    probe: Callable[[int], int],
    target: int,
    tolerance: float = TOLERANCE,
    lo: int = 0,
    hi: int = QUALITY_CODES,
    start: int | None = None,
    what: str = "size",
) -> SearchResult:
    """The quality code in ``lo..hi`` whose file is within ``tolerance`` of ``target`` bytes.

    Raises :class:`TargetError` when the target is below the smallest or above
    the largest size reachable, or when no code lands within the tolerance
    (sizes jump over the target between two neighbouring codes); the message
    names the nearest size and its quality.
    """
    if target < 1:
        raise TargetError(f"target {what} must be at least 1 byte, got {target}")
    probes: dict[int, int] = {}

    def size_at(code: int) -> int:
        if code not in probes:
            probes[code] = int(probe(code))
        return probes[code]

    def ok(size: int) -> bool:
        return abs(size - target) <= tolerance * target

    def nearest() -> tuple[int, int]:
        code = min(probes, key=lambda c: (abs(math.log(probes[c] / target)), c))
        return code, probes[code]

    sides: list[bool] = []  # per probe: was it under the target
    below: int | None = None  # largest code known to give a size under the target
    above: int | None = None  # smallest code known to give a size over it
    code = (lo + hi) // 2 if start is None else min(max(start, lo), hi)
    while len(probes) < MAX_PROBES:
        size = size_at(code)
        if ok(size):
            return SearchResult(code, size, probes)
        sides.append(size < target)
        if size < target:
            below = code if below is None else max(below, code)
        else:
            above = code if above is None else min(above, code)
        if below is not None and below >= hi and size_at(hi) < target:
            raise TargetError(
                f"target {what} {_human(target)} is above the highest rate: the largest file "
                f"this model makes of this image is {_human(probes[hi])} (quality "
                f"{quality_of(hi):g}); ask for less"
            )
        if above is not None and above <= lo and size_at(lo) > target:
            raise TargetError(
                f"target {what} {_human(target)} is below the lowest rate: the smallest file "
                f"this model makes of this image is {_human(probes[lo])} (quality "
                f"{quality_of(lo):g}); ask for more"
            )
        if below is not None and above is not None:
            if above - below <= 1:
                best, best_size = nearest()
                raise TargetError(
                    f"no quality gives {_human(target)} within {tolerance:.0%}: the sizes step "
                    f"from {_human(probes[below])} (quality {quality_of(below):g}) to "
                    f"{_human(probes[above])} (quality {quality_of(above):g}); the nearest is "
                    f"{_human(best_size)} at quality {quality_of(best):g}"
                )
            # log-linear interpolation between the bracket ends, kept off them
            a, b = math.log(probes[below]), math.log(probes[above])
            t = (math.log(target) - a) / (b - a) if b > a else 0.5
            width = above - below
            guess = below + min(max(t, 0.02), 0.98) * width
            code = round(guess)
            # Two probes in a row on one side: interpolation is creeping; bisect instead.
            if code in probes or (len(sides) >= 2 and sides[-1] == sides[-2]):
                code = (below + above) // 2
            code = min(max(code, below + 1), above - 1)
        else:
            # One side only: step along the initial slope, estimated again once two probes exist.
            known = sorted(probes)
            slope = _SLOPE
            if len(known) >= 2:
                c0, c1 = known[0], known[-1]
                s0, s1 = probes[c0], probes[c1]
                if s1 > s0:
                    slope = max((math.log(s1) - math.log(s0)) / (c1 - c0), _SLOPE / 10)
            step = (math.log(target) - math.log(size)) / slope
            step = 1.25 * step  # overshoot a little to bracket the target
            code = round(code + step)
            code = min(max(code, lo), hi)
            if code in probes:
                code = hi if below is not None else lo
    best, best_size = nearest()
    raise TargetError(
        f"the search for {_human(target)} stopped after {MAX_PROBES} tries; the nearest is "
        f"{_human(best_size)} at quality {quality_of(best):g}"
    )
