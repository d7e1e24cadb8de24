"""What an experiment leaves behind: ``results.json`` (every number, plus what is needed to reproduce and
judge it: config, seeds, versions, git commit, wall time) and its markdown page."""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..distributed.communicator import is_main_process
from ..files import json_default


def environment() -> dict[str, Any]:
    """Versions and machine facts that a reader needs to judge the numbers."""
    import matplotlib
    import scipy

    info: dict[str, Any] = {
        "python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
    }
    try:
        from importlib.metadata import version

        info["minipretrain"] = version("minipretrain")
    except Exception:  # not installed as a distribution: leave it out
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent)
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                   text=True, timeout=5, cwd=Path(__file__).resolve().parent)
            info["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def write_results(out_dir: str | Path, experiment: str, scale: str, config: dict[str, Any], seeds: Sequence[int],
                  results: dict[str, Any], wall_time_s: float) -> Path:
    """Write ``out_dir/results.json``: every number plus what is needed to reproduce and judge it (on rank 0
    alone when an MPI launcher started several ranks; the others hold the same results)."""
    out = Path(out_dir)
    path = out / "results.json"
    if not is_main_process():
        return path
    out.mkdir(parents=True, exist_ok=True)
    payload = {"experiment": experiment, "scale": scale, "seeds": list(seeds), "wall_time_s": wall_time_s,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment(), "config": config,
               "results": results}
    path.write_text(dumps_compact(payload) + "\n", encoding="utf-8")
    return path


def publish(out_dir: str | Path, experiment: str, scale: str, config: dict[str, Any], seeds: Sequence[int],
            results: dict[str, Any], wall_time_s: float, page: Callable[..., str]) -> Path:
    """What every experiment ends with: ``results.json`` and the page ``page(results, config, seeds, wall)``."""
    path = write_results(out_dir, experiment, scale, config, seeds, results, wall_time_s)
    write_page(out_dir, page(results, config, seeds, wall_time_s))
    return path


# Line breaks never occur inside JSON strings (they are escaped), so joining only what follows a newline
# changes the layout and never a value, even when a string contains brackets or runs of spaces.
_FLAT_CONTAINER = re.compile(r"([\[{])\n\s*([^\[\]{}]*?)\n\s*([\]}])")


def dumps_compact(payload: Any) -> str:
    """JSON with nested structure indented but each flat list or record (no containers inside) on one line.

    Per-step curves (a record of numbers per step) make up most of a results file; one value per line made
    it several times larger for no reader's benefit. The values themselves are unchanged.
    """
    text = json.dumps(payload, indent=1, default=json_default, allow_nan=True)
    return _FLAT_CONTAINER.sub(lambda m: m.group(1) + re.sub(r"\n\s*", " ", m.group(2)) + m.group(3), text)


def write_page(out_dir: str | Path, text: str) -> Path:
    """Write the experiment's markdown page ``out_dir/README.md``."""
    path = Path(out_dir) / "README.md"
    if is_main_process():  # rank 0 alone under mpiexec
        path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return path
