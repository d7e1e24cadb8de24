"""Figures: matplotlib on the Agg backend (no display needed), small PNGs, mean curves with t-interval bands."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..distributed.communicator import is_main_process
from .statistics import t_interval


def new_figure(rows: int = 1, cols: int = 1, width: float = 6.0, height: float = 4.0) -> tuple[Any, Any]:
    """A matplotlib figure on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Save ``fig`` as a small PNG (on rank 0 alone under mpiexec) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def band(ax: Any, x: Sequence[float], runs: Sequence[Sequence[float]], label: str, color: Any = None) -> None:
    """Plot the mean of ``runs`` (one list per seed, same x) with a shaded 95% t-interval band."""
    matrix = np.asarray(runs, dtype=np.float64)
    summaries = [t_interval(matrix[:, j]) for j in range(matrix.shape[1])]
    mean = np.array([s["mean"] for s in summaries])
    line = ax.plot(x, mean, label=label, color=color)[0]
    low = np.array([s["low"] for s in summaries])
    high = np.array([s["high"] for s in summaries])
    if np.isfinite(low).all():
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)


_LINE_STYLES = {"witten-bell": ":", "kneser-ney": "-.", "bz2": "--", "lzma": "--"}


def yardstick_lines(ax: Any, yardsticks: Sequence[dict[str, Any]], names: Sequence[str] | None = None) -> None:
    """Horizontal lines for the yardsticks called ``names`` (default: all; rows of
    :func:`~minipretrain.evaluation.yardsticks.yardstick_table`), labelled with their loss, in greys."""
    chosen = [y for y in yardsticks if names is None or y["name"] in names]
    colors = _greys(len(chosen))
    for color, y in zip(colors, chosen):
        style = next((s for key, s in _LINE_STYLES.items() if y["name"].startswith(key)), ":")
        ax.axhline(y["nats_per_token"], color=color, linestyle=style, linewidth=1,
                   label=f"{y['name']} {y['nats_per_token']:.3f}")


def _greys(count: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["Greys"]
    return [cmap(0.45 + 0.5 * i / max(count - 1, 1)) for i in range(count)]
