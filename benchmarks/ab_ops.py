"""Interleaved A/B timing of an op file: this checkout's version against the same file at a git revision.

    python benchmarks/ab_ops.py gelu layer_norm --against main --repeats 30
    python benchmarks/ab_ops.py all --against HEAD~3

On a shared machine absolute times drift with the load; alternating old and new in one process (the order
flipped every repeat) exposes both to the same drift, so the median ratio new/old is meaningful even when the
milliseconds are not. Each run is one forward and one backward at the baby GPT's shapes (gpt-0.8m: batch 12,
block 64, 128 wide, 4 heads, vocabulary 65), float32, one BLAS thread as `make` sets it. The old op file is
read with ``git show REV:path`` and executed as a module of ``minipretrain.ops``, so both versions use the
same autograd engine and differ only in the op.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import minipretrain as mp  # noqa: E402

B, T, C, H, V = 12, 64, 128, 4, 65


def load_op_file(name: str, revision: str | None) -> types.ModuleType:
    """``minipretrain/ops/<name>.py`` as it is now (None) or at ``revision``."""
    if revision is None:
        return __import__(f"minipretrain.ops.{name}", fromlist=["_"])
    source = subprocess.run(["git", "show", f"{revision}:minipretrain/ops/{name}.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"minipretrain.ops._ab_{name}")
    module.__package__ = "minipretrain.ops"
    exec(compile(source, f"{revision}:minipretrain/ops/{name}.py", "exec"), module.__dict__)  # noqa: S102
    return module


def leaf(rng: np.random.Generator, *shape: int) -> mp.Tensor:
    return mp.Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)


def cases(rng: np.random.Generator) -> dict[str, tuple[str, Callable[[types.ModuleType], Callable[[], None]]]]:
    """name -> (op file, a function that, given that file's module, returns one forward+backward run)."""
    def gelu(m):
        x, g = leaf(rng, B, T, 4 * C), rng.standard_normal((B, T, 4 * C)).astype(np.float32)
        return lambda: m.gelu(x, approximate="tanh").backward(g)

    def layer_norm(m):
        x, w, b = leaf(rng, B, T, C), leaf(rng, C), leaf(rng, C)
        g = rng.standard_normal((B, T, C)).astype(np.float32)
        return lambda: m.layer_norm(x, w, b).backward(g)

    def attention(m):
        q, k, v = (leaf(rng, B, H, T, C // H) for _ in range(3))
        g = rng.standard_normal((B, H, T, C // H)).astype(np.float32)
        return lambda: m.scaled_dot_product_attention(q, k, v, causal=True).backward(g)

    def cross_entropy(m):
        logits, targets = leaf(rng, B, T, V), rng.integers(0, V, (B, T))
        return lambda: m.cross_entropy(logits, targets, reduction="sum").backward()

    def embedding(m):
        weight, ids = leaf(rng, V, C), rng.integers(0, V, (B, T))
        g = rng.standard_normal((B, T, C)).astype(np.float32)
        return lambda: m.embedding(weight, ids).backward(g)

    return {"gelu": ("activations", gelu), "layer_norm": ("layer_norm", layer_norm),
            "attention": ("attention", attention), "cross_entropy": ("cross_entropy", cross_entropy),
            "embedding": ("embedding", embedding)}


def ab(old: Callable[[], None], new: Callable[[], None], repeats: int, inner: int) -> tuple[float, float, float]:
    """Median ms of old and of new over ``repeats`` alternating rounds (``inner`` runs each), and the median of
    the per-round ratios new/old."""
    for run in (old, new):  # warm up: first-touch page faults, caches
        run()
    times: dict[str, list[float]] = {"old": [], "new": []}
    ratios = []
    for repeat in range(repeats):
        order = [("old", old), ("new", new)] if repeat % 2 == 0 else [("new", new), ("old", old)]
        round_times = {}
        for label, run in order:
            started = time.perf_counter()
            for _ in range(inner):
                run()
            round_times[label] = (time.perf_counter() - started) / inner * 1e3
            times[label].append(round_times[label])
        ratios.append(round_times["new"] / round_times["old"])
    return statistics.median(times["old"]), statistics.median(times["new"]), statistics.median(ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ops", nargs="+", help="gelu, layer_norm, attention, cross_entropy, embedding, or all")
    parser.add_argument("--against", default="main", help="git revision of the old version (default main)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--inner", type=int, default=5, help="runs per timed round")
    args = parser.parse_args(argv)
    table = cases(np.random.default_rng(0))
    names = list(table) if args.ops == ["all"] else args.ops
    print(f"{'op (fwd+bwd, gpt-0.8m shapes)':32} {args.against + ' ms':>12} {'this ms':>10} {'new/old':>8}")
    for name in names:
        file_name, make = table[name]
        old = make(load_op_file(file_name, args.against))
        new = make(load_op_file(file_name, None))
        old_ms, new_ms, ratio = ab(old, new, args.repeats, args.inner)
        print(f"{name:32} {old_ms:12.3f} {new_ms:10.3f} {ratio:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
