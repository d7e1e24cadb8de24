"""``PreTrainer``: the training loop, readable in one sitting.

One step:
    1. draw ``gradient_accumulation_steps`` micro-batches (seeded) and let the objective prepare them
       (shift for CLM, mask for MLM);
    2. forward and backward each micro-batch, its summed loss divided by the targets of the *whole* step, so
       the accumulated gradient is exactly the full batch's (however the targets fall between micro-batches);
    3. clip the global gradient norm, set the scheduled learning rate, take an AdamW step (over one flat
       buffer of parameters and one of gradients: :class:`~minipretrain.optim.flat.FlatAdamW`);
    4. log, evaluate and checkpoint at their intervals.
Everything random (data order, masks, dropout) draws from generators that checkpoints save, so a resumed run
continues exactly as the uninterrupted one would have.

Data parallelism (``mpiexec -n N python -m minipretrain train ...``): every rank draws and prepares the whole
step, step 2 runs on its share of the windows, and one all-reduce of the flat gradient buffer (plus one of
the loss sums) gives every rank the single-process gradient; every rank takes the same update. Only rank 0
writes the log, the checkpoints and the progress bar. Checkpoints do not depend on the rank count.
"""
from __future__ import annotations

import json
import math
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..distributed import init_communicator
from ..distributed.optimizer_shard import OptimizerShard, ReplicatedUpdate
from ..errors import MinipretrainError
from ..evaluation.perplexity import evaluate
from ..files import json_default
from ..objectives.accumulation import token_weighted_loss
from ..optim import param_groups
from ..optim.flat import FlatAdamW
from ..optim.schedules import constant_with_warmup_lr, warmup_cosine_lr
from .checkpoint import CheckpointError, check_tokenizer_matches, load_checkpoint, save_checkpoint, tokenizer_identity
from .config import TrainingConfig, TrainingResult
from .divergence import DivergenceGuard
from .hardware import matmul_peak_flops


class TrainingDivergedError(MinipretrainError, RuntimeError):
    """The loss became NaN or infinite, or stayed far above its running level (``DivergenceGuard``); the run
    stopped without taking that step, and the checkpoint on disk is the last one written before it."""


class PreTrainer:
    """Pre-train ``model`` on ``dataset`` with ``objective`` (CLM or MLM).

    Example::

        trainer = PreTrainer(model=model, objective=CausalLanguageModeling(model, tokenizer), dataset=dataset,
                             batch_size=32, learning_rate=3e-4, max_steps=10000)
        trainer.train()

    Args:
        model, objective, dataset: what to train, how, and on what (``dataset.get_batch``).
        eval_dataset: the validation split (``iter_eval_batches``); evaluation is skipped without one.
        checkpoint_dir: where checkpoints and ``log.jsonl`` (one record per step, one per evaluation) go;
            nothing is written when None.
        device: move the model there first ("cpu" or "cuda"); default: where the model already is.
        progress: show a tqdm progress bar (on rank 0).
        comm: the ranks' communicator (:mod:`minipretrain.distributed`); default ``init_communicator("auto")``:
            under ``mpiexec -n N`` (N > 1) NCCL for a model on CUDA, MPI otherwise; else one process.
        Any field of ``TrainingConfig`` as a keyword (learning_rate, warmup_steps, grad_clip, seed, ...).
    """

    def __init__(self, model: Any, objective: Any, dataset: Any, batch_size: int = 32,
                 learning_rate: float = 3e-4, max_steps: int = 10_000, eval_dataset: Any = None,
                 checkpoint_dir: str | Path | None = None, device: str | None = None, progress: bool = True,
                 comm: Any = None, **options: Any) -> None:
        unknown = set(options) - set(TrainingConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"PreTrainer got unknown options {sorted(unknown)}; see TrainingConfig for the list")
        self.config = TrainingConfig(batch_size=batch_size, learning_rate=learning_rate, max_steps=max_steps,
                                     **options)
        self.config.betas = tuple(self.config.betas)
        self.config.validate()
        if hasattr(objective, "check_model"):
            objective.check_model(model)  # the objective's own kind check (CLM trains a GPT, MLM a BERT)
        self.model = model.to(device) if device is not None else model
        self.objective = objective
        self.dataset = dataset
        self.eval_dataset = eval_dataset
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.progress = progress
        self.comm = (init_communicator("auto", self.config.collective_timeout_s, getattr(self.model, "device", None))
                     if comm is None else comm)
        self.comm.check_agreement({**self._identity(), "training_config": asdict(self.config)}, "run configuration")
        # The flat parameter buffer is also the buffer the gradient all-reduce sends (one call per step).
        self.optimizer = FlatAdamW(param_groups(self.model, self.config.weight_decay), lr=learning_rate,
                                   betas=self.config.betas)
        self.comm.broadcast_buffer(self.optimizer.flat.data)  # every rank starts from rank 0's weights
        self.step = 0
        self.tokens_seen = 0
        self.data_rng = np.random.default_rng([self.config.seed, 0])
        self.objective_rng = np.random.default_rng([self.config.seed, 1])
        self.history: list[dict[str, Any]] = []
        #: Called as ``hook(trainer, record)`` after every step ``train()`` takes (record: the step's log
        #: record); experiments use it to record what they measure (gradient statistics, curves).
        self.step_hooks: list[Callable[[PreTrainer, dict[str, Any]], None]] = []
        self._stop_requested = False
        self._peak_flops: float | None = None
        self._update: OptimizerShard | ReplicatedUpdate = ReplicatedUpdate(self.optimizer, self.comm)
        self.divergence = DivergenceGuard(self.config.divergence_factor, self.config.divergence_steps)

    # ------------------------------------------------------------------ schedule
    def learning_rate_at(self, step: int) -> float:
        """The scheduled learning rate for ``step`` (0-based)."""
        c = self.config
        min_lr = c.learning_rate / 10 if c.min_lr is None else c.min_lr
        if c.schedule == "constant":
            return constant_with_warmup_lr(step, lr=c.learning_rate, warmup_steps=c.warmup_steps)
        return warmup_cosine_lr(step, max_lr=c.learning_rate, min_lr=min_lr, warmup_steps=c.warmup_steps,
                                max_steps=c.max_steps)

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, Any]:
        """Draw, forward, backward, clip and update once; returns the step's log record."""
        c = self.config
        started = time.perf_counter()
        prepared = [self.objective.prepare(self.dataset.get_batch(c.batch_size, self.data_rng), self.objective_rng)
                    for _ in range(c.gradient_accumulation_steps)]
        flat, comm = self.optimizer.flat, self.comm
        self.optimizer.zero_grad()
        shard = token_weighted_loss(self.objective, self.model, prepared, backward=True, rank=comm.rank,
                                    world_size=comm.world_size)
        update = self._update_rule()
        if comm.world_size > 1:
            flat.collect_grads()  # a rank whose share had no target sends zeros
            update.reduce_gradients()  # Σ over ranks of ∇(L_sum,shard / N) = ∇(L_sum / N) (sharded: its block)
        # A stop (Ctrl-C) on any rank travels with the sums, so every rank stops after this same step.
        totals, (stops,) = shard.summed_over(comm, float(self._stop_requested))
        self._stop_requested = stops > 0
        mean_loss = totals.loss
        spike = self.divergence.observe(mean_loss) if math.isfinite(mean_loss) else None
        if not math.isfinite(mean_loss) or spike:
            last = self._latest_checkpoint_path()
            kept = f"the last good checkpoint is {last}" if last and last.exists() else "no checkpoint was written yet"
            raise TrainingDivergedError(
                f"loss became {mean_loss:.6g} at step {self.step + 1}{' and ' + spike if spike else ''}; the step was "
                f"not taken and {kept}. Lower the learning rate, add warmup, or clip gradients (grad_clip)."
            )
        # Clipping sums the norm over the flat buffer, in the optimizer's parameter order (decayed group first).
        grad_norm = update.clip_grad_norm(c.grad_clip if c.grad_clip else math.inf)
        lr = self.learning_rate_at(self.step)
        self.optimizer.lr = lr
        if totals.num_targets:  # no target anywhere in the step: no gradient, no update (as AdamW skips)
            update.step()
        self.step += 1
        step_tokens = totals.num_tokens
        self.tokens_seen += step_tokens
        elapsed = time.perf_counter() - started
        tokens_per_s = step_tokens / elapsed
        return {"step": self.step, "tokens": self.tokens_seen, "loss": mean_loss, "lr": lr,
                "grad_norm": float(grad_norm), "accuracy": totals.accuracy,
                "tokens_per_s": tokens_per_s, "mfu": self._mfu(tokens_per_s, prepared[0].input_ids.shape[1]),
                "step_time_s": elapsed}

    def _update_rule(self) -> OptimizerShard | ReplicatedUpdate:
        """How this step updates: sharded over the ranks (``shard_optimizer``, several MPI ranks, parameters
        on the host) or replicated. Turning sharding off mid-run first gathers the moments."""
        sharded = bool(self.config.shard_optimizer and self.comm.world_size > 1 and self.comm.shards_optimizer
                   and self.optimizer.flat.xp is np)
        if isinstance(self._update, OptimizerShard) != sharded:
            self._update.gather_state()
            self._update = (OptimizerShard if sharded else ReplicatedUpdate)(self.optimizer, self.comm)
        return self._update

    def _mfu(self, tokens_per_s: float, seq_len: int) -> float | None:
        flops_per_token = getattr(self.model, "flops_per_token", None)
        if flops_per_token is None:
            return None
        if self._peak_flops is None:  # measured by rank 0 alone (N ranks timing at once would contend)
            peak = matmul_peak_flops(getattr(self.model, "device", "cpu")) if self.comm.is_main else None
            self._peak_flops = float(self.comm.broadcast(peak)) * self.comm.world_size  # one core per rank
        return flops_per_token(seq_len) * tokens_per_s / self._peak_flops

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, interim: bool = False) -> dict[str, Any]:
        """Loss, perplexity and accuracy on the evaluation split (fixed masks for MLM); ``interim`` (an
        evaluation before the last step) scores only ``interim_eval_batches`` batches when that is set."""
        if self.eval_dataset is None:
            raise ValueError("PreTrainer.evaluate: no eval_dataset was given")
        c = self.config
        batches = c.interim_eval_batches if interim and c.interim_eval_batches is not None else c.eval_batches
        result = evaluate(self.model, self.eval_dataset, self.objective, c.eval_batch_size or c.batch_size,
                          batches, comm=self.comm)
        return {"step": self.step, "tokens": self.tokens_seen, **result.as_dict()}

    # ------------------------------------------------------------------ the loop
    def train(self, max_steps: int | None = None, resume: bool | str | Path = False,
              until_step: int | None = None) -> TrainingResult:
        """Train the run to ``max_steps`` (default: the configured one); ``resume`` continues from a checkpoint.

        ``max_steps`` is the length of the whole run, so it also sets the learning-rate schedule's horizon.
        ``until_step`` pauses earlier without changing the schedule: call ``train()`` again to go on (the
        experiments use this to probe a model part-way through its run, and ``step_hooks`` to record steps).
        ``resume=True`` takes ``checkpoint_dir/checkpoint.npz``; a path takes that file. Ctrl-C stops after
        the current step, saves a checkpoint and returns; a NaN loss raises ``TrainingDivergedError``.
        """
        if max_steps is not None:
            if max_steps < 1:
                raise ValueError(f"train: max_steps must be at least 1, got {max_steps}")
            self.config.max_steps = max_steps
            self.config.validate()
        if resume:
            self.load_checkpoint(self._latest_checkpoint_path() if resume is True else Path(resume))
        c = self.config
        stop_at = c.max_steps if until_step is None else min(until_step, c.max_steps)
        self.model.train()
        result = TrainingResult(steps=0, tokens_seen=self.tokens_seen, final_loss=float("nan"))
        log_file = self._open_log()
        bar = self._progress_bar()
        started = time.perf_counter()
        previous_handler = self._install_interrupt_handler()
        try:
            while self.step < stop_at:
                record = self.train_step()
                result.steps += 1
                result.final_loss = record["loss"]
                self.history.append(record)
                self._write(log_file, record)
                for hook in self.step_hooks:
                    hook(self, record)
                if bar is not None:
                    bar.update(1)
                    if self.step % c.log_interval == 0 or self.step == c.max_steps:
                        bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}",
                                        tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
                at_end = self.step == c.max_steps
                if self.eval_dataset is not None and c.eval_interval and (self.step % c.eval_interval == 0 or at_end):
                    evaluation = self.evaluate(interim=not at_end)
                    result.evaluations.append(evaluation)
                    self._write(log_file, {"event": "eval", **evaluation})
                    if bar is not None:
                        estimate = "" if at_end or c.interim_eval_batches is None else " (estimate)"
                        bar.write(f"step {self.step}: val loss{estimate} {evaluation['val_loss']:.4f}, "
                                  f"perplexity {evaluation['val_perplexity']:.2f}, "
                                  f"accuracy {evaluation['val_accuracy']:.4f}")
                if (c.checkpoint_interval and self.step % c.checkpoint_interval == 0 and not at_end
                        and not self.divergence.suspicious):  # never overwrite a good checkpoint mid-spike
                    self.save_checkpoint()
                if self._stop_requested:
                    result.stopped_early = "interrupted"
                    break
        finally:
            self._restore_interrupt_handler(previous_handler)
            if bar is not None:
                bar.close()
            result.wall_time_s = time.perf_counter() - started
            result.tokens_seen = self.tokens_seen
        if self.checkpoint_dir is not None:
            result.checkpoint = str(self.save_checkpoint())
        if log_file is not None:
            self._write(log_file, {"event": "end", **{k: v for k, v in asdict(result).items() if k != "evaluations"}})
            log_file.close()
        return result

    # ------------------------------------------------------------------ Ctrl-C
    def _install_interrupt_handler(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def request_stop(signum: int, frame: Any) -> None:
            if self._stop_requested:  # a second Ctrl-C: stop at once
                raise KeyboardInterrupt
            self._stop_requested = True
            if self.comm.is_main:
                print("\nInterrupted: finishing this step, saving a checkpoint (Ctrl-C again to abort).")

        self._stop_requested = False
        return signal.signal(signal.SIGINT, request_stop)

    @staticmethod
    def _restore_interrupt_handler(previous: Any) -> None:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)

    # ------------------------------------------------------------------ checkpoints
    def _latest_checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / "checkpoint.npz"

    def _identity(self) -> dict[str, Any]:
        model_config = getattr(self.model, "config", None)
        return {
            "model_kind": getattr(self.model, "kind", type(self.model).__name__),
            "model_config": asdict(model_config) if model_config is not None else None,
            "objective": getattr(self.objective, "name", type(self.objective).__name__),
            "tokenizer": tokenizer_identity(getattr(self.objective, "tokenizer", None)),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: weights, optimizer moments, RNG states and the position."""
        if self._update.moments_partial:
            raise RuntimeError("PreTrainer.state_dict: the sharded optimizer left this rank only its block of "
                               "AdamW's moments; call save_checkpoint() on every rank (it gathers them first)")
        rngs = {"data": self.data_rng.bit_generator.state, "objective": self.objective_rng.bit_generator.state}
        model_rng = _dropout_generator(self.model)
        if model_rng is not None:
            rngs["model"] = model_rng.bit_generator.state
        return {
            **self._identity(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rngs,
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "training_config": asdict(self.config),
        }

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Write the current state to ``path`` (default ``checkpoint_dir/checkpoint.npz``), atomically; with
        several ranks only rank 0 writes (every rank holds the same state)."""
        target = Path(path) if path is not None else self._latest_checkpoint_path()
        if target is None:
            raise ValueError("save_checkpoint: give a path or set checkpoint_dir")
        self._update.gather_state()  # every rank takes part; rank 0 then holds the whole optimizer
        return save_checkpoint(target, self.state_dict()) if self.comm.is_main else target

    def load_checkpoint(self, path: str | Path | None) -> None:
        """Restore a state saved by ``save_checkpoint``; a checkpoint of another model or objective is refused."""
        if path is None:
            raise CheckpointError("resume=True needs checkpoint_dir (or pass the checkpoint's path)")
        state = self._read_on_rank_zero(path)
        check_tokenizer_matches(state, getattr(self.objective, "tokenizer", None), path)  # the root cause first
        mine = self._identity()
        for key in ("model_kind", "model_config", "objective"):
            saved, here = _normalise(state.get(key)), _normalise(mine[key])
            if saved != here:
                if isinstance(saved, dict) and isinstance(here, dict):  # name only what differs
                    keys = sorted(k for k in saved.keys() | here.keys() if saved.get(k) != here.get(k))
                    saved, here = ({k: d.get(k) for k in keys} for d in (saved, here))
                raise CheckpointError(f"{path} was saved with {key} {saved!r}, but this trainer has {here!r}; it "
                                      "belongs to another run (resume it with the settings it was trained with)")
        if int(state["step"]) > self.config.max_steps:
            raise CheckpointError(f"{path} is at step {state['step']}, beyond max_steps = {self.config.max_steps}: "
                                  f"a resumed run cannot go back; set training.max_steps above {state['step']}")
        self.model.load_state_dict(state["model"])
        self.optimizer.flat.rebind()  # load_state_dict replaced each p.data: copy them into the flat buffer
        self.comm.broadcast_buffer(self.optimizer.flat.data)
        self.optimizer.load_state_dict(state["optimizer"])
        self._update.moments_partial = False  # every rank loaded the whole optimizer
        self.data_rng.bit_generator.state = state["rng"]["data"]
        self.objective_rng.bit_generator.state = state["rng"]["objective"]
        model_rng = _dropout_generator(self.model)
        if "model" in state["rng"] and model_rng is not None:
            model_rng.bit_generator.state = state["rng"]["model"]
        self.step = int(state["step"])
        self.tokens_seen = int(state["tokens_seen"])

    def _read_on_rank_zero(self, path: str | Path) -> dict[str, Any]:
        """Rank 0 reads the checkpoint and sends it to every rank (the run folder need only be on rank 0's
        machine); a checkpoint that cannot be read raises the same error on every rank."""
        state, error = None, None
        if self.comm.is_main:
            try:
                state = load_checkpoint(path)
            except CheckpointError as failure:
                error = str(failure)
        state, error = self.comm.broadcast((state, error))
        if error is not None:
            raise CheckpointError(error)
        return state

    # ------------------------------------------------------------------ logging
    def _open_log(self) -> Any:
        if self.checkpoint_dir is None or not self.comm.is_main:
            return None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.checkpoint_dir / "log.jsonl", "a", encoding="utf-8")
        self._write(log, {"event": "start", "step": self.step, **self._identity(),
                          "training_config": asdict(self.config)})
        return log

    @staticmethod
    def _write(log_file: Any, record: dict[str, Any]) -> None:
        if log_file is not None:
            log_file.write(json.dumps(record, default=json_default) + "\n")
            log_file.flush()

    def _progress_bar(self) -> Any:
        if not self.progress or not self.comm.is_main:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.config.max_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)


def _dropout_generator(model: Any) -> Any:
    """The generator the model's dropout draws from (saved so a resumed run drops the same units), if any."""
    generator = getattr(getattr(model, "source", None), "generator", None)
    return generator if hasattr(generator, "bit_generator") else None


def _normalise(value: Any) -> Any:
    """JSON round-trip, so tuples and lists (and numpy scalars) compare equal."""
    return json.loads(json.dumps(value, default=json_default))

