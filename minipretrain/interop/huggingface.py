"""Read and write Hugging Face checkpoints (``config.json`` + ``model.safetensors``).

Our parameter names and layouts *are* Hugging Face's, so moving a checkpoint is renaming at the edges only.
Each architecture brings a :class:`HFFormat` (``interop/gpt2.py``, ``bert.py``, ``t5.py``, ``electra.py``): how its ``config.json``
maps to our config (refusing, by name, any setting that would compute something else), how the file's tensor
names map to ours, and the reverse for saving. ``interop/__init__.py`` registers each with one line.

A sentence-transformers folder (``modules.json`` naming a Transformer module) is read from that module's
folder: its weights are a bare ``BertModel``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import to_host
from ..errors import MinipretrainError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SENTENCE_TRANSFORMERS_MODULES = "modules.json"


class HFCheckpointError(MinipretrainError, ValueError):
    """A Hugging Face folder cannot be read: a file is missing, ``config.json`` is not JSON or lacks a key."""


class UnsupportedCheckpointError(HFCheckpointError):
    """The checkpoint's configuration describes a model minipretrain does not implement."""


def refuse(model_type: str, setting: str, value: Any, supported: Any) -> None:
    raise UnsupportedCheckpointError(
        f"{model_type} checkpoint has {setting}={value!r}; minipretrain implements only {setting}={supported!r}, "
        "so loading it would give different outputs"
    )


def check_settings(model_type: str, checks: dict[str, tuple[Any, Any]]) -> None:
    """``checks``: setting -> (what we implement, what the checkpoint has); the first difference is refused."""
    for setting, (supported, value) in checks.items():
        if value != supported:
            refuse(model_type, setting, value, supported)


@dataclass(frozen=True)
class HFFormat:
    """How one architecture's Hugging Face checkpoints map to a minipretrain model kind.

    Attributes:
        model_type: the ``model_type`` of Hugging Face's ``config.json`` ("gpt2", "bert").
        kind: our ``model.kind`` (a kind registered with ``minipretrain.models.register_model``).
        config_from_hf: ``(hf config dict, dtype, tensors) -> our config`` (tensors tell e.g. whether a head is there).
        names_from_hf: ``tensors -> state dict`` in our names.
        config_to_hf: ``our config -> hf config dict`` for saving.
        model_class_from_hf: ``tensors -> our model class``, for a ``model_type`` that holds several of our
            classes (ELECTRA's generator and discriminator); default: the class of ``kind``.
        saves: further ``model.kind``s this format writes (ELECTRA's halves), besides ``kind``.
        model_to_hf: ``our model -> hf config dict``, instead of ``config_to_hf``, when the config alone does not
            say which architecture to write.
    """

    model_type: str
    kind: str
    config_from_hf: Callable[[dict[str, Any], str, dict[str, np.ndarray]], Any]
    names_from_hf: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    config_to_hf: Callable[[Any], dict[str, Any]] | None = None
    model_class_from_hf: Callable[[dict[str, np.ndarray]], type] | None = None
    saves: tuple[str, ...] = ()
    model_to_hf: Callable[[Any], dict[str, Any]] | None = None


HF_FORMATS: dict[str, HFFormat] = {}


def register_hf_format(hf_format: HFFormat) -> HFFormat:
    HF_FORMATS[hf_format.model_type] = hf_format
    return hf_format


def _weights_folder(directory: Path) -> Path:
    """The folder with config.json: ``directory`` itself, or a sentence-transformers Transformer module's."""
    modules_file = directory / SENTENCE_TRANSFORMERS_MODULES
    if not directory.is_dir():
        raise HFCheckpointError(f"no Hugging Face folder at {directory}")
    if not (directory / CONFIG_FILE).is_file() and modules_file.is_file():
        modules = _read_json(modules_file)
        for module in modules if isinstance(modules, list) else []:
            if module.get("type", "").endswith("models.Transformer"):
                return directory / module.get("path", "")
        raise UnsupportedCheckpointError(f"{modules_file} names no Transformer module to load")
    return directory


def load_hf_checkpoint(directory: str | os.PathLike[str], dtype: str | None = None, device: str = "cpu") -> Any:
    """A model built from a Hugging Face folder (``config.json`` + ``model.safetensors``).

    Args:
        directory: what ``save_pretrained`` wrote (GPT2LMHeadModel/GPT2Model, BertForMaskedLM/BertForPreTraining,
            or a bare BertModel, which gives a BERT without MLM head; T5ForConditionalGeneration; ElectraForMaskedLM
            or ElectraForPreTraining), or a sentence-transformers folder.
        dtype: "float32" or "float64"; default: the dtype stored in the file.
        device: where the parameters go.

    Raises:
        UnsupportedCheckpointError: the configuration describes a model we do not implement.
        StateDictError: the weights miss entries or have the wrong shapes.
    """
    from safetensors.numpy import load_file

    from ..models import MODEL_KINDS

    folder = _weights_folder(Path(directory))
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise HFCheckpointError(f"{folder} has no {name}: minipretrain reads config.json + model.safetensors "
                                    "(what save_pretrained writes with safe_serialization=True)")
    hf = _read_json(folder / CONFIG_FILE)
    if not isinstance(hf, dict):
        raise HFCheckpointError(f"{folder / CONFIG_FILE} holds a {type(hf).__name__}, not a JSON object of settings")
    try:
        tensors = load_file(str(folder / WEIGHTS_FILE))
    except Exception as error:  # safetensors raises its own SafetensorError (and OSError) on a damaged file
        raise HFCheckpointError(f"{folder / WEIGHTS_FILE} is damaged or not a safetensors file ({error})") from None
    if dtype is None:
        floats = [a.dtype for a in tensors.values() if a.dtype.kind == "f"]
        dtype = str(floats[0]) if floats else "float32"
    model_type = hf.get("model_type")
    if model_type not in HF_FORMATS:
        raise UnsupportedCheckpointError(f"model_type={model_type!r} is not supported; minipretrain reads "
                                         f"{', '.join(repr(t) for t in HF_FORMATS)}")
    hf_format = HF_FORMATS[model_type]
    try:
        config = hf_format.config_from_hf(hf, dtype, tensors)
    except KeyError as error:
        raise HFCheckpointError(f"{folder / CONFIG_FILE} has no {error.args[0]!r}, which a {model_type} config "
                                "needs: the file is incomplete (save it again with save_pretrained)") from None
    model_class = (hf_format.model_class_from_hf(tensors) if hf_format.model_class_from_hf is not None
                   else MODEL_KINDS[hf_format.kind].model_class)
    model = model_class(config)
    model.load_state_dict(hf_format.names_from_hf(tensors))
    return model.to(device)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HFCheckpointError(f"{path} is not valid JSON ({error})") from None


def save_hf_checkpoint(model: Any, directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a Hugging Face folder that ``transformers``' ``from_pretrained`` opens.

    Weights go to ``model.safetensors`` (tied weights once, as ``save_pretrained`` does), in the model's dtype.
    """
    from safetensors.numpy import save_file

    formats = [f for f in HF_FORMATS.values() if model.kind in (f.kind, *f.saves)]
    if not formats:
        raise UnsupportedCheckpointError(f"no Hugging Face format is registered for model kind {model.kind!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hf = formats[0].model_to_hf(model) if formats[0].model_to_hf else formats[0].config_to_hf(model.config)
    hf["torch_dtype"] = hf["dtype"] = model.config.dtype
    (directory / CONFIG_FILE).write_text(json.dumps(hf, indent=2) + "\n")
    tensors = {name: np.ascontiguousarray(to_host(array)) for name, array in model.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    return directory
