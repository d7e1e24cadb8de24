"""The backend's device handling and allocator tuning."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from minipretrain import backend


def test_allocator_tuning_is_applied_on_linux_and_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert backend.tune_allocator() is sys.platform.startswith("linux")
    monkeypatch.setenv("MINIPRETRAIN_NO_MALLOPT", "1")
    assert backend.tune_allocator() is False


def test_device_helpers_on_the_cpu() -> None:
    x = np.arange(3.0)
    assert backend.array_module(x) is np and backend.device_of(x) == "cpu"
    assert backend.to_device(x, "cpu") is x and backend.to_host(x) is x
    assert backend.check_device("CUDA:0") == "cuda"
    with pytest.raises(backend.DeviceError, match="unknown device"):
        backend.check_device("tpu")
    target = np.zeros(3)
    backend.scatter_add(target, np.array([0, 0, 2]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(target, [3.0, 0.0, 3.0])
