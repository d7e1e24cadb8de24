"""Interoperability: Hugging Face checkpoints in and out. A new architecture adds its ``HFFormat`` file and
one ``register_hf_format`` line here."""
from .bert import BERT_FORMAT
from .electra import ELECTRA_FORMAT
from .gpt2 import GPT2_FORMAT
from .t5 import T5_FORMAT
from .huggingface import (
    HF_FORMATS, HFCheckpointError, HFFormat, UnsupportedCheckpointError, load_hf_checkpoint, register_hf_format,
    save_hf_checkpoint,
)

register_hf_format(GPT2_FORMAT)
register_hf_format(BERT_FORMAT)
register_hf_format(T5_FORMAT)
register_hf_format(ELECTRA_FORMAT)

__all__ = ["HF_FORMATS", "HFCheckpointError", "HFFormat", "UnsupportedCheckpointError", "load_hf_checkpoint", "register_hf_format",
           "save_hf_checkpoint"]
