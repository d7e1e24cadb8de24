"""Optimisation: AdamW and SGD, learning-rate schedules, and gradient-norm clipping.

A training step, with gradient accumulation (see :func:`minipretrain.objectives.accumulate_gradients`)::

    optimizer = AdamW(param_groups(model, weight_decay=0.1), lr=6e-4, betas=(0.9, 0.95))
    schedule = get_schedule("cosine", max_lr=6e-4, min_lr=6e-5, warmup_steps=100, max_steps=5000)
    for step in range(5000):
        optimizer.zero_grad()
        metrics = accumulate_gradients(objective, model, micro_batches, rng)
        grad_norm = clip_grad_norm(model, max_norm=1.0)
        optimizer.lr = schedule(step)
        optimizer.step()
"""
from .adamw import AdamW
from .clip import clip_grad_norm
from .optimizer import Optimizer, OptimizerStateError, param_groups
from .schedules import SCHEDULES, constant_lr, constant_with_warmup_lr, get_schedule, warmup_cosine_lr
from .sgd import SGD

__all__ = [
    "SCHEDULES", "SGD", "AdamW", "Optimizer", "OptimizerStateError", "clip_grad_norm", "constant_lr",
    "constant_with_warmup_lr", "get_schedule", "param_groups", "warmup_cosine_lr",
]
