"""What each table of a run config may hold, read from the code that consumes it, and the check of a config.

* ``[training]``: the fields of :class:`~minipretrain.training.config.TrainingConfig` (plus ``device``);
* ``[data]``: the fields of :class:`~minipretrain.training.recipe.DataConfig`;
* ``[model]``: ``kind`` or ``preset``, ``block_size``, and the fields of the kind's config dataclass
  (``GPTConfig``, ``BERTConfig``, any registered kind);
* ``[objective]``: ``name`` and the keyword arguments of that objective's constructor (any registered one);
* top level: ``name``.

A key nobody reads is refused with the known keys and the closest match (``difflib``), a value whose type
differs from its field's annotation is refused with the field and the type, and a ``preset`` that explicit
sizes would silently override is refused naming both. Nothing is coerced: ``max_steps = 12.5`` is an error,
not 13 steps.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .config import SECTIONS, ConfigError, TrainingConfig

Origin = Callable[[str], str]
_ANYWHERE: Origin = lambda dotted: ""  # noqa: E731 - the default: no file or override to point at


def check_config(config: Mapping[str, Any], origin: Origin = _ANYWHERE) -> None:
    """Raise :class:`ConfigError` for the first unknown key, ill-typed value or preset conflict in ``config``.

    ``origin(dotted_key)`` says where a value came from (`` (from --set data.seq_len=abc)``, `` (in run.toml)``)
    and is appended to the message.
    """
    known = known_keys(config)
    for key, value in config.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"[{key}] must be a table of settings, got {value!r}{origin(key)}")
            continue
        if key not in known["top"]:
            raise ConfigError(f"unknown top-level key {key!r}{origin(key)}{_suggestion(key, known, 'top')} "
                              f"(known: {', '.join(known['top'])} and the tables {', '.join(SECTIONS)})")
        _check_value(key, value, known["top"][key], origin)
    for section in SECTIONS:
        for key, value in config.get(section, {}).items():
            dotted = f"{section}.{key}"
            if key not in known[section]:
                raise ConfigError(f"[{section}] has no key {key!r}{origin(dotted)}{_suggestion(key, known, section)} "
                                  f"(known: {', '.join(sorted(known[section]))})")
            _check_value(dotted, value, known[section][key], origin)
    _check_preset(config.get("model", {}), origin)
    _check_training_values(config.get("training", {}))


def known_keys(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"top" | section: {key: type annotation}}`` for this config (the model and objective tables depend
    on the chosen kind and objective name)."""
    from .recipe import DataConfig

    training = _dataclass_fields(TrainingConfig)
    training["device"] = typing.Optional[str]
    return {"top": {"name": str}, "training": training, "data": _dataclass_fields(DataConfig),
            "model": _model_fields(config.get("model", {})), "objective": _objective_fields(config.get("objective", {}))}


def _dataclass_fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _model_fields(table: Mapping[str, Any]) -> dict[str, Any]:
    from ..models import MODEL_KINDS, PRESETS

    preset = table.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"model.preset must be a string, got {preset!r}")
    if preset is not None and preset not in PRESETS:
        close = difflib.get_close_matches(preset, list(PRESETS), n=1)
        raise ConfigError(f"unknown model.preset {preset!r}" + (f": did you mean {close[0]}?" if close else "") +
                          f" (presets: {', '.join(PRESETS)})")
    kind = PRESETS[preset].kind if preset is not None else table.get("kind", "gpt")
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model.kind {kind!r}; registered kinds: {', '.join(MODEL_KINDS)}")
    model_kind = MODEL_KINDS[kind]
    if getattr(model_kind, "config_from_sizes", None) is not None:
        # a kind whose config is built by its own function checks its options itself (create_model)
        return {"kind": str, "preset": str, "block_size": int, **{key: Any for key in table}}
    fields = _dataclass_fields(model_kind.config_class)
    fields.pop("vocab_size")  # the tokenizer's
    # the shared size names (block_size, and n_embd etc. for a kind that renames them) stand for the kind's own
    renames = {"block_size": model_kind.block_size_field, **getattr(model_kind, "renames", {})}
    for shared, own in renames.items():
        if own in fields:
            fields[shared] = fields[own]
    return {"kind": str, "preset": str, **fields}


def _objective_fields(table: Mapping[str, Any]) -> dict[str, Any]:
    from ..objectives import OBJECTIVES

    name = table.get("name", "clm")
    if name not in OBJECTIVES:
        close = difflib.get_close_matches(str(name), list(OBJECTIVES), n=1)
        raise ConfigError(f"unknown objective.name {name!r}" + (f": did you mean {close[0]}?" if close else "") +
                          f" (objectives: {', '.join(OBJECTIVES)})")
    init = OBJECTIVES[name].__init__
    hints = typing.get_type_hints(init)
    # the options are the constructor's keyword arguments with defaults; the models and the tokenizer come
    # from the run itself
    parameters = [p for p in inspect.signature(init).parameters.values()
                  if p.default is not p.empty and p.name != "tokenizer"
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return {"name": str, **{p.name: hints.get(p.name, Any) for p in parameters}}


def _suggestion(key: str, known: dict[str, dict[str, Any]], section: str) -> str:
    """``": did you mean training.max_steps?"``: the key in another table, else the closest name."""
    elsewhere = [f"{other}.{key}" for other in SECTIONS if other != section and key in known[other]]
    if elsewhere:
        return f": did you mean {elsewhere[0]}?"
    candidates = {name: name if section == "top" else f"{section}.{name}" for name in known[section]}
    if section == "top":
        for other in SECTIONS:
            candidates.update({name: f"{other}.{name}" for name in known[other] if name not in candidates})
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return f": did you mean {candidates[close[0]]}?" if close else ""


# ----------------------------------------------------------------------------------------------- types
def _check_value(dotted: str, value: Any, hint: Any, origin: Origin) -> None:
    expected = _expected(value, hint)
    if expected is not None:
        raise ConfigError(f"{dotted} must be {expected}, got {value!r}{origin(dotted)}")


def _expected(value: Any, hint: Any) -> str | None:
    """None when ``value`` fits ``hint``, else what was expected ("an integer", "a number or none", ...)."""
    if hint is Any:
        return None
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in arguments if a is not type(None)]
        if value is None and len(options) < len(arguments):
            return None
        misses = [_expected(value, option) for option in options]
        if None in misses:
            return None
        described = " or ".join(dict.fromkeys(m for m in misses if m))
        return described + (" or none" if len(options) < len(arguments) else "")
    if origin is typing.Literal:
        return None if value in arguments else "one of " + ", ".join(repr(a) for a in arguments)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return _list_description(origin, arguments)
        items = arguments[:1] if origin is list or (len(arguments) == 2 and arguments[1] is Ellipsis) else arguments
        if origin is tuple and items is arguments and len(value) != len(arguments):
            return _list_description(origin, arguments)
        for index, item in enumerate(value):
            if items and _expected(item, items[min(index, len(items) - 1)]) is not None:
                return _list_description(origin, arguments)
        return None
    simple = {bool: ("true or false", lambda v: isinstance(v, bool)),
              int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
              float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
              str: ("a string", lambda v: isinstance(v, str))}
    if hint in simple:
        description, fits = simple[hint]
        return None if fits(value) else description
    return None  # an annotation this check does not model: the consumer checks it


def _list_description(origin: Any, arguments: tuple[Any, ...]) -> str:
    noun = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
    if origin is tuple and arguments and arguments[-1] is not Ellipsis and len(set(arguments)) == 1:
        return f"a list of {len(arguments)} {noun.get(arguments[0], 'values')}"
    return f"a list of {noun.get(arguments[0], 'values') if arguments else 'values'}"


# ----------------------------------------------------------------------------------------------- meaning
def _check_preset(table: Mapping[str, Any], origin: Origin) -> None:
    """A preset fixes the kind and the shape (layers, heads, width): an explicit different value is a conflict.
    ``block_size`` (the context length) and regularisation (dropout, seed, dtype) may be chosen freely."""
    from ..models import PRESETS

    if "preset" not in table:
        return
    preset = PRESETS[table["preset"]]
    fixed = {"kind": preset.kind, **{k: v for k, v in preset.fields().items() if k != "block_size"}}
    for key, value in fixed.items():
        if key in table and table[key] != value:
            raise ConfigError(
                f"model.preset = {table['preset']!r} fixes {key} = {value!r}, but the config also sets "
                f"model.{key} = {table[key]!r}{origin('model.' + key)}: remove one of them (a preset or explicit sizes)")


def _check_training_values(table: Mapping[str, Any]) -> None:
    """The trainer's own range checks (warmup within max_steps, positive rates...), before anything runs."""
    options = {k: v for k, v in table.items() if k != "device"}
    try:
        TrainingConfig(**options).validate()
    except ValueError as error:
        raise ConfigError(f"[training] {str(error).removeprefix('PreTrainer: ')}") from None
