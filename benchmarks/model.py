"""Model speed: forward+backward tokens per second for the CPU presets, beside PyTorch eager; KV-cache speed-up.

    .venv/bin/python benchmarks/model.py                 # all CPU GPT presets, batch 12
    .venv/bin/python benchmarks/model.py --presets gpt-0.8m --steps 30 --profile

PyTorch runs the same architecture (transformers' GPT2LMHeadModel with the same config, eager mode, float32)
when torch and transformers are installed, with the same number of threads as our BLAS; the last column is
PyTorch's time over ours (above 1: we are faster). Timings are medians over ``--steps`` steps after warm-up;
on a shared machine, read them together with the load average printed at the top.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from minipretrain import ops
from timing import median_seconds
from minipretrain.evaluation import generate
from minipretrain.models import count_parameters, create_model

VOCAB = 65  # shakespeare-char
BATCH = 12


def ours_step_time(name: str, steps: int) -> tuple[float, int, int]:
    model = create_model(name, VOCAB)
    block = min(model.config.block_size, 64)
    rng = np.random.default_rng(0)
    inputs, targets = rng.integers(0, VOCAB, (BATCH, block)), rng.integers(0, VOCAB, (BATCH, block))

    def step():
        model.zero_grad()
        ops.cross_entropy(model(inputs), targets).backward()

    return median_seconds(step, steps), block, count_parameters(model)


def torch_step_time(name: str, steps: int, threads: int) -> float | None:
    try:
        import torch
        import transformers
    except ImportError:
        return None
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(threads)
    ours = create_model(name, VOCAB)
    c = ours.config
    block = min(c.block_size, 64)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
                                     n_head=c.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config).train()
    rng = np.random.default_rng(0)
    inputs = torch.tensor(rng.integers(0, VOCAB, (BATCH, block)))
    targets = torch.tensor(rng.integers(0, VOCAB, (BATCH, block)))

    def step():
        model.zero_grad(set_to_none=True)
        logits = model(inputs).logits
        torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1)).backward()

    return median_seconds(step, steps)


def cache_speedup(new_tokens: int = 200) -> tuple[float, float]:
    """Seconds to sample ``new_tokens`` from the baby GPT (block 256) without and with the KV cache."""
    model = create_model("gpt-0.8m", VOCAB, block_size=256)
    prompt = np.arange(8) % VOCAB
    timings = []
    for use_cache in (False, True):
        start = time.perf_counter()
        generate(model, prompt, new_tokens, seed=0, use_cache=use_cache)
        timings.append(time.perf_counter() - start)
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["gpt-0.1m", "gpt-0.8m", "gpt-3m"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="cProfile the first preset's steps (top ops)")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; BLAS/torch threads: {threads}")
    print(f"{'preset':<10} {'non-emb':>8} {'B x T':>7} {'ms/step':>8} {'tokens/s':>9} {'torch ms':>9} "
          f"{'torch tok/s':>11} {'torch/ours':>10}")
    for name in args.presets:
        seconds, block, params = ours_step_time(name, args.steps)
        tokens = BATCH * block
        reference = None if args.no_torch else torch_step_time(name, args.steps, threads)
        torch_cols = (f"{reference * 1e3:>9.1f} {tokens / reference:>11.0f} {reference / seconds:>10.2f}"
                      if reference else f"{'-':>9} {'-':>11} {'-':>10}")
        print(f"{name:<10} {params / 1e6:>7.2f}M {BATCH:>3}x{block:<3} {seconds * 1e3:>8.1f} {tokens / seconds:>9.0f} "
              f"{torch_cols}")
    uncached, cached = cache_speedup()
    print(f"generate 200 tokens, gpt-0.8m (block 256): {uncached:.2f} s without cache, {cached:.2f} s with "
          f"-> {uncached / cached:.1f}x")
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        ours_step_time(args.presets[0], args.steps)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
