"""The one prepared run for a real GPU: correctness first, then throughput, all within 8 minutes, one table.

    pip install --no-deps -e . && python benchmarks/gpu.py       # or: make bench-gpu

1. the ``gpu``-marked test suite on the real CuPy (``pytest -m gpu``; the fake device is switched off);
2. the CPU-vs-GPU equivalence of whole GPT and BERT training steps (part of 1, reported on its own line);
3. training throughput of ``PreTrainer.train_step`` for gpt-3m, gpt-25m and bert-25m (float32, AdamW,
   clipping at 1.0, random tokens: throughput does not depend on the text), tokens/s and MFU against the
   warmed matmul peak of ``minipretrain.training.hardware`` (keyed by the GPU's name), beside PyTorch eager
   (transformers' GPT2LMHeadModel / BertForMaskedLM, torch.optim.AdamW) on the same GPU when torch imports.

Each stage gets what is left of the time budget (``--budget-s``, 480 by default); rows that no longer fit are
printed as skipped, never silently dropped. Without a GPU it stops at once with a clear message (exit 2).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOCAB = 8192
DEFAULT_PRESETS = ("gpt-3m", "gpt-25m", "bert-25m")
BATCH = {"3m": 32, "25m": 16}  # tokens per step: 32·128 = 4096 and 16·512 = 8192
WARMUP_STEPS, TIMED_STEPS = 3, 10
EQUIVALENCE = "equals_the_cpu_step"


class NoGPU(RuntimeError):
    """This machine cannot run the GPU benchmark; the message says why and what to do."""


def require_gpu() -> str:
    """The GPU's name, or :class:`NoGPU` (no CuPy, no device, or the fake device switched on)."""
    from minipretrain.backend import fake_cupy_enabled

    if fake_cupy_enabled():
        raise NoGPU("MINIPRETRAIN_FAKE_CUPY is set: this benchmark measures a real GPU; unset it")
    try:
        import cupy
    except ImportError as error:
        raise NoGPU("CuPy is not installed: `pip install cupy-cuda12x` on a machine with a CUDA GPU") from error
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError without a driver
        raise NoGPU(f"CuPy found no usable CUDA GPU ({error}); run this on a GPU machine") from error
    if count == 0:
        raise NoGPU("CuPy found no CUDA GPU; run this on a GPU machine")
    from minipretrain.training.hardware import gpu_name

    return gpu_name()


class Budget:
    """Seconds left of the whole run's allowance."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.deadline = clock, clock() + seconds

    def left(self) -> float:
        return max(0.0, self.deadline - self.clock())


@dataclass
class Row:
    """One line of the table: a preset, and what ours and PyTorch reached (None: not run, with why)."""

    preset: str
    tokens_per_step: int
    ours_s: float | None = None
    torch_s: float | None = None
    flops_per_token: float = 0.0
    note: str = ""


def format_table(rows: list[Row], peak: float, header: list[str]) -> str:
    """The result table: ms/step, tokens/s and MFU for ours and PyTorch, and the ratio."""
    def cells(seconds: float | None, row: Row) -> str:
        if seconds is None:
            return f"{'-':>9} {'-':>10} {'-':>6}"
        rate = row.tokens_per_step / seconds
        return f"{seconds * 1e3:>9.1f} {rate:>10.0f} {100 * row.flops_per_token * rate / peak:>5.1f}%"

    lines = [*header, f"{'preset':<10} {'tok/step':>8} | {'ms/step':>9} {'tokens/s':>10} {'MFU':>6} | "
                      f"{'torch ms':>9} {'tokens/s':>10} {'MFU':>6} | {'torch/ours':>10}  note"]
    for row in rows:
        ratio = f"{row.torch_s / row.ours_s:>10.2f}" if row.ours_s and row.torch_s else f"{'-':>10}"
        lines.append(f"{row.preset:<10} {row.tokens_per_step:>8} | {cells(row.ours_s, row)} | "
                     f"{cells(row.torch_s, row)} | {ratio}  {row.note}".rstrip())
    return "\n".join(lines)


def shape(preset: str) -> tuple[int, int]:
    """(batch, block) of a preset's throughput run."""
    from minipretrain.models.presets import PRESETS

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    return BATCH.get(preset.split("-")[1], 8), PRESETS[preset].block_size


def run_tests(budget: Budget, select: str | None) -> tuple[str, float]:
    """``pytest -m gpu`` (``-k select``) on the real device: (summary line, seconds)."""
    env = {k: v for k, v in os.environ.items() if k != "MINIPRETRAIN_FAKE_CUPY"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    command = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", str(ROOT / "tests")]
    if select:
        command += ["-k", select]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=max(1.0, budget.left() - 60))
    except subprocess.TimeoutExpired:
        return "timed out (time budget)", time.monotonic() - started
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    summary = lines[-1] if lines else done.stderr.strip()[-200:]
    return "; ".join([summary, *failures[:10]]), time.monotonic() - started


class RandomTokens:
    """Uniformly random windows of tokens (a dataset for ``PreTrainer``)."""

    def __init__(self, block: int, causal: bool) -> None:
        self.length = block + 1 if causal else block  # CLM shifts by one; MLM predicts in place

    def get_batch(self, batch_size: int, rng: np.random.Generator) -> Any:
        from minipretrain.data import Batch

        ids = rng.integers(5, VOCAB, (batch_size, self.length))
        return Batch(ids, np.ones_like(ids, dtype=bool), np.zeros_like(ids, dtype=bool))


class MaskTokens:
    """What MLM needs of a tokenizer: the special ids and the ids random replacements come from."""

    pad_id, cls_id, sep_id, mask_id, unk_id = 0, 1, 2, 3, 4
    vocab_size = VOCAB
    special_ids = (0, 1, 2, 3, 4)


def median_step_seconds(step: Callable[[], object], sync: Callable[[], None]) -> float:
    for _ in range(WARMUP_STEPS):
        step()
    sync()
    times = []
    for _ in range(TIMED_STEPS):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ours(preset: str) -> tuple[float, float]:
    """(seconds per training step on the GPU, model FLOPs per token)."""
    import cupy

    from minipretrain.models import create_model
    from minipretrain.objectives import make_objective
    from minipretrain.training import PreTrainer

    batch, block = shape(preset)
    model = create_model(preset, VOCAB).to("cuda")
    objective = make_objective("clm" if model.kind == "gpt" else "mlm", model, MaskTokens())
    trainer = PreTrainer(model=model, objective=objective, dataset=RandomTokens(block, model.kind == "gpt"),
                         batch_size=batch, learning_rate=1e-4, max_steps=1000, betas=(0.9, 0.99), grad_clip=1.0,
                         progress=False)
    seconds = median_step_seconds(trainer.train_step, cupy.cuda.Stream.null.synchronize)
    return seconds, model.flops_per_token(block)


def pytorch(preset: str) -> float:
    """Seconds per step of the same model in PyTorch eager on the GPU (ImportError without torch)."""
    import torch
    import transformers

    from minipretrain.models import create_model

    transformers.logging.set_verbosity_error()
    batch, block = shape(preset)
    c = create_model(preset, VOCAB).config
    if preset.startswith("gpt"):
        config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=block, n_embd=c.n_embd, n_layer=c.n_layer,
                                         n_head=c.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=c.n_embd, num_hidden_layers=c.n_layer,
                                         num_attention_heads=c.n_head, intermediate_size=c.intermediate_size,
                                         max_position_embeddings=block, hidden_dropout_prob=c.dropout,
                                         attention_probs_dropout_prob=c.dropout)
        model = transformers.BertForMaskedLM(config)
    model = model.cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(0)

    def step() -> None:
        ids = torch.from_numpy(rng.integers(5, VOCAB, (batch, block + 1))).cuda()
        optimizer.zero_grad(set_to_none=True)
        inputs, labels = (ids[:, :-1], ids[:, 1:]) if preset.startswith("gpt") else (ids[:, 1:], ids[:, 1:])
        logits = model(inputs).logits
        torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return median_step_seconds(step, torch.cuda.synchronize)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--budget-s", type=float, default=480.0, help="the whole run's time allowance")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    for preset in args.presets:
        shape(preset)  # an unknown preset fails before anything runs
    try:
        name = require_gpu()
    except NoGPU as error:
        print(f"benchmarks/gpu.py: {error}", file=sys.stderr)
        return 2
    budget = Budget(args.budget_s)
    from minipretrain.training.hardware import matmul_peak_flops

    peak = matmul_peak_flops("cuda")
    header = [f"GPU: {name}; warmed float32 matmul peak {peak / 1e12:.1f} TFLOP/s"]
    if not args.skip_tests:
        equivalence, seconds = run_tests(budget, EQUIVALENCE)
        header.append(f"CPU-vs-GPU step equivalence: {equivalence} ({seconds:.0f} s)")
        suite, seconds = run_tests(budget, None)
        header.append(f"gpu test suite on real CuPy: {suite} ({seconds:.0f} s)")
    rows = []
    for preset in args.presets:
        batch, block = shape(preset)
        row = Row(preset, batch * block)
        rows.append(row)
        if budget.left() < 45:
            row.note = "skipped (time budget)"
            continue
        row.ours_s, row.flops_per_token = ours(preset)
        if args.no_torch:
            continue
        if budget.left() < 30:
            row.note = "torch skipped (time budget)"
            continue
        try:
            row.torch_s = pytorch(preset)
        except ImportError:
            row.note = "torch not importable"
    print(format_table(rows, peak, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
