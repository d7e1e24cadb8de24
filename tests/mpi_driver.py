"""A small data-parallel training run for the MPI tests: ``mpiexec -n N python tests/mpi_driver.py ...``.

It does what the trainer's step will do once it is wired to minipretrain.distributed (the same seeded
draws, the sharded token-weighted backward, one all-reduce, flat clipping and FlatAdamW), on a tiny GPT (CLM)
or BERT (MLM), float64 unless ``--dtype float32``, and rank 0 writes the per-step losses, the evaluation and the final parameters.
Options to kill or freeze one rank at a given step test how a run ends when a rank dies or hangs;
``--resume`` continues from a checkpoint (written with any rank count).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from minipretrain.data import PretrainingDataset
from minipretrain.distributed import (DistributedError, RankMismatchError, data_parallel_gradients,
                                      evaluate_sharded, init_communicator)
from minipretrain.models import BERT, GPT, BERTConfig, GPTConfig
from minipretrain.objectives import CausalLanguageModeling, MaskedLanguageModeling
from minipretrain.optim import param_groups
from minipretrain.optim.flat import FlatAdamW
from minipretrain.tokenizers import CharTokenizer
from minipretrain.training.checkpoint import load_checkpoint, save_checkpoint

SEQ_LEN = 12


def build(args: argparse.Namespace):
    tokenizer = CharTokenizer()
    splits = [PretrainingDataset(args.corpus, tokenizer, SEQ_LEN, objective=args.objective, split=split,
                                 cache_dir=args.cache) for split in ("train", "validation")]
    if args.objective == "clm":
        model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=2, n_head=2, n_embd=16, block_size=SEQ_LEN,
                              seed=args.seed, dtype=args.dtype))
        objective = CausalLanguageModeling(model, tokenizer)
    else:
        model = BERT(BERTConfig(vocab_size=tokenizer.vocab_size, n_layer=2, n_head=2, n_embd=16,
                                max_position_embeddings=SEQ_LEN, dropout=0.0, seed=args.seed, dtype=args.dtype))
        objective = MaskedLanguageModeling(model, tokenizer, mask_prob=0.25)
    return model, objective, *splits


def run(args: argparse.Namespace, comm) -> None:
    comm.check_agreement({k: v for k, v in vars(args).items() if k != "out"}, "driver configuration")
    model, objective, train, val = build(args)
    optimizer = FlatAdamW(param_groups(model, 0.1), lr=args.lr, betas=(0.9, 0.95))
    data_rng = np.random.default_rng([args.seed, 0])
    objective_rng = np.random.default_rng([args.seed, 1])
    first = 0
    if args.resume:  # every rank reads the same checkpoint: the state is the same whatever the rank count
        state = load_checkpoint(args.resume)
        model.load_state_dict(state["model"])
        optimizer.flat.rebind()  # load_state_dict replaced p.data: copy it into the buffer before broadcasting it
        optimizer.load_state_dict(state["optimizer"])
        data_rng.bit_generator.state = state["rng"]["data"]
        objective_rng.bit_generator.state = state["rng"]["objective"]
        first = int(state["step"])
    if comm.rank == args.perturb_rank:  # as if this machine's libraries had initialised other weights
        optimizer.flat.data += 1.0
    comm.broadcast_buffer(optimizer.flat.data)  # every rank starts from rank 0's parameters
    losses, norms = [], []
    for step in range(first, args.steps):
        if step == args.fail_step and comm.rank == args.fail_rank:
            os.kill(os.getpid(), signal.SIGKILL if args.fail == "kill" else signal.SIGSTOP)
        prepared = [objective.prepare(train.get_batch(args.batch, data_rng), objective_rng)
                    for _ in range(args.accum)]
        optimizer.zero_grad()
        stop = step == args.stop_step and comm.rank == args.stop_rank  # as if Ctrl-C reached this rank alone
        metrics = data_parallel_gradients(objective, model, prepared, comm, optimizer.flat, args.batch, stop)
        norms.append(optimizer.flat.clip_grad_norm(0.5))
        optimizer.step()
        losses.append(metrics["loss"])
        if metrics["stop_requested"]:
            break
        if args.out and comm.is_main:
            save_checkpoint(Path(args.out) / "checkpoint.npz",
                            {"step": step + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "rng": {"data": data_rng.bit_generator.state,
                                     "objective": objective_rng.bit_generator.state}})
    evaluation = evaluate_sharded(model, val, objective, comm, batch_size=4, max_batches=7)
    if args.out and comm.is_main:
        out = Path(args.out)
        np.save(out / "params.npy", optimizer.flat.data)
        (out / "result.json").write_text(json.dumps({"world_size": comm.world_size, "losses": losses,
                                                     "grad_norms": norms, "eval": evaluation.as_dict()}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--out", default="")
    parser.add_argument("--objective", choices=("clm", "mlm"), default="clm")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--accum", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--fail", choices=("kill", "hang"), default="kill")
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--fail-step", type=int, default=-1)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--perturb-rank", type=int, default=-1)
    parser.add_argument("--stop-rank", type=int, default=-1)
    parser.add_argument("--stop-step", type=int, default=-1)
    parser.add_argument("--resume", default="", help="a checkpoint.npz written by this driver")
    args = parser.parse_args()
    comm = init_communicator("auto", timeout_s=args.timeout)
    try:
        run(args, comm)
    except DistributedError as error:
        if comm.is_main or not isinstance(error, RankMismatchError):  # every rank raises that one: say it once
            print(f"minipretrain: {error}", file=sys.stderr, flush=True)
        comm.abort(2)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
