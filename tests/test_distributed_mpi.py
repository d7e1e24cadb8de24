"""The real trainer and CLI under ``mpiexec`` (marked ``mpi``; skipped without mpi4py and mpiexec).

Each test runs ``python -m minipretrain train`` on a tiny GPT (CLM) or BERT (MLM) config with gradient
accumulation: a step is 3 micro-batches of 5 windows, 15 windows, so 2 ranks take unequal shares (8 and 7,
the first in two forward passes) and 3 ranks 5 each. 2 and 3 ranks must reproduce one process's per-step
losses, gradient norms, evaluation and final parameters to 1e-10 relative in float64 (ELECTRA's replaced-token
detection on 2 ranks too): the same sums in
another order differ by ~1e-15, while any sharding or scaling mistake is off by far more. In float32 the
rounding of each addition is ~1e-7, carried through three Adam steps: 1e-5.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minipretrain.data import MarkovCorpus
from minipretrain.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
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

CONFIG = """
name = "mpi-{objective}"
[model]
kind = "{kind}"
n_layer = 2
n_head = 2
n_embd = 16
dtype = "{dtype}"
{dropout}
[data]
path = "{corpus}"
tokenizer = "char"
seq_len = 12
cache_dir = "{cache}"
[objective]
name = "{objective}"
{mask}
[training]
batch_size = 5
gradient_accumulation_steps = 3
max_steps = 3
learning_rate = 1e-2
schedule = "constant"
grad_clip = 0.5
eval_interval = 100
eval_batches = 7
eval_batch_size = 4
seed = 3
"""


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def train_command(config: Path, run_dir: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "minipretrain", "train", "--config", str(config), "--run-dir", str(run_dir),
            "--no-progress", "--no-sample", *options]


def train(ranks: int | None, config: Path, run_dir: Path, *options: str,
          timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m minipretrain train`` in one plain process (``ranks=None``) or under ``mpiexec -n ranks``."""
    command = train_command(config, run_dir, *options)
    if ranks is not None:
        command = [MPIEXEC, "-n", str(ranks), *command]
    return subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mpi")
    (folder / "markov.txt").write_text(MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3).text(
        20_000, rng=np.random.default_rng(0)))
    return folder


def write_config(folder: Path, objective: str = "clm", dtype: str = "float64") -> Path:
    path = folder / f"{objective}-{dtype}.toml"
    path.write_text(CONFIG.format(
        objective=objective, kind={"clm": "gpt", "mlm": "bert", "rtd": "electra"}[objective], dtype=dtype,
        dropout="" if objective == "clm" else "dropout = 0.0", mask="" if objective == "clm" else "mask_prob = 0.25",
        corpus=folder / "markov.txt", cache=folder / "cache"))
    return path


def curve(run_dir: Path) -> tuple[list[dict], dict, np.ndarray]:
    """(per-step log records, the last evaluation, the final parameters) of a finished run folder."""
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "event" not in r]
    evaluation = [r for r in records if r.get("event") == "eval"][-1]
    model = load_checkpoint(run_dir / "checkpoint.npz")["model"]
    return steps, evaluation, np.concatenate([np.ravel(model[k]) for k in sorted(model)])


def assert_same_run(got: Path, expected: Path, rtol: float, first_step: int = 0) -> None:
    steps, evaluation, params = curve(got)
    reference_steps, reference_eval, reference_params = curve(expected)
    reference_steps = reference_steps[first_step:]
    assert [s["step"] for s in steps] == [s["step"] for s in reference_steps]
    np.testing.assert_allclose([s["loss"] for s in steps], [s["loss"] for s in reference_steps], rtol=rtol)
    np.testing.assert_allclose([s["grad_norm"] for s in steps], [s["grad_norm"] for s in reference_steps], rtol=rtol)
    assert [s["tokens"] for s in steps] == [s["tokens"] for s in reference_steps]
    for key in ("val_loss", "val_accuracy", "val_targets"):
        assert evaluation[key] == pytest.approx(reference_eval[key], rel=rtol), key
    np.testing.assert_allclose(params, reference_params, rtol=0, atol=rtol * np.abs(reference_params).max())


@pytest.mark.parametrize(("objective", "dtype", "rtol", "world_sizes"), [
    ("clm", "float64", RTOL, (2, 3)),
    ("mlm", "float64", RTOL, (2, 3)),
    ("mlm", "float32", 1e-5, (2,)),
    ("rtd", "float64", RTOL, (2,)),  # ELECTRA: its BCE weighted by the whole step's counts (step_statistics)
])
def test_two_and_three_ranks_take_the_single_process_steps(folder, tmp_path, objective, dtype, rtol, world_sizes):
    config = write_config(folder, objective, dtype)
    done = train(None, config, tmp_path / "one")
    assert done.returncode == 0, done.stdout + done.stderr
    losses = [s["loss"] for s in curve(tmp_path / "one")[0]]
    assert len(losses) == 3 and len(set(losses)) == 3  # the losses change from step to step
    for ranks in world_sizes:
        done = train(ranks, config, tmp_path / f"ranks{ranks}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"on {ranks} ranks" in done.stdout
        assert_same_run(tmp_path / f"ranks{ranks}", tmp_path / "one", rtol)


def test_the_sharded_optimizer_takes_the_replicated_steps_bit_for_bit_and_saves_the_whole_optimizer(
        folder, tmp_path):
    config = write_config(folder, "mlm", "float32")
    for name, sharded in (("replicated", "false"), ("sharded", "true")):
        done = train(3, config, tmp_path / name, "--set", f"training.shard_optimizer={sharded}")
        assert done.returncode == 0, done.stdout + done.stderr
    assert_same_run(tmp_path / "sharded", tmp_path / "replicated", rtol=0)
    saved, reference = (load_checkpoint(tmp_path / name / "checkpoint.npz")["optimizer"]
                        for name in ("sharded", "replicated"))
    moments = [key for key in reference if key.endswith(("exp_avg", "exp_avg_sq"))]
    assert moments and sorted(saved) == sorted(reference)
    for key in moments:  # every rank's block of AdamW's moments reached rank 0's checkpoint
        np.testing.assert_array_equal(saved[key], reference[key], err_msg=key)
        assert np.any(saved[key] != 0), key


def test_rank_zero_alone_writes_the_run_folder_and_prints(folder, tmp_path):
    run_dir = tmp_path / "run"
    done = train(3, write_config(folder), run_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.npz", "config.json", "log.jsonl",
                                                           "tokenizer.json"]  # no temporary file left behind
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r.get("event") for r in records].count("start") == 1
    assert [r["step"] for r in records if "event" not in r] == [1, 2, 3]  # each step logged once
    assert done.stdout.count("finished 3 steps") == 1 and done.stdout.count("run 'mpi-clm'") == 1
    # The last rank counts the yardsticks and sends them: rank 0 prints them once, beside the final loss
    assert done.stdout.count("yardsticks on the validation split") == 1
    final = [r for r in records if r.get("event") == "eval"][-1]["val_loss"]
    assert [line.split()[-2] for line in done.stdout.splitlines() if line.startswith("this model")] == [f"{final:.4f}"]


def test_a_checkpoint_saved_by_two_ranks_resumes_on_one_and_on_three_with_the_same_curve(folder, tmp_path):
    config = write_config(folder, "mlm")
    whole = train(None, config, tmp_path / "whole", "--set", "training.max_steps=4")
    assert whole.returncode == 0, whole.stderr
    done = train(2, config, tmp_path / "saved", "--set", "training.max_steps=2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert load_checkpoint(tmp_path / "saved" / "checkpoint.npz")["step"] == 2
    for ranks in (None, 3):
        run_dir = tmp_path / f"resumed{ranks}"
        shutil.copytree(tmp_path / "saved", run_dir)
        done = train(ranks, config, run_dir, "--set", "training.max_steps=4", "--resume")
        assert done.returncode == 0, done.stdout + done.stderr
        # log.jsonl holds the first two steps (2 ranks) and then the resumed two (1 or 3 ranks)
        assert_same_run(run_dir, tmp_path / "whole", RTOL)


def rank_processes(launcher: int) -> dict[int, int]:
    """{rank: pid} of the minipretrain processes below the mpiexec process ``launcher`` (Linux /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    below, frontier = set(), {launcher}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - below
        below |= frontier
    ranks = {}
    for pid in below:
        try:
            environ = dict(item.split("=", 1) for item in
                           (Path("/proc") / str(pid) / "environ").read_bytes().decode(errors="replace").split("\0")
                           if "=" in item)
            command = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if b"minipretrain" in command and "PMI_RANK" in environ:
            ranks[int(environ["PMI_RANK"])] = pid
    return ranks


def start_and_wait_for_step(command: list[str], run_dir: Path, step: int) -> subprocess.Popen:
    """Start a long run; return once rank 0 has logged ``step`` (and so written that step's checkpoint)."""
    process = subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    log = run_dir / "log.jsonl"
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and any(json.loads(line).get("step", 0) >= step and "event" not in json.loads(line)
                                 for line in log.read_text().splitlines() if line.strip()):
            return process
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the run did not reach step {step}: {process.communicate()}")


@pytest.mark.parametrize("how", ["kill", "hang"])
def test_a_dead_or_hung_rank_ends_the_run_within_seconds_with_a_clear_error_and_an_intact_checkpoint(
        folder, tmp_path, how):
    run_dir = tmp_path / "run"
    command = [MPIEXEC, "-n", "3", *train_command(write_config(folder), run_dir, "--set", "training.max_steps=100000",
                                                  "--set", "training.checkpoint_interval=1",
                                                  "--set", "training.collective_timeout_s=3")]
    process = start_and_wait_for_step(command, run_dir, 3)
    try:
        ranks = rank_processes(process.pid)
        assert sorted(ranks) == [0, 1, 2], ranks
        started = time.monotonic()
        os.kill(ranks[1], signal.SIGKILL if how == "kill" else signal.SIGSTOP)
        out, err = process.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    if how == "kill":
        assert "BAD TERMINATION" in out + err  # mpiexec names the dead process and its signal
    else:  # a frozen rank is not noticed by MPI: the collective timeout says what happened
        assert "did not complete within 3 s; another rank has hung or died" in err
    assert elapsed < 30, f"the surviving ranks took {elapsed:.1f} s to end"
    checkpoint = load_checkpoint(run_dir / "checkpoint.npz")  # written atomically by rank 0 after each step
    assert checkpoint["step"] >= 3 and set(checkpoint["model"])


def test_ranks_started_with_different_configurations_refuse_to_train(folder, tmp_path):
    config = write_config(folder)
    rank0 = train_command(config, tmp_path / "run", "--set", "training.learning_rate=0.01")
    rank1 = train_command(config, tmp_path / "run", "--set", "training.learning_rate=0.02")
    done = subprocess.run([MPIEXEC, "-n", "1", *rank0, ":", "-n", "1", *rank1], env=environment(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "the ranks disagree on the run configuration" in done.stderr
    assert "rank(s) [1]" in done.stderr and done.stderr.count("disagree") == 1  # said once, by rank 0
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_the_launcher_starts_the_command_on_n_ranks():
    done = subprocess.run([sys.executable, "-m", "minipretrain.distributed.launch", "--nproc", "2", "--", "--help"],
                          env=environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("minipretrain: 2 ranks: ")
    assert done.stdout.count("usage: python -m minipretrain") == 2  # one help text per rank


def test_two_ranks_on_the_fake_gpu_all_reduce_over_nccl_and_take_the_single_process_steps(folder, tmp_path):
    """``--device cuda`` under mpiexec picks NCCL; on the fake device (two fake GPUs) its calls go through
    cupy.cuda.nccl's stand-in, which sums over MPI on the host: the curve is one process's. With one fake GPU
    for two ranks, the bootstrap's clear error ends both ranks."""
    config = write_config(folder, "mlm")
    fake = {**environment(), "MINIPRETRAIN_FAKE_CUPY": "1", "MINIPRETRAIN_FAKE_CUPY_DEVICES": "2"}
    fake.pop("MINIPRETRAIN_COMMUNICATOR", None)
    runs = {}
    for name, prefix in (("one", []), ("two", [MPIEXEC, "-n", "2"])):
        runs[name] = subprocess.run([*prefix, *train_command(config, tmp_path / name, "--device", "cuda")], env=fake,
                                    capture_output=True, text=True, timeout=180)
        assert runs[name].returncode == 0, runs[name].stdout + runs[name].stderr
    assert "on 2 ranks (nccl)" in runs["two"].stdout
    assert_same_run(tmp_path / "two", tmp_path / "one", RTOL)
    done = subprocess.run([MPIEXEC, "-n", "2", *train_command(config, tmp_path / "refused", "--device", "cuda")],
                          env={**fake, "MINIPRETRAIN_FAKE_CUPY_DEVICES": "1"}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "rank 1 is rank 1 on its machine, which has only 1 GPU(s): start at most one rank per GPU" in done.stderr
