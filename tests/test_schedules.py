"""Learning-rate schedules on exact values (nanoGPT's get_lr semantics, see minipretrain.optim.schedules).

The values are simple fractions and cosines of simple angles, so they are compared to 1e-15 relative: a
couple of ulps of float64 rounding in (step + 1)/W and ½(1 + cos(πx)).
"""
from __future__ import annotations

import math

import pytest

from minipretrain.optim import constant_lr, constant_with_warmup_lr, get_schedule, warmup_cosine_lr

RTOL = 1e-15
COSINE = {"max_lr": 1.0, "min_lr": 0.1, "warmup_steps": 4, "max_steps": 12}


@pytest.mark.parametrize("step, expected", [
    (0, 0.25), (1, 0.5), (2, 0.75), (3, 1.0),          # warmup: max_lr·(step + 1)/W
    (4, 1.0),                                            # start of the decay: cos 0
    (6, 0.1 + 0.5 * (1 + math.cos(math.pi / 4)) * 0.9),  # a quarter of the way: cos(π/4)
    (8, 0.55),                                           # halfway: (max_lr + min_lr)/2
    (10, 0.1 + 0.5 * (1 + math.cos(3 * math.pi / 4)) * 0.9),
    (12, 0.1), (13, 0.1), (10_000, 0.1),                 # the floor at and after max_steps
])
def test_warmup_cosine_exact_values(step, expected):
    assert warmup_cosine_lr(step, **COSINE) == pytest.approx(expected, rel=RTOL, abs=0.0)


def test_warmup_cosine_is_monotone_after_warmup_and_continuous_at_its_joins():
    values = [warmup_cosine_lr(s, **COSINE) for s in range(20)]
    assert all(a <= b for a, b in zip(values[:4], values[1:5]))   # rises during warmup
    assert all(a >= b for a, b in zip(values[4:], values[5:]))    # then never rises
    no_warmup = {**COSINE, "warmup_steps": 0}
    assert warmup_cosine_lr(0, **no_warmup) == 1.0
    assert warmup_cosine_lr(12, **{**COSINE, "warmup_steps": 12}) == 0.1  # warmup straight into the floor


@pytest.mark.parametrize("settings", [
    {**COSINE, "warmup_steps": 13}, {**COSINE, "min_lr": 2.0}, {**COSINE, "warmup_steps": -1},
])
def test_warmup_cosine_refuses_inconsistent_settings(settings):
    with pytest.raises(ValueError):
        warmup_cosine_lr(0, **settings)


def test_constant_schedules():
    assert [constant_lr(s, lr=3e-4) for s in (0, 1, 10**6)] == [3e-4] * 3
    assert [constant_with_warmup_lr(s, lr=2.0, warmup_steps=4) for s in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert constant_with_warmup_lr(0, lr=2.0, warmup_steps=0) == 2.0
    with pytest.raises(ValueError, match="step"):
        constant_lr(-1, lr=1.0)


def test_get_schedule_binds_settings_and_checks_them_early():
    schedule = get_schedule("cosine", **COSINE)
    assert [schedule(s) for s in (0, 8, 12)] == [warmup_cosine_lr(s, **COSINE) for s in (0, 8, 12)]
    assert get_schedule("constant_with_warmup", lr=1.0, warmup_steps=2)(0) == 0.5
    with pytest.raises(ValueError, match="unknown schedule"):
        get_schedule("linear", lr=1.0)
    with pytest.raises(TypeError):
        get_schedule("cosine", max_lr=1.0)  # missing settings fail at construction, not at step 0 of training
    with pytest.raises(ValueError):
        get_schedule("cosine", **{**COSINE, "min_lr": 5.0})
