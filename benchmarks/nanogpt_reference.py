"""`make train-clm`'s run, repeated in PyTorch eager: the same data, batches, model, optimizer and schedule.

    .venv/bin/python benchmarks/nanogpt_reference.py            # needs torch and transformers

nanoGPT's CPU "baby GPT" recipe (4 layers, 4 heads, 128 wide, block 64, batch 12, 2,000 iterations, AdamW
lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on matrices, 100 warmup steps, cosine to 1e-4, clip 1.0) on the
GPT-2 architecture (transformers' GPT2LMHeadModel), fed exactly the windows minipretrain's trainer draws
(same dataset, same seeded generator), and scored the same way: the token-weighted loss over the whole
validation split. It prints the validation loss and the wall time, to set beside `make train-clm`'s.
"""
from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from minipretrain.data import PretrainingDataset
from minipretrain.optim.schedules import warmup_cosine_lr
from minipretrain.tokenizers import CharTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args()
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    tokenizer = CharTokenizer()
    train = PretrainingDataset("tinyshakespeare", tokenizer, 64, objective="clm")
    val = PretrainingDataset("tinyshakespeare", tokenizer, 64, objective="clm", split="validation")
    config = transformers.GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=64, n_embd=128, n_layer=4,
                                     n_head=4, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config).train()
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": others, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.99))
    rng = np.random.default_rng([args.seed, 0])  # the PreTrainer's data stream for this seed
    started = time.perf_counter()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(step, max_lr=1e-3, min_lr=1e-4, warmup_steps=100, max_steps=args.steps)
        ids = torch.from_numpy(train.get_batch(12, rng).input_ids)
        logits = model(ids[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    train_time = time.perf_counter() - started
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in val.iter_eval_batches(12):
            ids = torch.from_numpy(batch.input_ids)
            targets = torch.where(torch.from_numpy(batch.attention_mask[:, 1:]), ids[:, 1:], -100)
            logits = model(ids[:, :-1]).logits
            total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                       ignore_index=-100, reduction="sum").item()
            count += int((targets != -100).sum())
    print(f"PyTorch eager, {threads} thread(s), load average {os.getloadavg()[0]:.1f}: {args.steps} steps in "
          f"{train_time:.1f} s ({1000 * train_time / args.steps:.1f} ms/step); final train loss {loss.item():.4f}; "
          f"validation loss {total / count:.4f} (perplexity {math.exp(total / count):.3f}) over {count:,} targets")


if __name__ == "__main__":
    main()
