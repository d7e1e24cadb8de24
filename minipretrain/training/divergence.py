"""The divergence guard: a loss that stays far above its running level is a diverged run, like a NaN.

A NaN is easy to see; a run that blew up to a loss of 1e7 and stays there is just as lost, and every
checkpoint written after the blow-up is worse than the one before it. The guard keeps a running level of the
loss (an exponential moving average of the steps it accepted) and calls a step *suspicious* when its loss is
both ``factor`` times that level and at least ``MIN_RISE`` nats above it (so a loss near zero, where ratios are
noise, never trips it). One suspicious step is noise and is forgotten at the next ordinary one; ``steps``
suspicious steps in a row are a divergence. Suspicious steps do not move the level, so a spike cannot
talk the guard into accepting itself.

The trainer writes no checkpoint while the guard is suspicious, so the checkpoint on disk when it stops is
the last one written before the spike.
"""
from __future__ import annotations

import math

#: A suspicious loss is at least this many nats above the running level as well as ``factor`` times it.
MIN_RISE = 1.0
#: Weight of each accepted step in the running level (an average over roughly the last 1 / SMOOTHING steps).
SMOOTHING = 0.1


class DivergenceGuard:
    """Watch the loss step by step; ``observe`` says why the run diverged, or None while it has not.

    Args:
        factor: how many times its running level a loss must be to be suspicious; None switches the guard off.
        steps: how many suspicious steps in a row make a divergence.
    """

    def __init__(self, factor: float | None = 3.0, steps: int = 5) -> None:
        self.factor = factor
        self.steps = steps
        self.level: float | None = None
        self.streak = 0

    @property
    def suspicious(self) -> bool:
        """True while the latest steps were suspicious (the trainer does not checkpoint then)."""
        return self.streak > 0

    def observe(self, loss: float) -> str | None:
        """Record one step's (finite) loss; returns the reason when this step completes a divergence."""
        if self.factor is None:
            return None
        if self.level is not None and loss > max(self.factor * self.level, self.level + MIN_RISE):
            self.streak += 1
            if self.streak >= self.steps:
                return (f"stayed far above its running level {self.level:.4g} (more than {self.factor:g} times it) "
                        f"for {self.streak} steps")
            return None
        self.streak = 0
        self.level = loss if self.level is None or not math.isfinite(self.level) else (
            (1 - SMOOTHING) * self.level + SMOOTHING * loss)
        return None
