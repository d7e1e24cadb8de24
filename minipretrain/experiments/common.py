"""What the four experiments share: data helpers, a training loop with callbacks, statistics, plots, results.

* :func:`train_run` drives a :class:`~minipretrain.training.trainer.PreTrainer` step by step with the
  schedule's horizon fixed at the *total* step count, evaluating (and calling back, e.g. to probe) at chosen
  steps. (``trainer.train(max_steps=k)`` would reset the cosine horizon to ``k`` each time.)
* :func:`t_interval` gives a mean and its 95% Student-t interval over seeds.
* :func:`write_results` writes ``results.json`` with the config, seeds, versions, git commit and wall time.
* :func:`new_figure` / :func:`save_figure`: matplotlib on the Agg backend, small PNGs.
* Data: :func:`corpus_file` (registry + mirror), :func:`write_split_folder` (train.txt / valid.txt for
  ``PretrainingDataset``), :func:`train_bpe` (one byte-level BPE tokenizer), :func:`load_probe_task` (SST-2,
  TREC, AG News subsets) and :func:`synthetic_probe_task` (for smoke runs without downloaded data).
"""
from __future__ import annotations

import json
import re
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

SCALES = ("smoke", "cpu", "gpu")
RESULTS_ROOT = Path("docs/results")


# --------------------------------------------------------------------------------------------- statistics
def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean, sample standard deviation and the Student-t ``confidence`` interval of the mean over ``values``.

    With one value the interval is undefined (NaN): one seed says nothing about seed-to-seed spread.
    """
    from scipy import stats

    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(array)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "std": float("nan"), "n": 0}
    mean = float(array.mean())
    if n == 1:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "std": float("nan"), "n": 1}
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "std": std, "n": n}


def format_interval(summary: dict[str, float], digits: int = 3, scale: float = 1.0) -> str:
    """``"1.234 [1.200, 1.268]"`` (or just the mean when the interval is undefined)."""
    mean = summary["mean"] * scale
    if not math.isfinite(summary.get("low", float("nan"))):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{summary['low'] * scale:.{digits}f}, {summary['high'] * scale:.{digits}f}]"


# --------------------------------------------------------------------------------------------- results
def environment() -> dict[str, Any]:
    """Versions and machine facts that a reader needs to judge the numbers."""
    import matplotlib
    import scipy

    info: dict[str, Any] = {
        "python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
    }
    try:
        from importlib.metadata import version

        info["minipretrain"] = version("minipretrain")
    except Exception:  # not installed as a distribution: leave it out
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent)
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                   text=True, timeout=5, cwd=Path(__file__).resolve().parent)
            info["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_results(out_dir: str | Path, experiment: str, scale: str, config: dict[str, Any], seeds: Sequence[int],
                  results: dict[str, Any], wall_time_s: float) -> Path:
    """Write ``out_dir/results.json``: every number plus what is needed to reproduce and judge it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"experiment": experiment, "scale": scale, "seeds": list(seeds), "wall_time_s": wall_time_s,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment(), "config": config,
               "results": results}
    path = out / "results.json"
    path.write_text(dumps_compact(payload) + "\n", encoding="utf-8")
    return path


# Line breaks never occur inside JSON strings (they are escaped), so joining only what follows a newline
# changes the layout and never a value, even when a string contains brackets or runs of spaces.
_FLAT_CONTAINER = re.compile(r"([\[{])\n\s*([^\[\]{}]*?)\n\s*([\]}])")


def dumps_compact(payload: Any) -> str:
    """JSON with nested structure indented but each flat list or record (no containers inside) on one line.

    Per-step curves (a record of numbers per step) make up most of a results file; one value per line made
    it several times larger for no reader's benefit. The values themselves are unchanged.
    """
    text = json.dumps(payload, indent=1, default=_json_default, allow_nan=True)
    return _FLAT_CONTAINER.sub(lambda m: m.group(1) + re.sub(r"\n\s*", " ", m.group(2)) + m.group(3), text)


def write_page(out_dir: str | Path, text: str) -> Path:
    """Write the experiment's markdown page ``out_dir/README.md``."""
    path = Path(out_dir) / "README.md"
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------- plots
def new_figure(rows: int = 1, cols: int = 1, width: float = 6.0, height: float = 4.0) -> tuple[Any, Any]:
    """A matplotlib figure on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Save ``fig`` as a small PNG and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def band(ax: Any, x: Sequence[float], runs: Sequence[Sequence[float]], label: str, color: Any = None) -> None:
    """Plot the mean of ``runs`` (one list per seed, same x) with a shaded 95% t-interval band."""
    matrix = np.asarray(runs, dtype=np.float64)
    summaries = [t_interval(matrix[:, j]) for j in range(matrix.shape[1])]
    mean = np.array([s["mean"] for s in summaries])
    line = ax.plot(x, mean, label=label, color=color)[0]
    low = np.array([s["low"] for s in summaries])
    high = np.array([s["high"] for s in summaries])
    if np.isfinite(low).all():
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)


# --------------------------------------------------------------------------------------------- data
def corpus_file(name: str, file_name: str | None = None) -> Path:
    """The local path of a registry corpus file (fetched from the mirror / network into the cache first)."""
    from ..data.download import download
    from ..data.registry import MAIN_TEXT_FILE, get_corpus

    corpus = get_corpus(name)
    file_name = file_name or MAIN_TEXT_FILE[name]
    folder = download(corpus, files=[file_name], progress=False)
    return Path(folder) / file_name


def write_split_folder(folder: str | Path, train_text: str, valid_text: str, test_text: str | None = None) -> Path:
    """A folder with train.txt / valid.txt (/ test.txt) that ``PretrainingDataset`` reads split by file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text(train_text, encoding="utf-8")
    (folder / "valid.txt").write_text(valid_text, encoding="utf-8")
    if test_text is not None:
        (folder / "test.txt").write_text(test_text, encoding="utf-8")
    return folder


def train_bpe(text: str, vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on ``text`` (bytes cover any input, so noisy text never fails)."""
    from ..tokenizers import TextTokenizer

    tokenizer = TextTokenizer(vocab_size=vocab_size)
    tokenizer.train(text)
    return tokenizer


def datasets(folder: str | Path, tokenizer: Any, seq_len: int, objective: str, cache_dir: str | Path,
             eval_split: str = "validation") -> tuple[Any, Any]:
    """Train and evaluation ``PretrainingDataset`` of a split folder (see :func:`write_split_folder`)."""
    from ..data import PretrainingDataset

    common = {"tokenizer": tokenizer, "seq_len": seq_len, "objective": objective, "cache_dir": cache_dir}
    return (PretrainingDataset(folder, split="train", **common),
            PretrainingDataset(folder, split=eval_split, **common))


def load_probe_task(name: str, num_train: int, num_test: int, seed: int = 0) -> dict[str, list[str]]:
    """A seeded subset of a registry classification set: ``{train_texts, train_labels, test_texts, test_labels}``.

    SST-2 tests on its validation split (the GLUE dev set, 872 sentences); TREC on TREC_10 (500 questions);
    AG News on its test split.
    """
    from ..data import read_classification

    test_split = {"sst2": "validation"}.get(name, "test")
    train = read_classification(name, "train")
    test = read_classification(name, test_split)
    rng = np.random.default_rng(seed)
    train_pick = rng.permutation(len(train))[:num_train]
    test_pick = rng.permutation(len(test))[:num_test]
    return {"train_texts": [train[i].text for i in train_pick], "train_labels": [train[i].label for i in train_pick],
            "test_texts": [test[i].text for i in test_pick], "test_labels": [test[i].label for i in test_pick]}


def synthetic_probe_task(num_train: int, num_test: int, seed: int = 0, length: int = 40) -> dict[str, list[str]]:
    """A two-class task over Markov text (class = which of two seeded chains wrote it), for smoke runs."""
    from ..data import MarkovCorpus

    rng = np.random.default_rng(seed)
    chains = [MarkovCorpus(alphabet_size=8, order=1, concentration=0.3, seed=seed + k) for k in (11, 12)]
    labels = rng.integers(0, 2, size=num_train + num_test)
    texts = [chains[label].text(length, rng) for label in labels]
    return {"train_texts": texts[:num_train], "train_labels": [str(x) for x in labels[:num_train]],
            "test_texts": texts[num_train:], "test_labels": [str(x) for x in labels[num_train:]]}


def english_like_text(num_words: int, seed: int = 0) -> str:
    """Seeded pseudo-English (a small word list, sentence case, full stops) for smoke runs and tests."""
    words = ("the a cat dog sat on mat and ran to house big small red blue it was in of with that this "
             "he she they we saw found made good old new time day year man woman child world").split()
    rng = np.random.default_rng(seed)
    out, sentence = [], []
    for _ in range(num_words):
        sentence.append(words[int(rng.integers(len(words)))])
        if len(sentence) >= int(rng.integers(5, 12)):
            out.append(" ".join(sentence).capitalize() + ".")
            sentence = []
    out.append(" ".join(sentence).capitalize() + ".")
    return "\n".join(" ".join(out[i:i + 4]) for i in range(0, len(out), 4))


# --------------------------------------------------------------------------------------------- models and training
@dataclass
class ModelShape:
    """A transformer's shape (the vocabulary comes from the tokenizer)."""

    n_layer: int
    n_head: int
    n_embd: int

    def label(self) -> str:
        return f"L{self.n_layer}-H{self.n_head}-C{self.n_embd}"


def make_model(kind: str, shape: ModelShape, vocab_size: int, block_size: int, seed: int) -> Any:
    """A GPT or BERT of ``shape`` with ``seed`` fixing its initial weights; dropout 0 (short runs)."""
    from ..models import create_model

    return create_model(kind, vocab_size, n_layer=shape.n_layer, n_head=shape.n_head, n_embd=shape.n_embd,
                        block_size=block_size, dropout=0.0, seed=seed)


def make_objective(model: Any, tokenizer: Any) -> Any:
    """The objective a model of this kind pre-trains with: CLM for a GPT, MLM (15%, 80/10/10) for a BERT."""
    from ..objectives import default_objective, make_objective as build

    return build(default_objective(model.kind), model, tokenizer)


@dataclass
class TrainingPlan:
    """How one run trains: the PreTrainer's options plus when to evaluate."""

    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float | None = 1.0
    eval_every: int = 100
    eval_batches: int | None = 8
    eval_batch_size: int = 32

    def trainer_options(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "learning_rate": self.learning_rate, "max_steps": self.steps,
                "warmup_steps": self.warmup_steps, "schedule": self.schedule,
                "min_lr": self.learning_rate * self.min_lr_ratio, "weight_decay": self.weight_decay,
                "betas": self.betas, "grad_clip": self.grad_clip, "eval_interval": 0,
                "eval_batches": self.eval_batches, "eval_batch_size": self.eval_batch_size, "log_interval": 1}


@dataclass
class RunRecord:
    """What :func:`train_run` measured: every step's log record and every evaluation."""

    train: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0

    def final_eval(self) -> dict[str, Any]:
        return self.evals[-1] if self.evals else {}


def device_for(scale: str) -> str | None:
    """Where a scale's models train: the GPU for ``gpu`` (CuPy needed), wherever the model is otherwise."""
    return "cuda" if scale == "gpu" else None


def make_trainer(model: Any, objective: Any, train_dataset: Any, eval_dataset: Any, plan: TrainingPlan,
                 seed: int, device: str | None = None) -> Any:
    """A quiet PreTrainer (no progress bar, no files) for ``plan``; ``device`` moves the model first."""
    from ..training.trainer import PreTrainer

    return PreTrainer(model=model, objective=objective, dataset=train_dataset, eval_dataset=eval_dataset,
                      progress=False, seed=seed, device=device, **plan.trainer_options())


def train_run(trainer: Any, plan: TrainingPlan, eval_steps: Sequence[int] | None = None,
              callback: Callable[[Any], dict[str, Any]] | None = None, callback_steps: Sequence[int] = (),
              after_step: Callable[[Any, dict[str, Any]], None] | None = None) -> RunRecord:
    """Train for ``plan.steps`` steps, evaluating at ``eval_steps`` (default: 0, every ``plan.eval_every``
    and the last step) and calling ``callback(trainer)`` at
    ``callback_steps`` (step 0 = before any update). ``after_step(trainer, record)`` sees every step.

    ``trainer.train(until_step=...)`` pauses at each of those steps; the schedule's horizon is ``plan.steps``
    throughout, so pausing to evaluate or probe changes nothing.
    """
    trainer.config.max_steps = plan.steps
    eval_at = set(eval_steps if eval_steps is not None else
                  [s for s in range(0, plan.steps + 1, plan.eval_every)] + [plan.steps])
    probe_at = set(callback_steps)
    record = RunRecord()
    started = time.perf_counter()

    def keep(trainer: Any, step_record: dict[str, Any]) -> None:
        record.train.append({k: step_record[k] for k in ("step", "tokens", "loss", "lr", "grad_norm", "accuracy",
                                                         "step_time_s")})
        if after_step is not None:
            after_step(trainer, step_record)

    trainer.step_hooks.append(keep)
    try:
        for pause in sorted({s for s in eval_at | probe_at if trainer.step <= s <= plan.steps} | {plan.steps}):
            trainer.model.train()
            if pause > trainer.step and trainer.train(until_step=pause).stopped_early:
                break
            if pause in eval_at and trainer.eval_dataset is not None:
                record.evals.append(trainer.evaluate())
            if callback is not None and pause in probe_at:
                record.callbacks.append({"step": trainer.step, "tokens": trainer.tokens_seen, **callback(trainer)})
    finally:
        trainer.step_hooks.remove(keep)
    record.wall_time_s = time.perf_counter() - started
    return record


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        lo = max(0, i + 1 - window)
        out[i] = (cumulative[i + 1] - cumulative[lo]) / (i + 1 - lo)
    return out


def check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def scratch_dir(work_dir: str | Path | None, prefix: str) -> Path:
    """``work_dir``, or a fresh temporary folder (token caches, split files) removed when the process exits."""
    if work_dir is not None:
        path = Path(work_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    import atexit
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def start_run(scale: str, configs: dict[str, dict[str, Any]], out_dir: str | Path, work_dir: str | Path | None,
              prefix: str) -> tuple[dict[str, Any], Path, "Stopwatch", Path]:
    """What every experiment's ``run`` begins with: its config for ``scale``, the output folder (created), a
    started stopwatch, and a scratch folder for token caches and split files."""
    check_scale(scale)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return configs[scale], out, Stopwatch(), scratch_dir(work_dir, prefix)


class Stopwatch:
    """Wall time since construction, in seconds."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
