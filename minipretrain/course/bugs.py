"""``make bugs``: seeded mutations of the real code, each verified to be caught by the tests named beside it.

A mutation is data (file, original snippet, mutated snippet, the tests expected to catch it). The runner copies
the checkout to a temporary folder, applies one mutation there (the original is never touched) and runs the
named tests: the bug is *caught* when they fail. ``make bugs`` verifies every mutation; ``plant`` writes a copy
with one bug in it for a student to hunt. This file stays out of the student copy: it quotes the solutions.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .exercises import HOME, ExerciseError, source_files


@dataclass(frozen=True)
class Mutation:
    """A seeded bug: replace ``original`` (found exactly once in ``file``) by ``mutated``; ``tests`` must fail."""

    id: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]
    hint: str = ""



# The bugs a student hunts with `make bugs`: each is verified to be caught by the tests named beside it.
MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        id="dropped-upstream-gradient",
        file="minipretrain/ops/elementwise.py",
        original="grad_a = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None",
        mutated="grad_a = unbroadcast(b + 0 * grad, a.shape) if ctx.needs_input_grad[0] else None",
        tests=("tests/test_ops_elementwise.py",),
        hint="a product's backward that forgets the gradient arriving from above",
    ),
    Mutation(
        id="wrong-unbroadcast-axis",
        file="minipretrain/ops/_broadcast.py",
        original="grad = grad.sum(axis=tuple(range(extra)))",
        mutated="grad = grad.sum(axis=tuple(range(grad.ndim - extra, grad.ndim)))",
        tests=("tests/test_ops_elementwise.py",),
        hint="broadcasting adds axes on the left; which ones does the backward sum away?",
    ),
    Mutation(
        id="causal-mask-off-by-one",
        file="minipretrain/ops/attention.py",
        original="allowed = (xp.arange(tk)[None, :] <= query_pos)[None, None]",
        mutated="allowed = (xp.arange(tk)[None, :] <= query_pos + 1)[None, None]",
        tests=("tests/test_ops_table.py::test_causal_and_padding_masks_truth_table", "tests/test_ops_attention.py"),
        hint="a token that can see one step into the future",
    ),
    Mutation(
        id="mlm-labels-on-unselected",
        file="minipretrain/objectives/masked.py",
        original="labels = np.where(selected, original, IGNORE_INDEX).astype(np.int64)",
        mutated="labels = original.astype(np.int64)",
        tests=("tests/test_objectives.py",),
        hint="a masked-LM loss scored where nothing was hidden",
    ),
    Mutation(
        id="mean-of-micro-batch-means",
        file="minipretrain/objectives/accumulation.py",
        original="(loss * scale).backward()",
        mutated="(loss * (1.0 / (batch.num_targets * len(prepared)))).backward()",
        tests=("tests/test_accumulation.py",),
        hint="gradient accumulation that weighs a micro-batch of 3 tokens like one of 300",
    ),
)


@dataclass(frozen=True)
class BugResult:
    id: str
    caught: bool
    detail: str

    def row(self) -> str:
        return f"{self.id:<28} {'caught' if self.caught else 'MISSED':<7} {self.detail}"


def copy_tree(root: Path, dest: Path) -> None:
    """Copy what a fresh clone of ``root`` would hold into ``dest``."""
    for name in source_files(root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)


def apply_mutation(tree: Path, mutation: Mutation) -> None:
    """Apply ``mutation`` inside ``tree``; its snippet must occur exactly once, so a moved line is noticed."""
    path = tree / mutation.file
    if not path.is_file():
        raise ExerciseError(f"bug {mutation.id!r}: {mutation.file} does not exist; update minipretrain/course/bugs.py")
    text = path.read_text(encoding="utf-8")
    count = text.count(mutation.original)
    if count != 1:
        raise ExerciseError(f"bug {mutation.id!r}: the snippet occurs {count} times in {mutation.file} (must be "
                            f"exactly once): {mutation.original!r}")
    path.write_text(text.replace(mutation.original, mutation.mutated), encoding="utf-8")


def run_tests(tree: Path, tests: Sequence[str], python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    # The tree first: its (mutated) code wins over this checkout, which is there for trees that import it.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys([str(tree), str(HOME)])),
               PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "addopts=",
                           "--no-header", *tests], cwd=tree, env=env, capture_output=True, text=True)


def verify_mutation(root: Path, mutation: Mutation) -> BugResult:
    """Run ``mutation.tests`` on a mutated copy of ``root``: caught when pytest reports failing tests (exit 1)."""
    with tempfile.TemporaryDirectory(prefix=f"bug-{mutation.id}-") as scratch:
        tree = Path(scratch)
        copy_tree(Path(root).resolve(), tree)
        apply_mutation(tree, mutation)
        completed = run_tests(tree, mutation.tests)
    lines = completed.stdout.strip().splitlines()
    summary = lines[-1] if lines else completed.stderr.strip()[-200:]
    if completed.returncode == 1:
        return BugResult(mutation.id, True, summary)
    if completed.returncode == 0:
        return BugResult(mutation.id, False, f"the tests still pass: {summary}")
    return BugResult(mutation.id, False, f"pytest could not run (exit {completed.returncode}): {summary}")


def verify_mutations(root: Path = HOME, mutations: Sequence[Mutation] = MUTATIONS,
                     only: str | None = None) -> list[BugResult]:
    chosen = [m for m in mutations if only in (None, m.id)]
    if only is not None and not chosen:
        raise ExerciseError(f"no bug {only!r}; the bugs are: {[m.id for m in mutations]}")
    return [verify_mutation(root, mutation) for mutation in chosen]


def plant(root: Path, dest: Path, mutation: Mutation) -> None:
    """Write a copy of ``root`` with ``mutation`` applied, for a student to find (``make bug BUG=<id>``)."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ExerciseError(f"{dest} already exists and is not empty")
    copy_tree(Path(root).resolve(), dest)
    (dest / "minipretrain/course/bugs.py").unlink(missing_ok=True)  # the answer key stays behind
    apply_mutation(dest, mutation)
