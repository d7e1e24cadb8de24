"""Run configurations: plain TOML files (stdlib ``tomllib``) with ``--set section.key=value`` overrides, and
:class:`TrainingConfig`, the ``[training]`` table as the trainer reads it.

A config has four tables — ``[model]``, ``[data]``, ``[objective]``, ``[training]`` — and a top-level
``name`` that names the run folder ``runs/<name>/``. See ``configs/*.toml``.
"""
from __future__ import annotations

import ast
import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import MinipretrainError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SECTIONS = ("model", "data", "objective", "training")


class ConfigError(MinipretrainError, ValueError):
    """A configuration file or override is malformed."""


def parse_value(text: str) -> Any:
    """``"1e-3"`` → 0.001, ``"true"`` → True, ``"[0.9, 0.99]"`` → [0.9, 0.99], anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``config`` with each ``section.key=value`` (or top-level ``key=value``) applied."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value (e.g. training.max_steps=100), got {item!r}")
        dotted, raw = item.split("=", 1)
        *path, key = dotted.strip().split(".")
        if path and path[0] not in SECTIONS:
            raise ConfigError(f"--set {dotted}: unknown section {path[0]!r}; sections are {SECTIONS}")
        node = config
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {dotted}: {part} is not a table")
        node[key] = parse_value(raw)
    return config


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a TOML run config, apply overrides, and check every key and value (``schema.check_config``):
    an unknown key, an ill-typed value or a preset conflict is a :class:`ConfigError` naming its origin."""
    from .schema import check_config

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no config file at {path} (the shipped ones are in configs/)")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from error
    config = apply_overrides(config, overrides)
    config.setdefault("name", path.stem)
    for section in SECTIONS:
        config.setdefault(section, {})
    from_overrides = {item.split("=", 1)[0].strip(): item for item in overrides}
    check_config(config, lambda dotted: f" (from --set {from_overrides[dotted]})" if dotted in from_overrides
                 else f" (in {path})")
    return config


SCHEDULES = ("cosine", "constant")


@dataclass
class TrainingConfig:
    """Every hyperparameter of a run (saved in each checkpoint and log)."""

    batch_size: int = 32
    learning_rate: float = 3e-4
    max_steps: int = 10_000
    gradient_accumulation_steps: int = 1
    warmup_steps: int = 0
    min_lr: float | None = None  # default: learning_rate / 10
    schedule: str = "cosine"
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0
    eval_interval: int = 500
    eval_batches: int | None = None  # None: the whole evaluation split
    eval_batch_size: int | None = None
    # Evaluations before the last step may score only the split's first batches: a progress estimate (as
    # nanoGPT's eval_iters), the same windows each time; the last step's evaluation follows eval_batches.
    interim_eval_batches: int | None = None  # None: every evaluation follows eval_batches
    log_interval: int = 10  # how often the progress bar's loss/lr/tokens-per-second refresh (every step is logged)
    checkpoint_interval: int | None = None  # None: only at the end (and on Ctrl-C)
    seed: int = 0
    # Several MPI ranks on the CPU: each rank applies AdamW to its share of the parameters (ZeRO stage 1,
    # minipretrain.distributed.optimizer_shard); the same updates bit for bit, a fraction of the work.
    shard_optimizer: bool = True
    collective_timeout_s: float | None = None  # data parallel: a rank silent this long ends the run (None: MPI's)
    divergence_factor: float | None = 3.0  # stop when the loss stays this many times its running level...
    divergence_steps: int = 5  # ...for this many steps in a row (None factor: only NaN/inf stops a run)

    def validate(self) -> None:
        checks = [
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.max_steps >= 1, "max_steps must be at least 1"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be at least 1"),
            (0 <= self.warmup_steps <= self.max_steps,
             f"warmup_steps ({self.warmup_steps}) must be between 0 and max_steps ({self.max_steps})"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}"),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip must be positive or None"),
            (self.eval_interval >= 0 and self.log_interval >= 1, "eval_interval >= 0 and log_interval >= 1"),
            (self.interim_eval_batches is None or self.interim_eval_batches >= 1,
             "interim_eval_batches must be at least 1 or None (then every evaluation follows eval_batches)"),
            (self.divergence_factor is None or self.divergence_factor > 1, "divergence_factor must exceed 1 or be None"),
            (self.divergence_steps >= 1, "divergence_steps must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"PreTrainer: {message}")


@dataclass
class TrainingResult:
    """What a call to ``train()`` did."""

    steps: int
    tokens_seen: int
    final_loss: float
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0
    stopped_early: str | None = None  # "interrupted" when Ctrl-C ended it
    checkpoint: str | None = None
