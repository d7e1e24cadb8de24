"""Shared test setup: hypothesis profiles, the ``device`` fixture and a few generic helpers.

Kept generic on purpose: fixtures for tokenizers, models or training belong in their own test files.

Hypothesis profiles (pick one with ``HYPOTHESIS_PROFILE=<name>``; "ci" is the default):
    ci    few examples, derandomized (the same examples on every run, so CI is reproducible), no deadline
    dev   more examples, still derandomized, for a thorough local run
    deep  many random examples, for hunting bugs before a release
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minipretrain as mp
from minipretrain.backend import cupy_available, to_host

# Gradient checks run many forward passes per example; timing them against a deadline only makes CI flaky.
settings.register_profile(
    "ci", max_examples=12, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=50, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=500, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fake-gpu", action="store_true",
                     help="run the gpu-marked tests on minipretrain.testing.fake_cupy (sets MINIPRETRAIN_FAKE_CUPY=1)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--fake-gpu"):
        os.environ["MINIPRETRAIN_FAKE_CUPY"] = "1"  # inherited by xdist workers, read by minipretrain.backend


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Decided per test, not at import, so that --fake-gpu (parsed after this file is imported) counts.
    if item.get_closest_marker("gpu") is not None and not cupy_available():
        pytest.skip("needs CuPy and a CUDA GPU (or --fake-gpu / MINIPRETRAIN_FAKE_CUPY=1)")


@pytest.fixture(scope="session", autouse=True)
def _fake_gpu_peak(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """On the fake device the MFU peak is measured small and cached in a temporary folder.

    A trainer's first step measures the matmul peak; the GPU's 4096² version, run by NumPy, takes minutes, and
    its figure would land in the user's cache under the fake GPU's name.
    """
    from minipretrain.backend import fake_cupy_enabled
    from minipretrain.training import hardware

    if not fake_cupy_enabled():
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hardware, "GPU_PEAK_SIZE", 128)
        patch.setenv("MINIPRETRAIN_CACHE_DIR", str(tmp_path_factory.mktemp("peak-cache")))
        yield


#: Marks for tests that need CuPy and a GPU (``pytestmark = NEEDS_CUDA`` in a module, or
#: ``pytest.param(..., marks=NEEDS_CUDA)``); such tests are skipped cleanly on machines without one, and run
#: on the strict fake device with ``--fake-gpu`` (what ``make test`` does).
NEEDS_CUDA = [pytest.mark.gpu]

DEVICES = ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)]


@pytest.fixture(params=DEVICES, scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """Each test that takes ``device`` runs once on "cpu" and once on "cuda" (skipped without CuPy/GPU).

    Session-scoped so that hypothesis tests may use it (hypothesis refuses function-scoped fixtures, which
    would not be reset between its examples).
    """
    return request.param


def leaf(array: Any, device: str = "cpu", requires_grad: bool = True, dtype: Any = np.float64) -> mp.Tensor:
    """A leaf Tensor holding a copy of ``array`` on ``device`` (float64 by default, as gradcheck needs)."""
    return mp.tensor(np.array(array, dtype=dtype), requires_grad=requires_grad, device=device)


def on_device(array: Any, device: str) -> Any:
    """``array`` (NumPy, any dtype: masks, ids) moved to ``device``'s array module."""
    return mp.backend.to_device(np.asarray(array), device)


def host(x: Any) -> np.ndarray:
    """A NumPy copy of a Tensor's values or of a NumPy/CuPy array."""
    return to_host(x.data if isinstance(x, mp.Tensor) else x)


def assert_close(actual: Any, expected: Any, rtol: float = 1e-10, atol: float = 0.0, what: str = "") -> None:
    """Assert two Tensors/arrays (any device) agree elementwise: |a - e| <= atol + rtol·|e|, same shape."""
    a, e = host(actual), host(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)


def check_gradients(fn: Any, *arrays: Any, device: str = "cpu", **tolerances: Any) -> mp.autograd.GradcheckReport:
    """Run ``mp.gradcheck(fn, ...)`` with each NumPy array as a float64 leaf on ``device``; assert it passed.

    ``tolerances`` (eps, atol, rtol) default to gradcheck's own (ε 1e-6, atol 1e-7, rtol 1e-6).
    """
    inputs = [leaf(a, device) for a in arrays]
    report = mp.gradcheck(fn, *inputs, **tolerances)
    assert report.passed, str(report)
    assert len(report.inputs) == len(inputs), "every input should have been checked"
    return report
