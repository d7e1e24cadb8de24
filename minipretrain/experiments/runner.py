"""How an experiment runs its trainings: scales, model shapes, the training plan, and :func:`train_run`, which
drives a :class:`~minipretrain.training.PreTrainer` with ``train(until_step=...)`` and ``step_hooks``."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence


SCALES = ("smoke", "cpu", "gpu")


RESULTS_ROOT = Path("docs/results")


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
