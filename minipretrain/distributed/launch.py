"""Start ``python -m minipretrain ...`` on every core: under ``mpiexec -n N`` when MPI can start, else one process.

    python -m minipretrain.distributed.launch --nproc 4 -- train --config configs/baby_gpt_char.toml
    python -m minipretrain.distributed.launch --mpiexec-args "-hosts node1,node2" --nproc 8 -- train ...

``make train-clm`` runs this with ``--nproc $(NPROC)`` (default: the cores this process may use). With
``--nproc 1``, or when ``mpiexec`` or mpi4py is missing, it says why in one line and runs one process: the
run is the same, only slower. One BLAS thread per rank is the Makefile's default (``OPENBLAS_NUM_THREADS=1``);
``mpiexec`` passes the environment on to every rank.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .communicator import INSTALL_HINT


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def find_mpiexec(python: str = sys.executable) -> str | None:
    """``mpiexec`` beside ``python`` (a virtual environment with the mpich wheel) or on PATH."""
    beside = Path(python).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mpiexec")


def mpi4py_loads(python: str = sys.executable) -> bool:
    """Whether ``python`` can import mpi4py and load its MPI library (checked in a child process, so this
    process does not initialise MPI before it hands over to ``mpiexec``)."""
    probe = subprocess.run([python, "-c", "from mpi4py import MPI"], capture_output=True, timeout=60)
    return probe.returncode == 0


def launch_command(arguments: Sequence[str], nproc: int, python: str = sys.executable,
                   mpiexec: str | None = None, mpi_ok: bool | None = None,
                   mpiexec_args: Sequence[str] = ()) -> tuple[list[str], str | None]:
    """The command that runs ``python -m minipretrain <arguments>``, and why it is one process (None if not).

    ``mpiexec`` and ``mpi_ok`` default to what this machine has (:func:`find_mpiexec`, :func:`mpi4py_loads`).
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    single = [python, "-m", "minipretrain", *arguments]
    if nproc == 1:
        return single, "NPROC=1"
    mpiexec = find_mpiexec(python) if mpiexec is None else mpiexec
    if not mpiexec:
        return single, f"mpiexec was not found ({INSTALL_HINT})"
    if not (mpi4py_loads(python) if mpi_ok is None else mpi_ok):
        return single, f"mpi4py cannot load an MPI library ({INSTALL_HINT})"
    return [mpiexec, *mpiexec_args, "-n", str(nproc), *single], None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minipretrain.distributed.launch",
                                     description="run a minipretrain command on N ranks under mpiexec")
    parser.add_argument("--nproc", type=int, default=available_cores(), help="ranks (default: available cores)")
    parser.add_argument("--mpiexec-args", default="", help='extra mpiexec options, e.g. "-hosts a,b"')
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="-- then the minipretrain command")
    args = parser.parse_args(argv)
    arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
    command, reason = launch_command(arguments, args.nproc, mpiexec_args=shlex.split(args.mpiexec_args))
    if reason is None:
        print(f"minipretrain: {args.nproc} ranks: {shlex.join(command)}", flush=True)
    else:
        print(f"minipretrain: one process ({reason})", flush=True)
    os.execv(command[0], command)  # become the run: Ctrl-C and the exit status go straight to it
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
