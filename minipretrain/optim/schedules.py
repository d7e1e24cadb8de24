"""Learning-rate schedules as plain functions of the step number (0-based): ``lr = schedule(step)``.

The trainer sets ``optimizer.lr = schedule(step)`` before each optimizer step. The warmup + cosine
schedule is nanoGPT's ``get_lr`` (with the warmup written as below):

    lr(s) = η_max · (s + 1) / W                                    for s < W          (linear warmup)
    lr(s) = η_min + ½·(1 + cos(π·(s − W)/(S − W)))·(η_max − η_min)   for W ≤ s ≤ S      (cosine decay)
    lr(s) = η_min                                                  for s > S          (floor)

with W = ``warmup_steps``, S = ``max_steps``. So lr(W−1) = η_max, lr(W) = η_max, lr(S) = η_min, and the
midpoint s = (W + S)/2 gives (η_max + η_min)/2. Warmup keeps Adam's first, badly estimated steps small;
the cosine spends most steps at a high rate and anneals smoothly at the end.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any


def _check_step(step: int) -> None:
    if step < 0:
        raise ValueError(f"a schedule's step counts from 0, got {step}")


def warmup_cosine_lr(step: int, *, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Linear warmup to ``max_lr`` over ``warmup_steps``, cosine decay to ``min_lr`` at ``max_steps``, then flat.

    See the module docstring for the formula. Needs 0 ≤ warmup_steps ≤ max_steps and 0 ≤ min_lr ≤ max_lr.
    """
    _check_step(step)
    if not 0 <= warmup_steps <= max_steps:
        raise ValueError(f"need 0 <= warmup_steps <= max_steps, got warmup_steps={warmup_steps}, max_steps={max_steps}")
    if not 0.0 <= min_lr <= max_lr:
        raise ValueError(f"need 0 <= min_lr <= max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    # >>> exercise: cosine-schedule
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:  # also covers warmup_steps == max_steps (no decay phase to divide by)
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)
    # <<< exercise


def constant_lr(step: int, *, lr: float) -> float:
    """The same learning rate at every step."""
    _check_step(step)
    return lr


def constant_with_warmup_lr(step: int, *, lr: float, warmup_steps: int) -> float:
    """lr·(step + 1)/W for step < W (linear warmup, as above), then ``lr``."""
    _check_step(step)
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    return lr * (step + 1) / warmup_steps if step < warmup_steps else lr


SCHEDULES: dict[str, Callable[..., float]] = {
    "cosine": warmup_cosine_lr,
    "constant": constant_lr,
    "constant_with_warmup": constant_with_warmup_lr,
}


def get_schedule(name: str, **settings: Any) -> Callable[[int], float]:
    """The schedule ``name`` ("cosine", "constant", "constant_with_warmup") with its settings bound:
    ``get_schedule("cosine", max_lr=6e-4, min_lr=6e-5, warmup_steps=100, max_steps=5000)(step)``."""
    try:
        function = SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}") from None
    schedule = functools.partial(function, **settings)
    schedule(0)  # fail now, not at the first step, on missing or invalid settings
    return schedule
