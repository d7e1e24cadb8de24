"""``experiment`` command: ``python -m minipretrain experiment NAME [--scale cpu|gpu|smoke] [--out DIR] [--seeds N]``.

NAME is one of ``clm-vs-mlm``, ``scaling``, ``data-quality``, ``learning-curves``, ``next-token`` or ``all``.
Each writes its page (README.md), plots (PNG) and results.json into ``docs/results/<name>/`` unless ``--out``
says otherwise (with ``all``, ``--out`` is the parent folder).

Under ``mpiexec -n N`` (``make exp-*`` on every core) each training is data-parallel over the N ranks; rank 0
alone prints and writes pages, plots and results, and an error on any rank ends them all.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import time
from pathlib import Path

from .runner import RESULTS_ROOT, SCALES

#: command-line name -> (module, default number of seeds)
EXPERIMENTS: dict[str, tuple[str, int]] = {
    "clm-vs-mlm": ("minipretrain.experiments.clm_vs_mlm", 3),
    "scaling": ("minipretrain.experiments.scaling", 3),
    "data-quality": ("minipretrain.experiments.data_quality", 3),
    "learning-curves": ("minipretrain.experiments.learning_curves", 3),
    "next-token": ("minipretrain.experiments.next_token", 5),
}


def run_experiment(name: str, scale: str = "cpu", out: str | Path | None = None, seeds: int | None = None) -> dict:
    """Run one experiment by its command-line name; returns its results dict."""
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    module_name, default_seeds = EXPERIMENTS[name]
    module = importlib.import_module(module_name)
    out_dir = Path(out) if out is not None else RESULTS_ROOT / module.NAME
    return module.run(scale=scale, out_dir=out_dir, seeds=list(range(seeds or default_seeds)))


def _run(args: argparse.Namespace) -> int:
    from ..distributed import end_every_rank_on_error, init_communicator

    comm = init_communicator("auto")
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet) if not comm.is_main else \
            contextlib.nullcontext():
        return end_every_rank_on_error(comm, lambda: _run_all(args))


def _run_all(args: argparse.Namespace) -> int:
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    for name in names:
        started = time.perf_counter()
        out = args.out
        if out is not None and args.name == "all":
            out = Path(out) / importlib.import_module(EXPERIMENTS[name][0]).NAME
        run_experiment(name, args.scale, out, args.seeds)
        print(f"experiment {name} ({args.scale}) finished in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``experiment NAME [--scale] [--out] [--seeds]`` on the main parser's subparsers."""
    parser = subparsers.add_parser("experiment", help="run one of the research experiments",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=[*EXPERIMENTS, "all"], help="which experiment")
    parser.add_argument("--scale", choices=SCALES, default="cpu",
                        help="cpu: sized for a 2-core CPU (default); smoke: seconds, for tests; gpu: the original "
                             "description's scale")
    parser.add_argument("--out", default=None, help="output folder (default docs/results/<name>)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds 0..N-1 (default 3, next-token 5; scaling: per size on the real corpus, the Markov "
                             "sweep always uses the first)")
    parser.set_defaults(func=_run)
