"""The synthetic source tree the course tool's tests run on: a fake package, its grading tests, its table."""
from __future__ import annotations

import subprocess
from pathlib import Path

OPS = '''\
"""Two ops for the course tool's tests."""
import numpy as np

from minipretrain.autograd.function import Function


class Square(Function):
    """y = x²;  dL/dx = 2x · dL/dy"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        # >>> exercise: square-backward
        (x,) = ctx.saved
        return (2.0 * x * grad,)
        # <<< exercise


class RowScale(Function):
    """y = x · w (w broadcast along rows);  dL/dx = w · dL/dy,  dL/dw = Σ_rows x · dL/dy"""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, grad):
        # >>> exercise: rowscale-backward
        x, w = ctx.saved
        grad_w_rows = (grad * x).sum(axis=0)
        return grad * w, grad_w_rows
        # <<< exercise
'''

TABLE = '''\
from minipretrain.course.catalog import Exercise

EXERCISES = (
    Exercise("square-backward", 1, ("tests/test_fake.py::test_square",)),
    Exercise("rowscale-backward", 2, ("tests/test_fake.py::test_rowscale",)),
)
'''

GRADING = '''\
import numpy as np

from fakepkg.ops import RowScale, Square
from minipretrain.course.grading import check_backward


def test_square():
    check_backward(Square, np.random.default_rng(0).standard_normal((3, 4)))


def test_rowscale():
    rng = np.random.default_rng(1)
    check_backward(RowScale, rng.standard_normal((3, 4)), rng.standard_normal(4))
'''


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=tree,
                          check=True, capture_output=True, text=True).stdout


def make_tree(tmp_path: Path) -> Path:
    """A git repository with a fake package whose two backward passes are marked exercises."""
    root = tmp_path / "origin"
    for name, text in {"fakepkg/__init__.py": "", "fakepkg/ops.py": OPS, "fakepkg/table.py": TABLE,
                       "tests/test_fake.py": GRADING, ".gitignore": "student/\n__pycache__/\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "origin")
    return root
