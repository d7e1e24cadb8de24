"""The issue's training table: nanoGPT's baby-GPT recipe, ours on 1 and N ranks beside PyTorch and nanoGPT.

    .venv/bin/python benchmarks/train_recipe.py                         # N = every core; 40 timed steps each
    NANOGPT_DIR=/path/to/nanoGPT .venv/bin/python benchmarks/train_recipe.py --nproc 2 --steps 100
    .venv/bin/python benchmarks/train_recipe.py --width 256 --block 128     # the gpt-3m preset's shape

The recipe: 4 layers, 4 heads, 128 wide, block 64, batch 12, vocabulary 65 (characters), AdamW (0.9, 0.99),
weight decay 0.1, clipping at 1.0, dropout 0. Rows, each run in its own process, one after the other:

* ours, 1 rank and N ranks: ``PreTrainer.train_step`` under ``mpiexec -n R`` (one BLAS thread per rank), as
  ``make train-clm`` runs it; the step time is rank 0's (the all-reduce makes every rank wait for the slowest);
* PyTorch eager at its default thread count (OMP/BLAS thread variables removed): transformers'
  GPT2LMHeadModel with the same shape, optimizer and clipping;
* nanoGPT's own ``train.py`` (when ``NANOGPT_DIR`` names a checkout with ``data/shakespeare_char/*.bin``):
  the README's CPU command, ``--max_iters`` = the timed steps, its own per-iteration times.

ms/step is the median after a warm-up; tokens/s = 12·64 / step time; MFU = model FLOPs per token × tokens/s
over the measured float32 matmul peak of one core (one BLAS thread) and of all cores (N BLAS threads).
Scaling efficiency = tokens/s at 2 ranks / (2 × tokens/s at 1 rank). Read the figures with the load average
printed at the top: on a shared machine they are only as good as the machine was quiet.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

VOCAB, BATCH, BLOCK, LAYERS, HEADS, WIDTH = 65, 12, 64, 4, 4, 128
SHAPE = {"layers": LAYERS, "heads": HEADS, "width": WIDTH, "block": BLOCK}  # the baby GPT unless told otherwise
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def environment(threads: int | None) -> dict[str, str]:
    """This environment with the BLAS/OpenMP thread variables set to ``threads`` (None: removed)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env


def run_json(command: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run a worker; its last stdout line is a JSON record."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} ... failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- workers (one process each)
class RandomTokens:
    """A stand-in dataset: uniformly random windows (throughput does not depend on the text)."""

    def get_batch(self, batch_size: int, rng: np.random.Generator):
        from minipretrain.data import Batch

        ids = rng.integers(0, VOCAB, (batch_size, SHAPE["block"] + 1))
        return Batch(ids, np.ones_like(ids, dtype=bool), np.zeros_like(ids, dtype=bool))


def worker_ours(steps: int, warmup: int) -> None:
    from minipretrain.models import create_model
    from minipretrain.objectives import CausalLanguageModeling
    from minipretrain.training import PreTrainer

    model = create_model("gpt", VOCAB, n_layer=SHAPE["layers"], n_head=SHAPE["heads"], n_embd=SHAPE["width"],
                         block_size=SHAPE["block"], dropout=0.0)
    trainer = PreTrainer(model=model, objective=CausalLanguageModeling(model), dataset=RandomTokens(),
                         batch_size=BATCH, learning_rate=1e-3, max_steps=10 * (steps + warmup), betas=(0.9, 0.99),
                         weight_decay=0.1, grad_clip=1.0, progress=False)
    times = []
    for index in range(warmup + steps):
        started = time.perf_counter()
        trainer.train_step()
        if index >= warmup:
            times.append(time.perf_counter() - started)
    if trainer.comm.is_main:
        print(json.dumps({"seconds": statistics.median(times), "ranks": trainer.comm.world_size,
                          "flops_per_token": model.flops_per_token(SHAPE["block"])}))


def worker_torch(steps: int, warmup: int) -> None:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=SHAPE["block"], n_embd=SHAPE["width"],
                                     n_layer=SHAPE["layers"], n_head=SHAPE["heads"], resid_pdrop=0.0, embd_pdrop=0.0,
                                     attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config).train()
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": others, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.99))
    rng = np.random.default_rng(0)
    times = []
    for index in range(warmup + steps):
        started = time.perf_counter()
        ids = torch.from_numpy(rng.integers(0, VOCAB, (BATCH, SHAPE["block"] + 1)))
        logits = model(ids[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if index >= warmup:
            times.append(time.perf_counter() - started)
    print(json.dumps({"seconds": statistics.median(times), "threads": torch.get_num_threads()}))


def worker_peak() -> None:
    from minipretrain.training.hardware import measure_matmul_peak

    print(json.dumps({"flops": measure_matmul_peak("cpu")}))


# --------------------------------------------------------------------------- the driver
def nanogpt_seconds(nanogpt: Path, steps: int, warmup: int, timeout: float) -> float:
    """Median per-iteration time nanoGPT's train.py prints for the CPU baby-GPT command."""
    with tempfile.TemporaryDirectory() as out_dir:
        iterations = steps + warmup
        command = [sys.executable, "train.py", "config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
                   "--eval_iters=20", "--log_interval=1", f"--block_size={SHAPE['block']}", f"--batch_size={BATCH}",
                   f"--n_layer={SHAPE['layers']}", f"--n_head={SHAPE['heads']}", f"--n_embd={SHAPE['width']}",
                   f"--max_iters={iterations}",
                   f"--lr_decay_iters={iterations}", "--dropout=0.0", f"--eval_interval={10 * iterations}",
                   f"--out_dir={out_dir}"]
        done = subprocess.run(command, cwd=nanogpt, env=environment(None), capture_output=True, text=True,
                              timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"nanoGPT's train.py failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    times = [float(ms) / 1e3 for iteration, ms in re.findall(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms",
                                                             done.stdout, re.M) if int(iteration) > warmup]
    if not times:
        raise RuntimeError(f"no 'iter N: ... time Xms' lines in nanoGPT's output:\n{done.stdout[-2000:]}")
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=None, help="N, the all-core rank count (default: the cores)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed for each row")
    parser.add_argument("--layers", type=int, default=LAYERS)
    parser.add_argument("--heads", type=int, default=HEADS)
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument("--block", type=int, default=BLOCK)
    parser.add_argument("--worker", choices=["ours", "torch", "peak"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    SHAPE.update(layers=args.layers, heads=args.heads, width=args.width, block=args.block)
    if args.worker == "ours":
        worker_ours(args.steps, args.warmup)
        return 0
    if args.worker == "torch":
        worker_torch(args.steps, args.warmup)
        return 0
    if args.worker == "peak":
        worker_peak()
        return 0

    from minipretrain.distributed.launch import available_cores, find_mpiexec

    cores = available_cores()
    nproc = args.nproc or cores
    mpiexec = find_mpiexec()
    me = [sys.executable, str(Path(__file__).resolve())]
    timing = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--layers", str(args.layers),
              "--heads", str(args.heads), "--width", str(args.width), "--block", str(args.block)]
    shape = f"{args.layers}x{args.heads}x{args.width}, block {args.block}, batch {BATCH}"
    print(f"load average {os.getloadavg()[0]:.1f} on {cores} cores; GPT {shape}; "
          f"{args.steps} timed steps per row after {args.warmup}")
    peak_one = run_json([*me, "--worker", "peak"], environment(1), args.timeout)["flops"]
    peak_all = run_json([*me, "--worker", "peak"], environment(nproc), args.timeout)["flops"]
    print(f"float32 matmul peak: {peak_one / 1e9:.1f} GFLOP/s on one core, {peak_all / 1e9:.1f} GFLOP/s on "
          f"{nproc} threads")

    rows: list[tuple[str, float]] = []
    rank_counts = sorted({1, 2, nproc} if nproc >= 2 else {1})
    flops_per_token = None
    for ranks in rank_counts:
        if ranks > 1 and mpiexec is None:
            print(f"ours on {ranks} ranks: skipped (no mpiexec; pip install mpi4py mpich)")
            continue
        command = [*me, "--worker", "ours", *timing]
        if ranks > 1:
            command = [mpiexec, "-n", str(ranks), *command]
        record = run_json(command, environment(1), args.timeout)
        flops_per_token = record["flops_per_token"]
        rows.append((f"ours, {ranks} rank{'s' if ranks > 1 else ''} (1 BLAS thread each)", record["seconds"]))
    if not args.no_torch:
        try:
            record = run_json([*me, "--worker", "torch", *timing], environment(None), args.timeout)
            rows.append((f"PyTorch eager, {record['threads']} threads (its default)", record["seconds"]))
        except RuntimeError as error:
            print(f"PyTorch eager: skipped ({str(error).splitlines()[-1][:120]})")
    nanogpt = os.environ.get("NANOGPT_DIR")
    if nanogpt:
        rows.append(("nanoGPT train.py (PyTorch eager, default threads)",
                     nanogpt_seconds(Path(nanogpt), args.steps, args.warmup, args.timeout)))

    tokens = BATCH * args.block
    print(f"\n{'run':<52} {'ms/step':>8} {'tokens/s':>9} {'MFU 1 core':>10} {f'MFU {nproc} cores':>11}")
    for label, seconds in rows:
        rate = tokens / seconds
        flops = flops_per_token * rate if flops_per_token else float("nan")
        print(f"{label:<52} {seconds * 1e3:>8.1f} {rate:>9.0f} {100 * flops / peak_one:>9.1f}% "
              f"{100 * flops / peak_all:>10.1f}%")
    ours = {label: seconds for label, seconds in rows if label.startswith("ours")}
    one = ours.get("ours, 1 rank (1 BLAS thread each)")
    two = ours.get("ours, 2 ranks (1 BLAS thread each)")
    if one and two:
        print(f"\nscaling 1 -> 2 ranks: {one / two:.2f}x tokens/s, efficiency {one / two / 2:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
