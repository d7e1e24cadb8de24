"""Training throughput: a whole step (forward, backward, clipping, AdamW) for the CPU presets, beside PyTorch.

    .venv/bin/python benchmarks/train.py                       # gpt-0.1m, gpt-0.8m, gpt-3m; batch 12, block 64
    .venv/bin/python benchmarks/train.py --presets gpt-0.8m --steps 50

Ours runs ``PreTrainer.train_step`` exactly as ``make train-clm`` does. PyTorch (when installed) runs the
same architecture (transformers' GPT2LMHeadModel, eager, float32) with torch.optim.AdamW (same betas, weight
decay) and gradient clipping at 1.0, on the same number of threads. MFU is model FLOPs per token
(``model.flops_per_token``) × tokens/s over this machine's measured float32 matmul peak
(``minipretrain.training.hardware``). Medians over ``--steps`` steps after warm-up; read them with the
load average printed at the top.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from minipretrain.data import Batch
from timing import median_seconds
from minipretrain.models import count_parameters, create_model
from minipretrain.objectives import CausalLanguageModeling
from minipretrain.training import PreTrainer
from minipretrain.training.hardware import matmul_peak_flops

VOCAB = 65
BATCH = 12
BLOCK = 64


class RandomTokens:
    """A stand-in dataset: uniformly random windows (throughput does not depend on the text)."""

    def get_batch(self, batch_size: int, rng: np.random.Generator) -> Batch:
        ids = rng.integers(0, VOCAB, (batch_size, BLOCK + 1))
        return Batch(ids, np.ones_like(ids, dtype=bool), np.zeros_like(ids, dtype=bool))


def ours(name: str, steps: int) -> tuple[float, float, int]:
    """(seconds per step, model FLOPs per token, non-embedding parameters)."""
    model = create_model(name, VOCAB, block_size=BLOCK)
    trainer = PreTrainer(model=model, objective=CausalLanguageModeling(model), dataset=RandomTokens(),
                         batch_size=BATCH, learning_rate=1e-3, max_steps=10 * steps, betas=(0.9, 0.99),
                         grad_clip=1.0, progress=False)
    return median_seconds(trainer.train_step, steps), model.flops_per_token(BLOCK), count_parameters(model)


def pytorch(name: str, steps: int, threads: int) -> float | None:
    try:
        import torch
        import transformers
    except ImportError:
        return None
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(threads)
    c = create_model(name, VOCAB, block_size=BLOCK).config
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=BLOCK, n_embd=c.n_embd, n_layer=c.n_layer,
                                     n_head=c.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(0)

    def step() -> None:
        ids = torch.from_numpy(rng.integers(0, VOCAB, (BATCH, BLOCK + 1)))
        optimizer.zero_grad(set_to_none=True)
        logits = model(ids[:, :-1]).logits
        torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return median_seconds(step, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["gpt-0.1m", "gpt-0.8m", "gpt-3m"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
    peak = matmul_peak_flops("cpu")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; BLAS/torch threads {threads}; "
          f"measured float32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(f"{'preset':<10} {'non-emb':>8} {'ms/step':>8} {'tokens/s':>9} {'MFU':>6} {'torch ms':>9} "
          f"{'torch tok/s':>11} {'torch/ours':>10}")
    tokens = BATCH * BLOCK
    for name in args.presets:
        seconds, flops_per_token, params = ours(name, args.steps)
        mfu = flops_per_token * tokens / seconds / peak
        reference = None if args.no_torch else pytorch(name, args.steps, threads)
        torch_cols = (f"{reference * 1e3:>9.1f} {tokens / reference:>11.0f} {reference / seconds:>10.2f}"
                      if reference else f"{'-':>9} {'-':>11} {'-':>10}")
        print(f"{name:<10} {params / 1e6:>7.2f}M {seconds * 1e3:>8.1f} {tokens / seconds:>9.0f} {100 * mfu:>5.1f}% "
              f"{torch_cols}")


if __name__ == "__main__":
    main()
