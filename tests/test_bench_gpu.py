"""benchmarks/gpu.py without a GPU: it refuses clearly, and its table, budget and step code are right."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import NEEDS_CUDA
from minipretrain.backend import fake_cupy_enabled

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"
_SPEC = importlib.util.spec_from_file_location("bench_gpu", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_gpu"] = bench
_SPEC.loader.exec_module(bench)  # type: ignore[union-attr]


def _real_gpu() -> bool:
    try:
        bench.require_gpu()
    except bench.NoGPU:
        return False
    return True  # pragma: no cover - needs a GPU


def test_the_fake_device_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIPRETRAIN_FAKE_CUPY", "1")
    with pytest.raises(bench.NoGPU, match="MINIPRETRAIN_FAKE_CUPY is set"):
        bench.require_gpu()


def test_without_a_gpu_main_stops_with_a_clear_message(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MINIPRETRAIN_FAKE_CUPY", raising=False)
    if "cupy" in sys.modules and getattr(sys.modules["cupy"], "__version__", "").endswith("+fake"):
        monkeypatch.delitem(sys.modules, "cupy")  # the fake registered by other tests is not a real CuPy
    if _real_gpu():  # pragma: no cover - needs a GPU
        pytest.skip("a GPU is here: main() would run the benchmark")
    assert bench.main([]) == 2
    assert "benchmarks/gpu.py:" in capsys.readouterr().err


def test_unknown_presets_fail_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="unknown preset 'gpt-7b'"):
        bench.main(["--presets", "gpt-7b"])
    assert bench.shape("gpt-25m") == (16, 512) and bench.shape("gpt-3m") == (32, 128)


def test_the_table_reports_rates_mfu_and_the_ratio() -> None:
    rows = [bench.Row("gpt-3m", 1000, ours_s=0.5, torch_s=0.25, flops_per_token=1e6),
            bench.Row("gpt-25m", 8192, note="skipped (time budget)")]
    table = bench.format_table(rows, peak=4e9, header=["GPU: test"]).splitlines()
    assert table[0] == "GPU: test"
    ours_cells, torch_cells, ratio = table[2].split("|")[1:4]
    assert ours_cells.split() == ["500.0", "2000", "50.0%"]  # 1000 tokens / 0.5 s; 1e6 · 2000 / 4e9
    assert torch_cells.split() == ["250.0", "4000", "100.0%"]
    assert ratio.split() == ["0.50"]
    assert table[3].split("|")[1].split() == ["-", "-", "-"] and table[3].endswith("skipped (time budget)")


def test_the_budget_counts_down_and_never_goes_negative() -> None:
    now = [100.0]
    budget = bench.Budget(10.0, clock=lambda: now[0])
    now[0] = 104.0
    assert budget.left() == 6.0
    now[0] = 120.0
    assert budget.left() == 0.0


@pytest.mark.parametrize("preset", ["gpt-0.1m", "bert-0.1m"])
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=NEEDS_CUDA)])
def test_the_timed_training_step_runs_on_the_device(preset: str, device: str) -> None:
    if not fake_cupy_enabled() and not _real_gpu():  # pragma: no cover - depends on the machine
        pytest.skip("needs a device")
    seconds, flops_per_token = bench.ours(preset)
    assert seconds > 0 and flops_per_token > 0
