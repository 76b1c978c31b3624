"""Our weight format: one ``.safetensors`` file whose metadata holds the JSON config.

The config names the registered architecture and its exact kwargs, so a
file always rebuilds the model it was saved from; nothing is guessed from
tensor shapes. The coder's CDF tables are stored too (about 1 MB, most of it
the Gaussian tables), as the authors' checkpoints store them: the decoder uses
the encoder's tables instead of rebuilding them from the parameters, whose
float arithmetic differs between CPUs. Files written before they were stored
(licodec 0.1, e.g. the shipped ``wacnn-lite`` versions) have none, and
``load_weights`` builds them with ``update()``. The digest covers only the
parameters and the other buffers, so adding tables never changes it.

``save_weights(..., half=True)`` stores the large weight tensors as float16
(half the file size, which is what lets several shipped models fit in the
package); the model is rounded to those values first, so the file, the
digest and every bitstream describe the same float32 model after loading.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from licodec.codec.files import atomic_output
from licodec.errors import ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "FORMAT_VERSION",
    "load_weights",
    "model_from_config",
    "rates_of",
    "read_config",
    "save_weights",
    "weights_digest",
]

FORMAT_VERSION = 1
_META_KEY = "licodec"
# The coder tables: built by update() and stored with the weights (since licodec 0.2;
# older files have none, and load_weights builds them). Not part of the digest.
_DERIVED_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


def _is_derived(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in _DERIVED_BUFFERS


#: Parameters with at least this many elements are stored as float16 with ``half=True``,
#: except the entropy bottleneck's and the rate gains; the rest keeps float32.
HALF_MIN_NUMEL = 1024


def _half_names(model: nn.Module) -> set[str]:
    import torch

    return {
        n
        for n, p in model.named_parameters()
        if p.dtype == torch.float32
        and p.numel() >= HALF_MIN_NUMEL
        and not n.startswith("entropy_bottleneck.")
        and "gain" not in n.rsplit(".", 1)[-1]
    }


def _stored_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if not _is_derived(k)
    }


def _coder_tables(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's coder tables as stored (empty when they were never built)."""
    tables = {
        k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if _is_derived(k)
    }
    return tables if tables and all(t.numel() > 0 for t in tables.values()) else {}


def weights_digest(model: nn.Module) -> bytes:
    """8 bytes identifying the weights (SHA-256 over sorted names, dtypes, shapes, values).

    Containers store it so that a file is never decoded with other weights. The
    result is cached on the model under a key of every tensor's storage and
    version counter, so any in-place change (``load_state_dict``, an optimizer
    step, ``copy_``) invalidates it.
    """
    import torch

    tensors = _stored_tensors(model)
    key = tuple(
        (k, t.data_ptr(), t._version, t.dtype, tuple(t.shape)) for k, t in sorted(tensors.items())
    )
    cached = getattr(model, "_licodec_digest_cache", None)
    if isinstance(cached, tuple) and cached[0] == key:
        return cached[1]
    h = hashlib.sha256()
    for name, t in sorted(tensors.items()):
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    digest = h.digest()[:8]
    model._licodec_digest_cache = (key, digest)  # type: ignore[assignment]
    return digest


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def save_weights(
    model: nn.Module,
    path: str | os.PathLike[str],
    meta: Mapping[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write ``model`` (built by ``create_model``) and ``meta`` atomically to ``path``.

    ``meta`` carries what a user needs to know about the weights: lambda,
    metric, quality, training steps and data, measured results. ``half``
    rounds the model's large weight tensors to float16 *in place* and stores
    them so (see the module docstring).
    """
    import torch
    from safetensors.torch import save_file

    arch = getattr(model, "arch", None)
    kwargs = getattr(model, "config", None)
    if arch is None or kwargs is None:
        raise ValueError("model has no registry id: build it with licodec.create_model")
    halves = _half_names(model) if half else set()
    if halves:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name in halves:
                p = params[name]
                if not bool(torch.isfinite(p.half()).all()):
                    raise ValueError(f"{name} does not fit float16; save with half=False")
                p.copy_(p.half().float())
        if callable(getattr(model, "update", None)):
            model.update(force=True)  # type: ignore[operator]  # tables of the rounded model
    config = {
        "format": FORMAT_VERSION,
        "arch": arch,
        "kwargs": _jsonable(dict(kwargs)),
        "digest": weights_digest(model).hex(),
        **({"storage": "float16 for tensors of >= 1024 elements"} if halves else {}),
        **_jsonable(dict(meta or {})),
    }
    tensors = _stored_tensors(model)
    for name in halves:
        tensors[name] = tensors[name].half()
    # The coder tables travel with the weights, so no machine rebuilds them (the z tables'
    # floats differ between CPUs). Those of a model that never built them are built here.
    tables = _coder_tables(model)
    if not tables and callable(getattr(model, "update", None)):
        model.update()  # type: ignore[operator]
        tables = _coder_tables(model)
    tensors.update(tables)
    path = Path(path)
    with atomic_output(path, mkdir=True) as tmp:
        save_file(tensors, tmp, metadata={_META_KEY: json.dumps(config)})
    return path


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON config stored in a weights file, without loading the tensors."""
    from safetensors import safe_open

    try:
        # Metadata only: "numpy" rather than "pt", so reading a config does not import torch.
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get(_META_KEY)
    except FileNotFoundError:
        raise ModelError(f"weights file not found: {path}") from None
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ModelError(f"{path} is not a licodec weights file ({exc})") from None
    if raw is None:
        raise ModelError(
            f"{path} has no licodec config; convert it with `licodec import-checkpoint`"
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelError(f"{path}: its config is not valid JSON") from None
    if not isinstance(config, dict) or "arch" not in config or "kwargs" not in config:
        raise ModelError(f"{path}: its config lacks 'arch' or 'kwargs'")
    if int(config.get("format", 0)) > FORMAT_VERSION:
        raise ModelError(f"{path} uses weights format {config['format']}; upgrade licodec")
    return config


def rates_of(config: Mapping[str, Any]) -> list[int]:
    """The qualities a variable-rate weights file codes at ([] for a fixed-rate one)."""
    n = int((config.get("kwargs") or {}).get("num_rates", 0) or 0)
    return list(range(1, n + 1))


def model_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Build the (untrained) model a config describes."""
    from licodec.models import create_model

    kwargs = dict(config["kwargs"])
    # Files store complete kwargs; those written before variable rate existed are fixed-rate.
    kwargs.setdefault("num_rates", 0)
    try:
        return create_model(str(config["arch"]), **kwargs)
    except KeyError as exc:
        raise ModelError(str(exc.args[0]) if exc.args else str(exc)) from None


def load_weights(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from our weights file: eval mode, coder tables ready."""
    import torch
    from safetensors.torch import load_file
    from torch import nn

    config = read_config(path)
    model = model_from_config(config)
    tensors = load_file(str(path), device="cpu")
    tables = {k: tensors.pop(k) for k in [k for k in tensors if _is_derived(k)]}
    expected = _stored_tensors(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{path} does not match {config['arch']}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for key, t in tensors.items():
        if t.dtype == torch.float16 and expected[key].dtype == torch.float32:
            tensors[key] = t = t.float()  # half storage: the model computes in float32
        if t.shape != expected[key].shape:
            raise ModelError(
                f"{path}: {key} has shape {list(t.shape)}, {config['arch']} expects "
                f"{list(expected[key].shape)}"
            )
    nn.Module.load_state_dict(model, tensors, strict=False)
    wanted = {k for k in model.state_dict() if _is_derived(k)}
    if tables and set(tables) != wanted:
        raise ModelError(
            f"{path}: incomplete coder tables (missing {sorted(wanted - set(tables))[:3]})"
        )
    if tables:  # as the encoder that wrote the weights built them
        nn.Module.load_state_dict(model, tables, strict=False)
    model.to(device).eval()
    if not tables:  # weights of licodec 0.1: build them here
        model.update(force=True)  # type: ignore[operator]
    digest = weights_digest(model).hex()
    if config.get("digest") and config["digest"] != digest:
        raise ModelError(
            f"{path} is corrupt: weights digest {digest} != recorded {config['digest']}"
        )
    return model, config
