"""A pytest plugin for ``make check``: records, per test, whether it passed and the first failure's detail.

Loaded with ``-p minipretrain.course.grading_plugin``; writes JSON to ``$MINIPRETRAIN_CHECK_REPORT``.
"""
from __future__ import annotations

import json
import os
from typing import Any

import pytest

_RESULTS: list[dict[str, Any]] = []


def _detail(error: BaseException) -> str:
    if hasattr(error, "analytic") and hasattr(error, "numerical"):
        return (f"element {getattr(error, 'element', '?')}: analytic {error.analytic:.6g}, "
                f"numerical {error.numerical:.6g}")
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}"[:160]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or report.failed:
        entry = {"test": item.nodeid, "when": report.when, "passed": report.passed, "skipped": report.skipped}
        if report.failed and call.excinfo is not None:
            entry["detail"] = _detail(call.excinfo.value)
        _RESULTS.append(entry)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("MINIPRETRAIN_CHECK_REPORT")
    if path:
        with open(path, "w") as handle:
            json.dump({"exitstatus": int(exitstatus), "results": _RESULTS}, handle)
