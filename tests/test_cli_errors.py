"""The CLI's error policy: a user error is one line on stderr (what was wrong, what to do) and exit code 2;
``--debug`` or ``MINIPRETRAIN_DEBUG=1`` adds the traceback; Ctrl-C saves, then exits with 130."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minipretrain.training import load_checkpoint
from runs import cli, train, write_config, write_corpus

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A corpus, a finished CLM run and a finished MLM run, shared by the cases (none of them may alter them)."""
    from minipretrain.cli import main

    root = tmp_path_factory.mktemp("errors")
    corpus = write_corpus(root / "corpus.txt")
    paths = {"root": root, "corpus": corpus, "config": write_config(root / "clm.toml", corpus),
             "mlm_config": write_config(root / "mlm.toml", corpus, objective="mlm")}
    for name, config in (("clm_run", paths["config"]), ("mlm_run", paths["mlm_config"])):
        paths[name] = root / name
        assert main(["train", "--config", str(config), "--run-dir", str(paths[name]), "--no-progress",
                     "--no-sample", "--no-yardsticks"]) == 0
    latin1 = root / "latin1.txt"
    latin1.write_bytes(b"abcd\n" * 2000 + "\xe9".encode("latin-1"))
    paths["latin1"] = latin1
    val_only = root / "val_only.txt"
    val_only.write_text("abcd\n" * 1800 + "abcZ\n" * 200)
    paths["val_only"] = val_only
    truncated = root / "truncated_run"
    truncated.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (truncated / name).write_bytes((paths["clm_run"] / name).read_bytes())
    whole = (paths["clm_run"] / "checkpoint.npz").read_bytes()
    (truncated / "checkpoint.npz").write_bytes(whole[: len(whole) // 2])
    paths["truncated_run"] = truncated
    return paths


def train_args(setup: dict[str, Path], *extra: str, config: str = "config", run: str = "new_run") -> list[str]:
    return ["train", "--config", str(setup[config]), "--run-dir", str(setup["root"] / run), "--no-progress",
            "--no-sample", "--no-yardsticks", *extra]


# (case, argv builder, what the one line must say)
CASES = [
    ("missing config file", lambda s: ["train", "--config", str(s["root"] / "nope.toml")], "no config file"),
    ("unknown key", lambda s: train_args(s, "--set", "data.seq_length=16"), "did you mean data.seq_len"),
    ("unknown top-level key", lambda s: train_args(s, "--set", "max_steps=3"), "did you mean training.max_steps"),
    ("ill-typed integer", lambda s: train_args(s, "--set", "training.max_steps=abc"), "must be an integer"),
    ("fractional batch size", lambda s: train_args(s, "--set", "training.batch_size=2.5"), "must be an integer"),
    ("ill-typed seq_len", lambda s: train_args(s, "--set", "data.seq_len=abc"), "data.seq_len must be an integer"),
    ("preset conflict", lambda s: train_args(s, "--set", "model.preset=gpt-0.1m"), "model.preset"),
    ("seq_len over block_size", lambda s: train_args(s, "--set", "model.block_size=8"), "model.block_size"),
    ("mask_prob 0", lambda s: train_args(s, "--set", "objective.mask_prob=0", config="mlm_config"), "mask_prob"),
    ("existing run folder", lambda s: train_args(s, run="clm_run"), "--overwrite"),
    ("resume without a checkpoint", lambda s: train_args(s, "--resume"), "no checkpoint"),
    ("resume below the saved step", lambda s: train_args(s, "--resume", "--set", "training.max_steps=2",
                                                         run="clm_run"), "max_steps"),
    ("unknown corpus", lambda s: train_args(s, "--set", "data.path=nowhere/at/all.txt"), "not a file"),
    ("non-UTF-8 corpus", lambda s: train_args(s, "--set", f"data.path={s['latin1'].as_posix()}"), "not UTF-8"),
    ("character only in validation", lambda s: train_args(s, "--set", f"data.path={s['val_only'].as_posix()}"),
     "train split"),
    ("damaged checkpoint", lambda s: ["eval", "--run", str(s["truncated_run"])], "damaged"),
    ("not a run folder", lambda s: ["eval", "--run", str(s["root"] / "nothing")], "run folder"),
    ("sample from a BERT run", lambda s: ["sample", "--run", str(s["mlm_run"])], "causal"),
    ("fill-mask with a GPT run", lambda s: ["fill-mask", "--run", str(s["clm_run"]), "--text", "a[MASK]"],
     "masked"),
    ("fill-mask without [MASK]", lambda s: ["fill-mask", "--run", str(s["mlm_run"]), "--text", "abc"], "[MASK]"),
]


@pytest.mark.parametrize("case, argv, says", CASES, ids=[c[0] for c in CASES])
def test_a_user_error_is_one_line_on_stderr_and_exit_code_2(setup, capsys, case, argv, says) -> None:
    before = {p: p.read_bytes() for name in ("clm_run", "mlm_run") for p in setup[name].iterdir()}
    code, out, err = cli(capsys, *argv(setup))
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and says in lines[0]
    assert {p: p.read_bytes() for name in ("clm_run", "mlm_run") for p in setup[name].iterdir()} == before


def test_debug_shows_the_traceback(setup, capsys, monkeypatch) -> None:
    argv = train_args(setup, "--set", "training.max_steps=abc")
    code, _, err = cli(capsys, "--debug", *argv)
    assert code == 2 and "Traceback (most recent call last)" in err and "ConfigError" in err
    monkeypatch.setenv("MINIPRETRAIN_DEBUG", "1")
    code, _, err = cli(capsys, *argv)
    assert code == 2 and "Traceback (most recent call last)" in err


def test_python_m_minipretrain_exits_2_with_one_line(setup) -> None:
    environment = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    environment.pop("MINIPRETRAIN_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "minipretrain", *train_args(setup, "--set", "data.seq_len=abc")],
                          capture_output=True, text=True, env=environment, cwd=setup["root"], timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: data.seq_len must be an integer, got 'abc' (from --set data.seq_len=abc)"]


def test_ctrl_c_saves_exits_130_and_resume_is_bit_identical(setup, tmp_path, capsys, monkeypatch) -> None:
    from minipretrain.training.trainer import PreTrainer

    config = write_config(tmp_path / "dropout.toml", setup["corpus"], model={"dropout": 0.1},
                          training={"max_steps": 6, "eval_interval": 3})
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert train(capsys, config, straight)[0] == 0
    original = PreTrainer.train_step

    def interrupt_at_step_3(self: PreTrainer) -> dict:
        record = original(self)
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return record

    monkeypatch.setattr(PreTrainer, "train_step", interrupt_at_step_3)
    code, out, err = train(capsys, config, interrupted)
    assert code == 130, err
    assert "--resume" in out and load_checkpoint(interrupted / "checkpoint.npz")["step"] == 3
    monkeypatch.setattr(PreTrainer, "train_step", original)
    assert train(capsys, config, interrupted, "--resume")[0] == 0

    def log(run: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if not k.endswith(("_s", "mfu"))}
                for line in (run / "log.jsonl").read_text().splitlines()]

    steps = [r for r in log(straight) if "event" not in r or r["event"] == "eval"]
    assert [r for r in log(interrupted) if "event" not in r or r["event"] == "eval"] == steps
    a, b = load_checkpoint(straight / "checkpoint.npz"), load_checkpoint(interrupted / "checkpoint.npz")
    for name, weights in a["model"].items():
        np.testing.assert_array_equal(weights, b["model"][name], err_msg=name)


def test_ctrl_c_before_training_exits_130_without_a_traceback(setup, capsys, monkeypatch) -> None:
    import minipretrain.training.cli as training_cli

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(training_cli, "build_run", interrupted)
    code, _, err = cli(capsys, *train_args(setup, run="never"))
    assert code == 130 and err.strip().splitlines() == ["interrupted"]
    assert not (setup["root"] / "never").exists()
