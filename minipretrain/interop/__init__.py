"""Interoperability: Hugging Face checkpoints (GPT-2 and BERT) in and out."""
from .huggingface import UnsupportedCheckpointError, load_hf_checkpoint, save_hf_checkpoint

__all__ = ["UnsupportedCheckpointError", "load_hf_checkpoint", "save_hf_checkpoint"]
