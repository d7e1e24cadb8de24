"""From a run config (see ``configs/``) to the objects a run needs: tokenizer, datasets, model, objective.

``python -m minipretrain train`` and the experiments build their runs through here, so a config file means
the same thing everywhere. Each builder takes one table of the config.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
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


def build_datasets(data: dict[str, Any], tokenizer: Any, objective: str) -> tuple[Any, Any]:
    """The train and validation ``PretrainingDataset`` of ``data.corpus`` (or ``data.path``)."""
    from ..data import PretrainingDataset

    source = data.get("path") or data.get("corpus")
    if not source:
        raise ConfigError("[data] needs corpus = '<registry name>' or path = '<file or folder>'")
    seq_len = int(data.get("seq_len", 64))
    common = {"tokenizer": tokenizer, "seq_len": seq_len, "objective": objective,
              "cache_dir": data.get("cache_dir"), "seed": int(data.get("seed", 0))}
    train = PretrainingDataset(source, split="train", **common)
    validation = PretrainingDataset(source, split=data.get("eval_split", "validation"), **common)
    return train, validation


def build_model(model: dict[str, Any], vocab_size: int) -> Any:
    """A GPT or BERT from ``model.preset`` or explicit sizes (n_layer, n_head, n_embd, block_size, ...)."""
    from ..models import BERT, GPT, BERTConfig, GPTConfig, create_model

    options = {k: v for k, v in model.items() if k not in ("kind", "preset")}
    if model.get("preset"):
        return create_model(model["preset"], vocab_size=vocab_size, **options)
    kind = model.get("kind", "gpt")
    if kind not in ("gpt", "bert"):
        raise ConfigError(f"[model] kind must be 'gpt' or 'bert', got {kind!r}")
    config_class, model_class = (GPTConfig, GPT) if kind == "gpt" else (BERTConfig, BERT)
    if kind == "bert" and "block_size" in options:  # one name in configs for the longest sequence
        options["max_position_embeddings"] = options.pop("block_size")
    known = {f.name for f in fields(config_class)}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"[model] unknown keys for {kind}: {sorted(unknown)}; known: {sorted(known)}")
    return model_class(config_class(vocab_size=vocab_size, **options))


def build_objective(objective: dict[str, Any], model: Any, tokenizer: Any, seed: int = 0) -> Any:
    """``CausalLanguageModeling`` or ``MaskedLanguageModeling`` with the table's probabilities."""
    from ..objectives import CausalLanguageModeling, MaskedLanguageModeling

    name = objective.get("name", "clm")
    if name == "clm":
        return CausalLanguageModeling(model, tokenizer)
    if name == "mlm":
        options = {k: float(objective[k]) for k in ("mask_prob", "mask_token_prob", "random_token_prob")
                   if k in objective}
        return MaskedLanguageModeling(model, tokenizer, **options)
    raise ConfigError(f"[objective] name must be 'clm' or 'mlm', got {name!r}")


def build_run(config: dict[str, Any]) -> Run:
    """Tokenizer (trained on the train split if needed), datasets, model and objective for ``config``."""
    objective_name = config["objective"].get("name", "clm")
    model_kind = config["model"].get("kind", "gpt")
    expected_kind = {"clm": "gpt", "mlm": "bert"}.get(objective_name)
    if expected_kind and not config["model"].get("preset") and model_kind != expected_kind:
        raise ConfigError(f"objective {objective_name!r} trains a {expected_kind} model, but [model] kind is {model_kind!r}")
    tokenizer = build_tokenizer(config["data"])
    train, validation = build_datasets(config["data"], tokenizer, objective_name)
    model_table = dict(config["model"])
    seq_len = int(config["data"].get("seq_len", 64))
    if "block_size" not in model_table and not model_table.get("preset"):
        model_table["block_size"] = seq_len
    model_table.setdefault("seed", int(config["training"].get("seed", 0)))
    model = build_model(model_table, tokenizer.vocab_size)
    objective = build_objective(config["objective"], model, tokenizer, int(config["training"].get("seed", 0)))
    return Run(config=config, tokenizer=tokenizer, train_dataset=train, val_dataset=validation, model=model,
               objective=objective)


def run_dir_for(config: dict[str, Any], root: str | Path = "runs") -> Path:
    """``runs/<name>/``: where a run's checkpoint, log, tokenizer and config go."""
    return Path(root) / str(config.get("name", "run"))
