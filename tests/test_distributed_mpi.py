"""Real multi-process runs under ``mpiexec`` (marked ``mpi``; skipped without mpi4py and mpiexec).

tests/mpi_driver.py trains a tiny GPT (CLM) or BERT (MLM) with gradient accumulation for a few steps and
evaluates it. A step is 3 micro-batches of 5 windows: 15 windows, so 2 ranks take unequal shares (8 and 7,
the first in two forward passes) and 3 ranks 5 each. 2 and 3 ranks must reproduce one process's per-step
losses, gradient norms, evaluation and final parameters to 1e-10 relative in float64: the same sums in
another order differ by ~1e-15, while any sharding or scaling mistake is off by far more. In float32 the
rounding of each addition is ~1e-7, carried through three Adam steps: 1e-5.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minipretrain.data import MarkovCorpus
from minipretrain.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "mpi_driver.py"
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
RTOL = 1e-10

try:
    import mpi4py  # noqa: F401
    HAVE_MPI4PY = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_MPI4PY = False

pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(MPIEXEC is None or not HAVE_MPI4PY, reason="needs mpi4py and mpiexec "
                                 "(pip install mpi4py mpich)")]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def run_driver(ranks: int | None, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The driver in one plain process (``ranks=None``) or under ``mpiexec -n ranks``."""
    command = [sys.executable, str(DRIVER), *args]
    if ranks is not None:
        command = [MPIEXEC, "-n", str(ranks), *command]
    return subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("mpi")
    path = folder / "markov.txt"
    path.write_text(MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3).text(
        20_000, rng=np.random.default_rng(0)))
    # The token cache is built once here (by the single-process runs), so ranks only ever read it.
    return ["--corpus", str(path), "--cache", str(folder / "cache")]


def result(out: Path) -> tuple[dict, np.ndarray]:
    return json.loads((out / "result.json").read_text()), np.load(out / "params.npy")


@pytest.mark.parametrize(("objective", "dtype", "rtol", "world_sizes"), [
    ("clm", "float64", RTOL, (2, 3)),
    ("mlm", "float64", RTOL, (2, 3)),
    ("mlm", "float32", 1e-5, (2,)),
])
def test_two_and_three_ranks_take_the_single_process_steps(corpus, tmp_path, objective, dtype, rtol, world_sizes):
    reference_dir = tmp_path / "one"
    reference_dir.mkdir()
    options = [*corpus, "--objective", objective, "--dtype", dtype, "--batch", "5"]
    done = run_driver(None, *options, "--out", str(reference_dir))
    assert done.returncode == 0, done.stderr
    expected, expected_params = result(reference_dir)
    assert expected["world_size"] == 1
    for ranks in world_sizes:
        out = tmp_path / f"ranks{ranks}"
        out.mkdir()
        done = run_driver(ranks, *options, "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        got, params = result(out)
        assert got["world_size"] == ranks
        np.testing.assert_allclose(got["losses"], expected["losses"], rtol=rtol)
        np.testing.assert_allclose(got["grad_norms"], expected["grad_norms"], rtol=rtol)
        for key in ("val_loss", "val_accuracy", "val_targets"):
            assert got["eval"][key] == pytest.approx(expected["eval"][key], rel=rtol), key
        np.testing.assert_allclose(params, expected_params, rtol=0, atol=rtol * np.abs(expected_params).max())
        assert got["losses"] != expected["losses"][::-1]  # the losses change from step to step


def test_a_checkpoint_saved_by_two_ranks_resumes_on_one_and_on_three_with_the_same_curve(corpus, tmp_path):
    options = [*corpus, "--objective", "mlm", "--batch", "5"]
    whole, saved = tmp_path / "whole", tmp_path / "saved"
    for folder in (whole, saved):
        folder.mkdir()
    assert run_driver(None, *options, "--steps", "4", "--out", str(whole)).returncode == 0
    expected, expected_params = result(whole)
    done = run_driver(2, *options, "--steps", "2", "--out", str(saved))
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(saved / "checkpoint.npz")["step"] == 2
    for ranks in (None, 3):
        out = tmp_path / f"resumed{ranks}"
        out.mkdir()
        done = run_driver(ranks, *options, "--steps", "4", "--resume", str(saved / "checkpoint.npz"), "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        got, params = result(out)
        np.testing.assert_allclose(got["losses"], expected["losses"][2:], rtol=RTOL)
        np.testing.assert_allclose(params, expected_params, rtol=0, atol=RTOL * np.abs(expected_params).max())


def test_every_rank_starts_from_rank_zeros_parameters(corpus, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
    assert run_driver(None, *corpus, "--steps", "1", "--out", str(one)).returncode == 0
    done = run_driver(2, *corpus, "--steps", "1", "--out", str(two), "--perturb-rank", "1")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(result(two)[0]["losses"], result(one)[0]["losses"], rtol=RTOL)
    np.testing.assert_allclose(result(two)[1], result(one)[1], rtol=0, atol=RTOL)


def test_a_stop_asked_on_one_rank_stops_every_rank_after_the_same_step(corpus, tmp_path):
    done = run_driver(3, *corpus, "--steps", "20", "--out", str(tmp_path), "--stop-rank", "2", "--stop-step", "1")
    assert done.returncode == 0, done.stdout + done.stderr  # no rank left waiting in an all-reduce
    assert len(result(tmp_path)[0]["losses"]) == 2


def test_the_launcher_starts_the_command_on_n_ranks():
    done = subprocess.run([sys.executable, "-m", "minipretrain.distributed.launch", "--nproc", "2", "--", "--help"],
                          env=environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("minipretrain: 2 ranks: ")
    assert done.stdout.count("usage: python -m minipretrain") == 2  # one help text per rank


def test_a_killed_rank_ends_the_run_within_seconds_and_the_last_checkpoint_is_intact(corpus, tmp_path):
    started = time.monotonic()
    done = run_driver(3, *corpus, "--steps", "20", "--out", str(tmp_path), "--fail", "kill", "--fail-rank", "1",
                      "--fail-step", "3", timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert "BAD TERMINATION" in done.stdout + done.stderr  # mpiexec names the dead process and its signal
    assert elapsed < 30, f"the surviving ranks took {elapsed:.1f} s to end"
    checkpoint = load_checkpoint(tmp_path / "checkpoint.npz")  # written atomically by rank 0 after each step
    assert checkpoint["step"] in (2, 3)  # rank 1 died before step 4: rank 0 saved step 3 or was saving it


def test_a_hung_rank_is_reported_by_the_collective_timeout(corpus, tmp_path):
    started = time.monotonic()
    done = run_driver(2, *corpus, "--steps", "20", "--fail", "hang", "--fail-rank", "1", "--fail-step", "2",
                      "--timeout", "3", timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert "did not complete within 3 s; another rank has hung or died" in done.stderr
    assert elapsed < 40, f"the run took {elapsed:.1f} s to end"


def test_ranks_started_with_different_configurations_refuse_to_train(corpus):
    rank0 = [sys.executable, str(DRIVER), *corpus, "--lr", "0.01"]
    rank1 = [sys.executable, str(DRIVER), *corpus, "--lr", "0.02"]
    done = subprocess.run([MPIEXEC, "-n", "1", *rank0, ":", "-n", "1", *rank1], env=environment(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "the ranks disagree on the driver configuration" in done.stderr
    assert "rank(s) [1]" in done.stderr
