"""Using and measuring a trained model: generation, fill-mask perplexity and whole-split evaluation.

Imports here are additive: each area appends its own names.
"""
from .context_use import target_losses
from .fill_mask import fill_mask
from .generation import generate
from .perplexity import EvalResult, evaluate, evaluate_perplexity

__all__ = ["EvalResult", "evaluate", "evaluate_perplexity", "fill_mask", "generate", "target_losses"]
