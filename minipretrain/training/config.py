"""Run configurations: plain TOML files (stdlib ``tomllib``) with ``--set section.key=value`` overrides.

A config has four tables — ``[model]``, ``[data]``, ``[objective]``, ``[training]`` — and a top-level
``name`` that names the run folder ``runs/<name>/``. See ``configs/*.toml``.
"""
from __future__ import annotations

import ast
import copy
import sys
from pathlib import Path
from typing import Any, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SECTIONS = ("model", "data", "objective", "training")


class ConfigError(ValueError):
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
        node[key] = parse_value(raw)
    return config


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a TOML run config and apply overrides; unknown top-level tables are an error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no config file at {path} (the shipped ones are in configs/)")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from error
    config = apply_overrides(config, overrides)
    unknown = [k for k, v in config.items() if isinstance(v, dict) and k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{path}: unknown tables {unknown}; use {SECTIONS}")
    config.setdefault("name", path.stem)
    for section in SECTIONS:
        config.setdefault(section, {})
    return config
