"""Where a model runs: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"``.

The name is checked in two steps. :func:`parse_device` needs no torch, so the
command line refuses a typo as a usage error before anything loads;
:func:`resolve_device` imports torch and checks that the device exists on this
machine, and is called only where a model is about to run. The entropy coder
always runs on the CPU; only the networks (and their inputs) move.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from licodec.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_NAMES", "parse_device", "resolve_device"]

#: What ``--device`` and ``device=`` accept (``cuda:N`` with any index N >= 0).
DEVICE_NAMES = ("cpu", "cuda", "cuda:N", "mps", "auto")

_PLAIN = ("cpu", "cuda", "mps", "auto")
_CUDA_N = re.compile(r"cuda:([0-9]+)")


def parse_device(spec: str | torch.device) -> str:
    """The canonical name of ``spec`` (``"CUDA:01"`` -> ``"cuda:1"``); ValueError if malformed.

    Only the spelling is checked: whether the device exists is :func:`resolve_device`'s job.
    """
    text = str(spec).strip().lower()
    if text in _PLAIN:
        return text
    m = _CUDA_N.fullmatch(text)
    if m:
        return f"cuda:{int(m.group(1))}"
    raise ValueError(f"unknown device {str(spec)!r}; choose cpu, cuda, cuda:N, mps or auto")


def _cuda_problem(index: int | None) -> str | None:
    """Why CUDA device ``index`` (None: the current one) cannot be used, or None."""
    import torch

    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    if not torch.cuda.is_available():
        return "CUDA is not available on this machine (no GPU or no driver)"
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        have = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        return f"this machine has {count} CUDA device{'s' if count != 1 else ''} ({have})"
    return None


def _mps_problem() -> str | None:
    import torch

    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_built():
        return f"this torch build ({torch.__version__}) has no MPS support"
    if not mps.is_available():
        return "MPS is not available on this machine (it needs Apple silicon and macOS 12.3+)"
    return None


def resolve_device(spec: str | torch.device) -> torch.device:
    """The ``torch.device`` that ``spec`` names on this machine.

    ``"auto"`` picks CUDA when available, else MPS, else the CPU. A malformed
    name or a device this machine lacks raises :class:`~licodec.errors.ModelError`
    with a one-line reason (the model cannot run there).
    """
    import torch

    try:
        name = parse_device(spec)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    if name == "auto":
        if _cuda_problem(None) is None:
            return torch.device("cuda")
        if _mps_problem() is None:
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        problem = _mps_problem()
    else:
        index = int(name.split(":")[1]) if ":" in name else None
        problem = _cuda_problem(index)
    if problem is not None:
        raise ModelError(f"device {name} cannot be used: {problem}; use --device cpu")
    return torch.device(name)
