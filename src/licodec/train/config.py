"""Training settings: the papers' recipes, YAML files and ``key=value`` overrides.

Settings are resolved in this order, later ones winning: the recipe the model's
family registered with it (λ from the quality, schedule, batch size), a YAML file, the explicit
command-line flags, then ``--set key=value`` pairs. The resolved settings are
written to ``RUN_DIR/config.yaml`` so that a run can be repeated or resumed.

This module imports neither torch nor Lightning when it is imported; looking up a
model's recipe imports the model families.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from licodec.codec.files import atomic_output
from licodec.errors import InputError

if TYPE_CHECKING:
    from licodec.zoo.registry import TrainRecipe

__all__ = [
    "METRICS",
    "RESUME_MUTABLE",
    "SCHEDULES",
    "TrainConfig",
    "load_yaml",
    "parse_overrides",
    "preset",
    "recipe_lambda",
    "resolve_config",
    "save_yaml",
]

METRICS = ("mse", "ms-ssim")
SCHEDULES = ("step", "plateau", "cosine", "constant")
# Mixed precision only: the entropy model and the rate term need float32 parameters.
PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed")

# Keys that may change when a run is resumed: how it runs, and the step budget with
# the shape of the schedule (to extend a run), not what it learns (λ, data, model, lr).
RESUME_MUTABLE = frozenset(
    {
        "steps",
        "devices",
        "num_nodes",
        "strategy",
        "accelerator",
        "precision",
        "workers",
        "threads",
        "log_every",
        "ckpt_every",
        "keep_every",
        "val_every",
        "val",
        "val_images",
        "progress",
        "cache",
        "cache_limit_mb",
        "export",
        "compile",
        "channels_last",
        "milestones",
        "gamma",
        "min_lr",
        "plateau_factor",
        "plateau_patience",
        "lr",
        "aux_lr",  # e.g. a lower rate for the last stretch of a long run
        "rate_weights",  # which operating points get the steps, not what each one means
        "out",  # the run directory may have been moved
    }
)


def recipe_lambda(model: str, metric: str, quality: int) -> float:
    """The λ of ``quality`` 1..6 in the recipe the family registered with its model."""
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; use one of: {', '.join(METRICS)}")
    recipe = _recipe(model)
    table = recipe.lambdas.get(metric) if recipe is not None else None
    if table is None:
        raise InputError(
            f"model {model!r} registers no {metric} λ table: give the λ (--lambda, or "
            "--set rate_lambdas=[...] for a variable-rate model)"
        )
    if not 1 <= int(quality) <= len(table):
        raise InputError(f"quality must be 1..{len(table)}, got {quality}")
    return table[int(quality) - 1]


def _recipe(model: str) -> TrainRecipe | None:
    from licodec.models import get_spec

    try:
        return get_spec(model).recipe
    except KeyError:
        return None


def _rate_weights(values: Any, n: int) -> list[float]:
    """``values`` as n finite, non-negative floats with a positive, finite sum."""
    bad = InputError(f"rate_weights must be {n} non-negative numbers, not all zero, got {values}")
    if not isinstance(values, (list, tuple)) or len(values) != n:
        raise bad
    try:
        w = [float(v) for v in values if not isinstance(v, bool)]
    except (TypeError, ValueError):
        raise bad from None
    total = sum(w)
    if len(w) != n or any(not math.isfinite(v) or v < 0 for v in w) or not 0 < total < math.inf:
        raise bad
    return w


@dataclass
class TrainConfig:
    """Every setting of a training run (field names are the YAML / ``--set`` keys)."""

    # what is learned
    model: str = ""
    quality: int = 3
    metric: str = "mse"
    lmbda: float | None = None  # None: from the recipe table for (model, metric, quality)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # registry overrides
    rate_lambdas: list[float] | None = None  # variable rate: λ per rate (default: recipe 1..n)
    # variable rate: relative sampling weight of each rate (default: uniform), e.g. to
    # spend more steps on the operating points that lag behind
    rate_weights: list[float] | None = None
    init: str | None = None  # weights to start from (fine-tuning)
    # data
    data: str = ""
    val: str | None = None
    val_images: int = 4  # first N images (sorted) of --val; 0 = all
    crop: int = 256
    batch_size: int = 8
    hflip: bool = False  # the papers use plain random crops
    workers: int | None = None  # None: 0 when the data is cached in RAM, else min(4, cpus-1)
    cache: str = "auto"  # "auto" | "yes" | "no": decode all training images into RAM once
    cache_limit_mb: int = 4096  # "auto" caches when the decoded set fits in this
    # optimisation
    steps: int = 1_000_000  # optimizer steps
    lr: float = 1e-4
    aux_lr: float = 1e-3
    clip: float = 1.0  # max L2 norm of the main gradients; 0 disables
    schedule: str = "step"
    milestones: list[float] = field(default_factory=lambda: [0.9])  # <1: fraction of steps
    gamma: float = 0.1
    warmup: int = 0  # linear warm-up steps (every schedule)
    min_lr: float = 1e-6  # cosine floor
    plateau_factor: float = 0.3
    plateau_patience: int = 4  # evaluations without improvement
    accumulate: int = 1
    ms_ssim_win: int | None = None  # None: 11, reduced automatically for crops < 161
    seed: int = 0
    # scale-out
    accelerator: str = "auto"
    devices: str = "auto"  # "auto", an int, or a list like "0,1"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    threads: int | None = None  # torch intra-op threads per process
    compile: bool = False  # torch.compile the model (slow start, maybe faster steps)
    # NHWC activations and weights (oneDNN's native CPU layout): measured 1.41 -> 0.98 s
    # per 8x256² wacnn-lite step and 2.03 -> 1.83 s for stf-lite (embed 16, an earlier
    # size) on 2 cores. A speed setting for CPUs (docs/training.md), so off by default.
    channels_last: bool = False
    # bookkeeping
    out: str = ""
    log_every: int = 50
    ckpt_every: int = 500
    keep_every: int = 0  # also keep step-numbered checkpoints every N steps (0: only last)
    val_every: int = 1000
    progress: str = "auto"  # "bar", "log" (a line per log interval), "none"; auto: bar on a tty
    export: bool = True  # write RUN_DIR/model.safetensors at the end

    # ---------------------------------------------------------------- helpers
    @property
    def lambda_(self) -> float:
        """The λ in effect (explicit or from the recipe table)."""
        if self.lmbda is not None:
            return float(self.lmbda)
        return recipe_lambda(self.model, self.metric, self.quality)

    @property
    def num_rates(self) -> int:
        """Operating points of a variable-rate model (0 = fixed rate)."""
        from licodec.models import get_spec

        try:
            base = get_spec(self.model).kwargs
        except KeyError:
            base = {}
        return int({**base, **self.model_kwargs}.get("num_rates", 0))

    @property
    def lambdas(self) -> list[float]:
        """λ of every operating point: ``rate_lambdas`` or quality 1..n of the recipe for
        a variable-rate model (``quality`` then only picks the validation point), else
        ``[lambda_]``."""
        n = self.num_rates
        if not n:
            return [self.lambda_]
        if self.lmbda is not None:
            raise InputError(
                "a variable-rate model takes its λs from rate_lambdas or the "
                "recipe table; do not set lmbda"
            )
        if self.rate_lambdas is not None:
            lams = [float(v) for v in self.rate_lambdas]
            if len(lams) != n or any(v <= 0 for v in lams) or lams != sorted(set(lams)):
                raise InputError(
                    f"rate_lambdas must be {n} increasing positive numbers, got {self.rate_lambdas}"
                )
            return lams
        return [recipe_lambda(self.model, self.metric, q) for q in range(1, n + 1)]

    def milestone_steps(self) -> list[int]:
        """Milestones as step numbers (fractions are taken of ``steps``)."""
        return sorted(round(m * self.steps) if 0 < m < 1 else int(m) for m in self.milestones)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> TrainConfig:
        """Raise :class:`InputError` naming the first bad setting."""
        if not self.model:
            raise InputError("no model given (--model NAME)")
        if self.metric not in METRICS:
            raise InputError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if not 1 <= self.quality <= 6:
            raise InputError(f"quality must be 1..6, got {self.quality}")
        if self.lmbda is not None and not self.lmbda > 0:
            raise InputError(f"lmbda must be > 0, got {self.lmbda}")
        if self.num_rates > 6:
            raise InputError(f"the recipe has 6 qualities; num_rates={self.num_rates} is too many")
        if self.num_rates:
            _ = self.lambdas  # raises on lmbda or bad rate_lambdas
        elif self.rate_lambdas is not None:
            raise InputError("rate_lambdas is for a variable-rate model (num_rates > 0)")
        if self.rate_weights is not None:
            if not self.num_rates:
                raise InputError("rate_weights is for a variable-rate model (num_rates > 0)")
            self.rate_weights = _rate_weights(self.rate_weights, self.num_rates)
        if self.schedule not in SCHEDULES:
            raise InputError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.cache not in ("auto", "yes", "no"):
            raise InputError(f"cache must be auto, yes or no, got {self.cache!r}")
        if self.progress not in ("auto", "bar", "log", "none"):
            raise InputError(f"progress must be auto, bar, log or none, got {self.progress!r}")
        if self.precision not in PRECISIONS:
            raise InputError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.accelerator not in ("auto", "cpu", "gpu", "cuda", "mps"):
            raise InputError(f"accelerator must be auto, cpu or gpu, got {self.accelerator!r}")
        positive = {
            "crop": self.crop,
            "batch_size": self.batch_size,
            "steps": self.steps,
            "accumulate": self.accumulate,
            "num_nodes": self.num_nodes,
            "log_every": self.log_every,
            "ckpt_every": self.ckpt_every,
            "val_every": self.val_every,
            "lr": self.lr,
            "aux_lr": self.aux_lr,
        }
        for key, value in positive.items():
            if not value > 0:
                raise InputError(f"{key} must be > 0, got {value}")
        for key in ("clip", "warmup", "keep_every", "val_images", "cache_limit_mb"):
            if getattr(self, key) < 0:
                raise InputError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.workers is not None and self.workers < 0:
            raise InputError(f"workers must be >= 0, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        if not 0 < self.gamma <= 1 or not 0 < self.plateau_factor < 1:
            raise InputError("gamma must be in (0, 1] and plateau_factor in (0, 1)")
        if self.ms_ssim_win is not None and (self.ms_ssim_win < 3 or self.ms_ssim_win % 2 == 0):
            raise InputError(f"ms_ssim_win must be odd and >= 3, got {self.ms_ssim_win}")
        if self.metric == "ms-ssim" and self.crop < 33:
            raise InputError(f"MS-SSIM training needs crops of at least 33 px, got {self.crop}")
        if not self.data:
            raise InputError("no training data given (--data DIR)")
        if not self.out:
            raise InputError("no run directory given (--out RUN_DIR)")
        return self


def preset(model: str, metric: str = "mse") -> dict[str, Any]:
    """The settings of the recipe the family registered with ``model`` (optimiser, schedule,
    batch), as config overrides; none for a model registered without a recipe."""
    recipe = _recipe(model)
    return dict(recipe.settings) if recipe is not None else {}


# ------------------------------------------------------------------ coercion
def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Convert ``value`` (from YAML or a CLI string) to the field type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (
            isinstance(value, str) and value.lower() in ("none", "null", "")
        )
        if is_none and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, inner[0], value)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if tp is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(str(value).replace("_", ""))
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if origin is list:
            if isinstance(value, str):
                value = [v for v in value.replace("[", "").replace("]", "").split(",") if v]
            if not isinstance(value, (list, tuple)):
                value = [value]
            return [_coerce(name, args[0], v) for v in value]
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise InputError(f"setting {name!r}: cannot use {value!r} (expected {_type_name(tp)})")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in fields(TrainConfig)}


_ALIASES = {"lambda": "lmbda", "batch": "batch_size", "batch-size": "batch_size"}


def _normalise_key(key: str) -> str:
    key = key.strip()
    key = _ALIASES.get(key, key)
    return key.replace("-", "_")


def apply(cfg: TrainConfig, values: Mapping[str, Any], source: str) -> TrainConfig:
    """Return ``cfg`` with ``values`` applied; unknown keys are an :class:`InputError`."""
    types_ = _field_types()
    changes = {}
    for raw_key, value in values.items():
        key = _normalise_key(str(raw_key))
        if key not in types_:
            known = ", ".join(sorted(types_))
            raise InputError(f"{source}: unknown setting {raw_key!r}; known settings: {known}")
        changes[key] = _coerce(key, types_[key], value)
    return dataclasses.replace(cfg, **changes)


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["lr=2e-4", "milestones=[0.8,0.95]"]`` -> dict; values are parsed as YAML."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"--set expects key=value, got {pair!r}")
        key, text = pair.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = text
    return out


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping of settings."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError(f"config file not found: {path}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read config file {path}: {exc}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"config file {path} must hold a mapping of settings")
    return data


def save_yaml(
    cfg: TrainConfig, path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None
) -> None:
    """Write the resolved settings atomically (``extra``: read-only facts such as λ)."""
    import yaml

    data = cfg.to_dict()
    text = "# resolved settings of a `licodec train` run (edit a copy, pass it with --config)\n"
    text += yaml.safe_dump(data, sort_keys=False)
    if extra:
        text += "# derived, for information (ignored when read back):\n"
        text += "".join(f"# {k}: {v}\n" for k, v in extra.items())
    atomic_write_text(Path(path), text)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_output(path, mkdir=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def resolve_config(
    *,
    flags: Mapping[str, Any],
    yaml_file: str | None = None,
    sets: Iterable[str] = (),
    resume_from: Mapping[str, Any] | None = None,
    default_out: Callable[[TrainConfig], str] | None = None,
) -> TrainConfig:
    """Merge preset < YAML < flags < ``--set`` (or, on resume, the run's saved settings).

    ``flags`` holds only the options the user actually gave (None values are dropped).
    On resume, only keys in :data:`RESUME_MUTABLE` may differ from the saved run.
    """
    given = {k: v for k, v in flags.items() if v is not None}
    file_values = load_yaml(yaml_file) if yaml_file else {}
    set_values = parse_overrides(sets)

    if resume_from is not None:
        cfg = apply(TrainConfig(), resume_from, "saved run config")
        user = TrainConfig()
        changes: dict[str, Any] = {}
        for source, values in (
            ("config file", file_values),
            ("flags", given),
            ("--set", set_values),
        ):
            tmp = apply(user, values, source)
            for key in {_normalise_key(str(k)) for k in values}:
                changes[key] = getattr(tmp, key)
        for key, value in changes.items():
            if getattr(cfg, key) != value and key not in RESUME_MUTABLE:
                raise InputError(
                    f"cannot change {key!r} when resuming (run has {getattr(cfg, key)!r}, "
                    f"got {value!r}); start a new run with --init instead"
                )
        return dataclasses.replace(cfg, **changes).validate()

    model = given.get("model") or file_values.get("model") or set_values.get("model") or ""
    metric = set_values.get("metric") or given.get("metric") or file_values.get("metric") or "mse"
    cfg = TrainConfig()
    if model:
        cfg = apply(cfg, preset(str(model), str(metric)), "preset")
    cfg = apply(cfg, file_values, f"config file {yaml_file}")
    cfg = apply(cfg, given, "flags")
    cfg = apply(cfg, set_values, "--set")
    if not cfg.out and default_out is not None and cfg.model:
        cfg = dataclasses.replace(cfg, out=default_out(cfg))
    return cfg.validate()
