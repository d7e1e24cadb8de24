"""Fused ops vs their composed references: time and peak memory of forward + backward (a benchmark, not a test).

    python benchmarks/ops.py            # float32 on the CPU (NumPy)
    python benchmarks/ops.py --repeats 9

Each row times one forward and one backward (a fixed random upstream gradient, or loss.backward() for the
cross-entropy), reports the median over ``--repeats`` runs after ``--warmup`` runs, and the peak memory that
NumPy allocated during one such run, measured with ``tracemalloc`` (NumPy reports its array buffers to it)
as the peak above what was allocated before the run: inputs are excluded, saved activations, temporaries
and gradients are included. Timing runs and the memory run are separate, because tracing slows Python.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import minipretrain as mp  # noqa: E402
from minipretrain import ops  # noqa: E402
from minipretrain.ops.attention import attention_reference  # noqa: E402
from minipretrain.ops.cross_entropy import cross_entropy_reference  # noqa: E402
from minipretrain.ops.layer_norm import layer_norm_reference  # noqa: E402

DTYPE = np.float32


def make(shape: tuple[int, ...], rng: np.random.Generator, requires_grad: bool = True) -> mp.Tensor:
    """A float32 leaf tensor of standard-normal values."""
    return mp.Tensor(rng.standard_normal(shape).astype(DTYPE), requires_grad=requires_grad)


def forward_backward(fn: Callable[..., mp.Tensor], inputs: list[mp.Tensor], upstream: Any) -> None:
    """One forward and backward pass; gradients are cleared first so every run does the same work."""
    for x in inputs:
        x.grad = None
    out = fn(*inputs)
    out.backward(upstream)


def time_ms(fn: Callable[..., mp.Tensor], inputs: list[mp.Tensor], upstream: Any, warmup: int, repeats: int) -> float:
    """Median wall time of forward + backward in milliseconds."""
    for _ in range(warmup):
        forward_backward(fn, inputs, upstream)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward_backward(fn, inputs, upstream)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def peak_mib(fn: Callable[..., mp.Tensor], inputs: list[mp.Tensor], upstream: Any) -> float:
    """Peak memory (MiB) allocated during one forward + backward, above what was allocated before it."""
    for x in inputs:
        x.grad = None
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        forward_backward(fn, inputs, upstream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - base) / 2**20


def cases(rng: np.random.Generator) -> list[tuple[str, str, Callable, Callable, list[mp.Tensor], Any]]:
    """(op, shape, fused fn, composed fn, inputs, upstream gradient) for every benchmarked configuration."""
    rows = []
    for b, h, t, d in [(12, 4, 64, 32), (4, 8, 256, 64)]:
        q, k, v = (make((b, h, t, d), rng) for _ in range(3))
        upstream = rng.standard_normal((b, h, t, d)).astype(DTYPE)
        rows.append(("attention causal", f"B{b} H{h} T{t} D{d}",
                     lambda q, k, v: ops.scaled_dot_product_attention(q, k, v, causal=True),
                     lambda q, k, v: attention_reference(q, k, v, causal=True), [q, k, v], upstream))
    for b, t, c in [(12, 64, 128), (4, 256, 512)]:
        x, w, bias = make((b, t, c), rng), make((c,), rng), make((c,), rng)
        upstream = rng.standard_normal((b, t, c)).astype(DTYPE)
        rows.append(("layer norm", f"{b}x{t}x{c}", ops.layer_norm, layer_norm_reference,
                     [x, w, bias], upstream))
    for b, t, vocab in [(12, 64, 65), (4, 64, 50257)]:
        logits = make((b * t, vocab), rng)
        targets = rng.integers(0, vocab, b * t)
        rows.append(("cross-entropy", f"{b * t}x{vocab}",
                     lambda z, targets=targets: ops.cross_entropy(z, targets),
                     lambda z, targets=targets: cross_entropy_reference(z, targets), [logits], None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"minipretrain {mp.__version__}, NumPy {np.__version__}, float32, CPU; "
          f"median of {args.repeats} after {args.warmup} warm-up; peak memory by tracemalloc")
    header = f"{'op':<17} {'shape':<18} {'fused ms':>9} {'composed ms':>12} {'speed-up':>9} " \
             f"{'fused MiB':>10} {'composed MiB':>13}"
    print(header)
    print("-" * len(header))
    for op, shape, fused, composed, inputs, upstream in cases(np.random.default_rng(args.seed)):
        fused_ms = time_ms(fused, inputs, upstream, args.warmup, args.repeats)
        composed_ms = time_ms(composed, inputs, upstream, args.warmup, args.repeats)
        fused_mib, composed_mib = peak_mib(fused, inputs, upstream), peak_mib(composed, inputs, upstream)
        print(f"{op:<17} {shape:<18} {fused_ms:9.2f} {composed_ms:12.2f} {composed_ms / fused_ms:8.2f}x "
              f"{fused_mib:10.1f} {composed_mib:13.1f}")


if __name__ == "__main__":
    main()
