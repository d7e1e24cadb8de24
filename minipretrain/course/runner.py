"""Run pytest over several checkouts in one process: what ``make check`` and the course self-test use.

``python runner.py JOBS.json`` reads a list of jobs, each ``{"root", "tests", "report", "files"}``: write
``files`` (relative path -> text) into ``root``, run pytest on ``tests`` there, record every test's outcome in
``report`` (JSON), then put the files back as they were. The self-test grades some twenty versions of the
library; a fresh interpreter for each would spend most of its time importing NumPy, SciPy, hypothesis and
pytest again. So this process imports those once and forks a child per job: the child imports only the
job's own ``minipretrain`` (this file imports nothing from it, so no version leaks from one job into the
next). Where there is no ``fork`` (Windows), each job gets its own interpreter instead.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

HEAVY_IMPORTS = ("numpy", "scipy.special", "scipy.stats", "regex", "hypothesis")


class Recorder:
    """A pytest plugin: each test's outcome, and for a failure its first line or the grader's element."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []

    @staticmethod
    def detail(error: BaseException) -> str:
        if hasattr(error, "analytic") and hasattr(error, "numerical"):
            return (f"element {getattr(error, 'element', '?')}: analytic {error.analytic:.6g}, "
                    f"numerical {error.numerical:.6g}")
        message = str(error).strip().splitlines()
        return f"{type(error).__name__}: {message[0] if message else ''}"[:160]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or report.failed:
            entry = {"test": item.nodeid, "when": report.when, "passed": report.passed, "skipped": report.skipped}
            if report.failed and call.excinfo is not None:
                entry["detail"] = self.detail(call.excinfo.value)
            self.results.append(entry)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:  # an import error in a test file: say so instead of "no test ran"
            lines = str(report.longrepr).strip().splitlines()
            self.results.append({"test": report.nodeid, "when": "collect", "passed": False, "skipped": False,
                                 "detail": f"cannot collect {report.nodeid}: {lines[-1] if lines else ''}"[:160]})


def run_job(job: dict[str, Any]) -> int:
    """Run one job's tests in this process (a fresh child or interpreter) and write its report."""
    root = job["root"]
    os.chdir(root)
    sys.path[:0] = [p for p in dict.fromkeys([root, *job.get("path", [])])]
    recorder = Recorder()
    # --tb=no: the report takes its detail from the exception itself, and pytest's tracebacks (parsing the
    # source of every frame) were most of the time of a failing run.
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-p", "no:threadexception",
            "-o", "addopts=", "--no-header", "-rN", "--tb=no", "--continue-on-collection-errors", *job["tests"]]
    with open(os.devnull, "w") as quiet:
        sys.stdout = sys.stderr = quiet
        status = int(pytest.main(args, plugins=[recorder]))
    Path(job["report"]).write_text(json.dumps({"exitstatus": status, "results": recorder.results}))
    return status


def run_jobs(jobs: list[dict[str, Any]]) -> None:
    # Compiled files (and pytest's rewritten test modules) go to a scratch folder shared by the jobs, never
    # into the checkouts. Every file a job writes gets a fresh modification time (a later whole second), so
    # no compiled version of another job's text can be taken for it.
    stamp = int(time.time()) + 1
    for job in jobs:
        root = Path(job["root"])
        before = {name: (root / name).read_text(encoding="utf-8") for name in job.get("files", {})}

        def write(texts: dict[str, str]) -> None:
            nonlocal stamp
            for name, text in texts.items():
                (root / name).write_text(text, encoding="utf-8")
                os.utime(root / name, (stamp, stamp))
            stamp += 1

        write(job.get("files", {}))
        try:
            if hasattr(os, "fork"):
                pid = os.fork()
                if pid == 0:  # the child: never return into the parent's loop
                    code = 1
                    try:
                        code = run_job(job)
                    finally:
                        os._exit(code)
                os.waitpid(pid, 0)
            else:  # pragma: no cover - Windows
                single = Path(job["report"]).with_suffix(".job.json")
                single.write_text(json.dumps([job]))
                subprocess.run([sys.executable, __file__, "--inline", str(single)], check=False)
        finally:
            write(before)


def main(argv: list[str]) -> int:
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run as a script: the course folder's modules must not shadow anything
    inline = argv[:1] == ["--inline"]
    jobs = json.loads(Path(argv[-1]).read_text())
    if inline:  # pragma: no cover - the no-fork path
        sys.dont_write_bytecode = True
        return run_job(jobs[0])
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny arrays; and forking a threaded BLAS is unsafe
    if len(jobs) > 1:  # worth it only when several children share them
        for name in HEAVY_IMPORTS:
            try:
                __import__(name)
            except ImportError:
                pass
    if not any(job.get("files") for job in jobs):  # nothing is rewritten: Python's own __pycache__ will do
        run_jobs(jobs)
        return 0
    with tempfile.TemporaryDirectory(prefix="minipretrain-pycache-") as pycache:
        sys.pycache_prefix, sys.dont_write_bytecode = pycache, False
        run_jobs(jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
