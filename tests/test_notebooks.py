"""The lessons in notebooks/ run top to bottom without error (their cells contain their own asserts), from
notebooks/ itself as a student's Jupyter would, and leave no file behind there or anywhere in the repository."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parent.parent
LESSONS = REPO / "notebooks"
NOTEBOOKS = sorted(LESSONS.glob("*.ipynb"))


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _untracked(repo: Path) -> set[str]:
    """Untracked files git would offer to add (ignored ones excluded), or an empty set outside a git checkout."""
    listed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                            capture_output=True, text=True)
    return {line[3:] for line in listed.stdout.splitlines() if line.startswith("??")} if listed.returncode == 0 else set()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_leaves_nothing_behind(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIPRETRAIN_DATA_DIR", str(tmp_path / "data"))
    # Tests use data they generate: a lesson that can read a real corpus through the mirror takes its
    # generated stand-in here (a student's Jupyter, with the mirror set, reads the real one).
    monkeypatch.delenv("MINIPRETRAIN_DATA_MIRROR", raising=False)
    before_lessons, before_repo = _files_under(LESSONS), _untracked(REPO)
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(LESSONS)}})
    client.execute()  # raises CellExecutionError, with the failing cell, on any error
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert _files_under(LESSONS) == before_lessons, f"{path.name} left files in notebooks/"
    assert _untracked(REPO) <= before_repo, f"{path.name} left files in the repository"


def test_the_lessons_are_numbered_in_course_order_and_listed_in_the_readme() -> None:
    numbers = [int(p.name.split("_")[0]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(NOTEBOOKS) + 1)), "lessons are numbered 01, 02, ... without gaps"
    readme = (REPO / "README.md").read_text()
    missing = [p.name for p in NOTEBOOKS if p.name not in readme]
    assert not missing, f"README's Lessons section does not list {missing}"


def test_lessons_are_committed_without_outputs() -> None:
    with_outputs = [p.name for p in NOTEBOOKS
                    if any(c.get("outputs") for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code")]
    assert not with_outputs, f"clear the outputs of {with_outputs} before committing"


def test_every_lesson_with_an_exercise_ends_by_checking_it() -> None:
    catalog = pytest.importorskip("minipretrain.course.catalog")
    by_lesson: dict[int, set[str]] = {}
    for exercise in catalog.EXERCISES:
        by_lesson.setdefault(exercise.lesson, set()).add(exercise.id)
    for number, ids in sorted(by_lesson.items()):
        (path,) = [p for p in NOTEBOOKS if int(p.name.split("_")[0]) == number]
        last = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"][-1].source
        assert "from minipretrain.course import check" in last and "check(" in last, f"{path.name} ends without check()"
        named = set(re.findall(r'"([a-z0-9-]+)"', last.split("check(", 1)[1]))
        assert named == ids, f"{path.name} checks {sorted(named)}, its exercises are {sorted(ids)}"
