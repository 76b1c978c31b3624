"""Import the authors' published checkpoints (``.pth.tar``) into our format.

The STF/WACNN and TCM training scripts save ``{"epoch", "state_dict",
"loss", "optimizer", "aux_optimizer", "lr_scheduler"}``; our modules carry
the authors' names and shapes, so after a few renames their ``state_dict``
loads with ``strict=True``. Files are read with ``torch.load(weights_only=True)``:
no arbitrary code is ever unpickled.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from licodec.errors import InputError, ModelError

__all__ = ["load_authors_checkpoint", "load_authors_state_dict", "normalize_state_dict"]

# Old EntropyBottleneck parameter names -> CompressAI >= 1.2.6 names.
_EB_OLD = re.compile(
    r"^(?P<pre>.*entropy_bottleneck)\._(?P<kind>matrix|bias|factor|matrices|biases|factors)\.?(?P<i>\d+)$"
)
_EB_NEW = {"matrix": "matrices", "bias": "biases", "factor": "factors"}


def normalize_state_dict(
    state_dict: Mapping[str, torch.Tensor], model: nn.Module | None = None
) -> dict[str, torch.Tensor]:
    """Rename what differs between the authors' files and our modules.

    * strips a leading ``module.`` (DataParallel wrappers),
    * renames old EntropyBottleneck keys (``_matrix0``, ``_biases.0`` ...),
    * then applies the family's own ``checkpoint_filter`` from the registry
      (``model`` built by ``create_model``), e.g. STF's stray ``h_s.*`` keys.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        m = _EB_OLD.match(key)
        if m:
            kind = _EB_NEW.get(m["kind"], m["kind"])
            key = f"{m['pre']}.{kind}.{m['i']}"
        out[key] = value
    arch = getattr(model, "arch", None)
    if model is not None and arch is not None:
        from licodec.models import get_spec

        keep = get_spec(arch).checkpoint_filter
        if keep is not None:
            out = keep(out, model)
    return out


def load_authors_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Strictly load an authors'-layout ``state_dict`` into ``model`` and rebuild its coder tables.

    Shape and key mismatches raise :class:`ModelError` naming the key.
    """
    sd = normalize_state_dict(state_dict, model)
    ours = model.state_dict()
    missing = sorted(set(ours) - set(sd))
    unexpected = sorted(set(sd) - set(ours))
    arch = getattr(model, "arch", type(model).__name__)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})")
        raise ModelError(f"checkpoint does not fit {arch}: " + "; ".join(parts))
    for key, value in sd.items():
        mine = ours[key]
        # CDF tables change size with the learned quantiles; they are resized on load.
        if mine.numel() == 0 or key.rsplit(".", 1)[-1] in (
            "_quantized_cdf",
            "_offset",
            "_cdf_length",
            "scale_table",
        ):
            continue
        if value.shape != mine.shape:
            raise ModelError(
                f"checkpoint key {key!r} has shape {list(value.shape)}, "
                f"{arch} expects {list(mine.shape)}"
            )
    for name, module in model.named_modules():
        for bname in ("_quantized_cdf", "_offset", "_cdf_length", "scale_table"):
            key = f"{name}.{bname}" if name else bname
            buf = getattr(module, bname, None)
            if key in sd and isinstance(buf, torch.Tensor) and buf.shape != sd[key].shape:
                buf.resize_(sd[key].shape)
    nn.Module.load_state_dict(model, sd, strict=True)
    model.eval()
    # Tables the checkpoint carries are kept (they are what its authors coded with); a
    # checkpoint saved before update() has empty ones, built here.
    tables = [
        t
        for k, t in model.state_dict().items()
        if k.rsplit(".", 1)[-1] in ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
    ]
    if not tables or any(t.numel() == 0 for t in tables):
        model.update(force=True)  # type: ignore[operator]
    return model


def _read(path: str | os.PathLike[str]) -> Mapping[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise InputError(f"checkpoint not found: {path}")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"cannot read {path} as a PyTorch checkpoint (weights only): {first}"
        ) from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path} holds no state_dict of tensors")
    return obj


def load_authors_checkpoint(path: str | os.PathLike[str], arch: str, **overrides: Any) -> nn.Module:
    """Build ``arch`` and load the authors' checkpoint file into it."""
    from licodec.models import create_model

    try:
        model = create_model(arch, **overrides)
    except KeyError as exc:
        raise ModelError(str(exc.args[0])) from None
    return load_authors_state_dict(model, _read(path))
