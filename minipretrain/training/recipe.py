"""From a run config (see ``configs/``) to the objects a run needs: tokenizer, datasets, model, objective.

``python -m minipretrain train`` and the experiments build their runs through here, so a config file means
the same thing everywhere. Each builder takes one table of the config.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError
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


@dataclass
class DataConfig:
    """The ``[data]`` table: which text, how it is tokenised, and the window length."""

    corpus: str | None = None  # a registry name ("tinyshakespeare"); or
    path: str | None = None  # a file or folder (see minipretrain.data.sources)
    tokenizer: str = "char"  # char | bpe | wordpiece, trained on the train split
    tokenizer_path: str | None = None  # or a saved tokenizer (then `tokenizer` is not used)
    vocab_size: int = 4096  # for bpe and wordpiece
    seq_len: int = 64  # tokens a model reads at once (MLM: [CLS] and [SEP] included)
    cache_dir: str | None = None  # token files (default <data dir>/token_cache)
    seed: int = 0
    eval_split: str = "validation"


def build_tokenizer(data: dict[str, Any]) -> Any:
    """A fresh (untrained) tokenizer of the kind ``data.tokenizer`` names: char, bpe or wordpiece."""
    from ..tokenizers import CharTokenizer, TextTokenizer, WordPieceTokenizer, load_tokenizer

    settings = DataConfig(**data)
    if settings.tokenizer_path:
        return load_tokenizer(settings.tokenizer_path)
    kind = settings.tokenizer
    if kind == "char":
        return CharTokenizer()
    if kind == "bpe":
        return TextTokenizer(vocab_size=settings.vocab_size)
    if kind == "wordpiece":
        return WordPieceTokenizer(vocab_size=settings.vocab_size)
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
    from ..errors import MinipretrainError
    from ..objectives import data_layout

    try:
        layout = data_layout(objective)
    except ValueError as error:
        raise ConfigError(f"[objective]: {error}") from error

    settings = DataConfig(**data)
    source = settings.path or settings.corpus
    if not source:
        raise ConfigError("[data] needs corpus = '<registry name>' or path = '<file or folder>'")
    common = {"tokenizer": tokenizer, "seq_len": settings.seq_len, "objective": layout,
              "cache_dir": settings.cache_dir, "seed": settings.seed}
    try:
        train = PretrainingDataset(source, split="train", **common)
        validation = PretrainingDataset(source, split=settings.eval_split, **common)
    except ValueError as error:
        if isinstance(error, MinipretrainError):
            raise
        raise ConfigError(f"[data]: {error}") from error  # seq_len too short, a split shorter than a window
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
    """Tokenizer (trained on the train split if needed), datasets, model and objective for ``config``.

    The config is checked first (``schema.check_config``) and the windows against the model's longest
    sequence, so a run that cannot train fails here, before its first step or any file in its run folder.
    """
    from .schema import check_config

    check_config(config)
    check_windows_fit(config)  # before the (possibly long) tokenizer training
    tokenizer = build_objective_tokenizer(config, build_tokenizer(config["data"]))
    train, validation = build_datasets(config["data"], tokenizer, config["objective"].get("name", "clm"))
    model = build_model(config, tokenizer.vocab_size)
    objective = build_objective(config, model, tokenizer)
    return Run(config=config, tokenizer=tokenizer, train_dataset=train, val_dataset=validation, model=model,
               objective=objective)


def check_windows_fit(config: dict[str, Any]) -> None:
    """Refuse ``[data] seq_len`` longer than the model's longest sequence (its learned positions)."""
    from ..models import PRESETS

    seq_len = DataConfig(**config["data"]).seq_len
    name, options = model_options(config)
    block_size = options.get("block_size", PRESETS[name].block_size if name in PRESETS else seq_len)
    if seq_len > block_size:
        preset = config["model"].get("preset")
        source = f"preset {preset!r}" if preset and "block_size" not in config["model"] else "[model]"
        raise ConfigError(
            f"[data] seq_len = {seq_len} is longer than the model's block_size = {block_size} (from {source}): "
            f"lower data.seq_len or raise model.block_size (e.g. --set model.block_size={seq_len})")


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], Any, Any]:
    """(config, tokenizer, model with the run's final weights, in eval mode) from a run folder.

    The three files must belong together: the tokenizer is the one the checkpoint was trained with
    (its fingerprint), and ``config.json`` rebuilds the checkpoint's model; otherwise a ``CheckpointError``
    says which file disagrees.
    """
    from ..tokenizers import load_tokenizer
    from .checkpoint import check_tokenizer_matches, load_checkpoint
    from .run_folder import RUN_FILES, RunFolderError

    run_dir = Path(run_dir)
    for name in RUN_FILES[:3]:
        if not (run_dir / name).is_file():
            raise RunFolderError(f"{run_dir / name} is missing: {run_dir} is not a finished run folder "
                                 "(train one with `python -m minipretrain train --config ... --run-dir ...`)")
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{run_dir / 'config.json'} is damaged ({error})") from None
    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
    state = load_checkpoint(run_dir / "checkpoint.npz")
    check_tokenizer_matches(state, tokenizer, run_dir / "checkpoint.npz", f"{run_dir / 'tokenizer.json'} is")
    model = build_model(config, tokenizer.vocab_size)
    saved = state.get("model_config")
    if saved is not None and json.loads(json.dumps(saved)) != json.loads(json.dumps(asdict(model.config))):
        differences = sorted(k for k in saved if saved.get(k) != asdict(model.config).get(k))
        raise CheckpointError(
            f"{run_dir / 'config.json'} describes another model than {run_dir / 'checkpoint.npz'} holds "
            f"({', '.join(f'{k}: {asdict(model.config).get(k)!r} vs {saved.get(k)!r}' for k in differences)}); "
            "the run folder was changed by hand: restore config.json from the checkpoint's model_config")
    model.load_state_dict(state["model"])
    model.eval()
    return config, tokenizer, model


def run_dir_for(config: dict[str, Any], root: str | Path = "runs") -> Path:
    """``runs/<name>/``: where a run's checkpoint, log, tokenizer and config go."""
    return Path(root) / str(config.get("name", "run"))
