"""From a run config (see ``configs/``) to the objects a run needs: tokenizer, datasets, model, objective.

``python -m minipretrain train`` and the experiments build their runs through here, so a config file means
the same thing everywhere. Each builder takes one table of the config.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError


@dataclass
class Run:
    """Everything a training run is made of."""

    config: dict[str, Any]
    tokenizer: Any
    train_dataset: Any
    val_dataset: Any
    model: Any
    objective: Any


def build_tokenizer(data: dict[str, Any]) -> Any:
    """A fresh (untrained) tokenizer of the kind ``data.tokenizer`` names: char, bpe or wordpiece."""
    from ..tokenizers import CharTokenizer, TextTokenizer, WordPieceTokenizer, load_tokenizer

    if data.get("tokenizer_path"):
        return load_tokenizer(data["tokenizer_path"])
    kind = data.get("tokenizer", "char")
    if kind == "char":
        return CharTokenizer()
    if kind == "bpe":
        return TextTokenizer(vocab_size=int(data.get("vocab_size", 4096)))
    if kind == "wordpiece":
        return WordPieceTokenizer(vocab_size=int(data.get("vocab_size", 4096)))
    raise ConfigError(f"[data] tokenizer must be 'char', 'bpe' or 'wordpiece', got {kind!r}")


def build_objective_tokenizer(config: dict[str, Any], tokenizer: Any) -> Any:
    """``tokenizer`` as the run's objective needs it (``objectives.tokenizer_for``: span corruption adds sentinels)."""
    from ..objectives import tokenizer_for

    options = dict(config["objective"])
    try:
        return tokenizer_for(options.pop("name", "clm"), tokenizer, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"[objective]: {error}") from error


def build_datasets(data: dict[str, Any], tokenizer: Any, objective: str) -> tuple[Any, Any]:
    """The train and validation ``PretrainingDataset`` of ``data.corpus`` (or ``data.path``), cut into the
    windows the objective called ``objective`` trains on (its ``data_layout``)."""
    from ..data import PretrainingDataset
    from ..objectives import data_layout

    try:
        layout = data_layout(objective)
    except ValueError as error:
        raise ConfigError(f"[objective]: {error}") from error

    source = data.get("path") or data.get("corpus")
    if not source:
        raise ConfigError("[data] needs corpus = '<registry name>' or path = '<file or folder>'")
    seq_len = int(data.get("seq_len", 64))
    common = {"tokenizer": tokenizer, "seq_len": seq_len, "objective": layout,
              "cache_dir": data.get("cache_dir"), "seed": int(data.get("seed", 0))}
    train = PretrainingDataset(source, split="train", **common)
    validation = PretrainingDataset(source, split=data.get("eval_split", "validation"), **common)
    return train, validation


def model_options(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(preset or kind, options)`` for ``create_model`` from a run config: the one block-size rule.

    A preset keeps its own block size unless ``[model]`` sets ``block_size``; explicit sizes take
    ``block_size`` or else ``[data] seq_len``. The initial weights' seed defaults to ``[training] seed``.
    ``build_run`` and ``load_run`` both call this, so a run folder rebuilds exactly the model it trained.
    """
    table = dict(config["model"])
    preset = table.pop("preset", None)
    kind = table.pop("kind", "gpt")
    if not preset:
        table.setdefault("block_size", int(config["data"].get("seq_len", 64)))
    table.setdefault("seed", int(config["training"].get("seed", 0)))
    return preset or kind, table


def build_model(config: dict[str, Any], vocab_size: int) -> Any:
    """The run's model (``minipretrain.models.create_model`` with :func:`model_options`)."""
    from ..models import create_model

    name, options = model_options(config)
    try:
        return create_model(name, vocab_size=vocab_size, **options)
    except (KeyError, ValueError) as error:
        raise ConfigError(f"[model]: {error.args[0]}") from error


def build_objective(config: dict[str, Any], model: Any, tokenizer: Any) -> Any:
    """The run's objective: ``make_objective([objective] name, model, tokenizer, **the table's other keys)``."""
    from ..objectives import make_objective

    options = dict(config["objective"])
    name = options.pop("name", "clm")
    try:
        return make_objective(name, model, tokenizer, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"[objective]: {error}") from error


def build_run(config: dict[str, Any]) -> Run:
    """Tokenizer (trained on the train split if needed), datasets, model and objective for ``config``."""
    tokenizer = build_objective_tokenizer(config, build_tokenizer(config["data"]))
    train, validation = build_datasets(config["data"], tokenizer, config["objective"].get("name", "clm"))
    model = build_model(config, tokenizer.vocab_size)
    objective = build_objective(config, model, tokenizer)
    return Run(config=config, tokenizer=tokenizer, train_dataset=train, val_dataset=validation, model=model,
               objective=objective)


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], Any, Any]:
    """(config, tokenizer, model with the run's final weights, in eval mode) from a run folder."""
    from ..tokenizers import load_tokenizer
    from .checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    for name in ("config.json", "tokenizer.json", "checkpoint.npz"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} is missing: is {run_dir} a finished run folder?")
    config = json.loads((run_dir / "config.json").read_text())
    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
    model = build_model(config, tokenizer.vocab_size)
    model.load_state_dict(load_checkpoint(run_dir / "checkpoint.npz")["model"])
    model.eval()
    return config, tokenizer, model


def run_dir_for(config: dict[str, Any], root: str | Path = "runs") -> Path:
    """``runs/<name>/``: where a run's checkpoint, log, tokenizer and config go."""
    return Path(root) / str(config.get("name", "run"))
