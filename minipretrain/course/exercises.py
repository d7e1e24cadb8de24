"""``make exercises`` and ``make check``: blank the marked blocks into a student copy, and grade them.

A block is the lines strictly between ``# >>> exercise: <id>`` and ``# <<< exercise`` (same indentation). In
the copy its body becomes ``raise NotImplementedError("<id> — lesson N; make check EX=<id>")``; the marker
lines stay, so the student sees where to write. The copy is a fresh git repository (one commit, no history),
and writing it fails if any solution line survives anywhere in it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .catalog import EXERCISES, Exercise

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# >>> exercise: (?P<id>[a-z0-9][a-z0-9-]*)\s*$")
END = re.compile(r"^[ \t]*# <<< exercise\s*$")
# Files that hold solution text on purpose and stay out of a student copy (the seeded bugs quote the code).
WITHHELD = ("minipretrain/course/bugs.py",)
SKIPPED_PARTS = {".git", "__pycache__", ".pytest_cache", ".hypothesis", ".venv", ".ipynb_checkpoints"}
HOME = Path(__file__).resolve().parents[2]  # the checkout this module was imported from


class ExerciseError(ValueError):
    """The markers and the table disagree, or a copy would leak a solution."""


@dataclass(frozen=True)
class Block:
    id: str
    file: str          # relative to the root
    begin: int         # 0-based line index of the opening marker
    end: int           # 0-based line index of the closing marker
    indent: str
    body: tuple[str, ...]


def find_blocks(root: Path, files: Iterable[str]) -> list[Block]:
    """Every marked block under ``root`` among ``files`` (relative paths), checking that markers pair up."""
    blocks = []
    for name in files:
        if not name.endswith(".py"):
            continue
        lines = (root / name).read_text(encoding="utf-8").splitlines()
        opened: tuple[int, re.Match[str]] | None = None
        for number, line in enumerate(lines):
            begin, end = BEGIN.match(line), END.match(line)
            if begin and opened:
                raise ExerciseError(f"{name}:{number + 1}: exercise {begin['id']!r} opens inside "
                                    f"{opened[1]['id']!r}; close the first with '# <<< exercise'")
            if begin:
                opened = (number, begin)
            elif end:
                if not opened:
                    raise ExerciseError(f"{name}:{number + 1}: '# <<< exercise' with no opening marker above it")
                start, match = opened
                body = tuple(lines[start + 1:number])
                if not any(line.strip() for line in body):
                    raise ExerciseError(f"{name}:{start + 1}: exercise {match['id']!r} has an empty block")
                blocks.append(Block(match["id"], name, start, number, match["indent"], body))
                opened = None
        if opened:
            raise ExerciseError(f"{name}:{opened[0] + 1}: exercise {opened[1]['id']!r} is never closed "
                                "('# <<< exercise')")
    return blocks


def source_files(root: Path) -> list[str]:
    """The files a fresh clone would have: git's view when ``root`` is a repository, else a walk."""
    if (root / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=root, check=True, capture_output=True).stdout.decode().split("\0")
        return sorted(name for name in listed if name and (root / name).is_file())
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")
                  if path.is_file() and not SKIPPED_PARTS & set(path.relative_to(root).parts))


def library_files(files: Iterable[str]) -> list[str]:
    """Where markers count: the Python sources outside tests/ (tests may quote markers, as the tool's own do)."""
    return [name for name in files if name.endswith(".py") and not name.startswith("tests/")]


def match_table(blocks: Sequence[Block], exercises: Sequence[Exercise]) -> dict[str, list[Block]]:
    """Group the blocks by exercise and pair them with the table; anything unpaired or unknown is an error."""
    by_id: dict[str, list[Block]] = {}
    for block in blocks:
        by_id.setdefault(block.id, []).append(block)
    ids = [e.id for e in exercises]
    if duplicated := sorted({i for i in ids if ids.count(i) > 1}):
        raise ExerciseError(f"listed twice in the table (minipretrain/course/catalog.py): {duplicated}")
    listed = set(ids)
    if unlisted := sorted(set(by_id) - listed):
        raise ExerciseError(f"marked in the source but not in the table (minipretrain/course/catalog.py): {unlisted}")
    if unmarked := sorted(listed - set(by_id)):
        raise ExerciseError(f"in the table but not marked in the source: {unmarked}")
    for exercise in exercises:
        if missing := [p for p in exercise.prerequisites if p not in listed]:
            raise ExerciseError(f"exercise {exercise.id!r} needs unknown prerequisites {missing}")
    return by_id


def prerequisites_of(exercise_id: str, exercises: Sequence[Exercise]) -> set[str]:
    """Every exercise that ``exercise_id`` needs solved first, directly or through another one."""
    table = {e.id: e for e in exercises}
    needed: set[str] = set()
    pending = list(table[exercise_id].prerequisites)
    while pending:
        current = pending.pop()
        if current not in needed:
            needed.add(current)
            pending.extend(table[current].prerequisites)
    return needed


def blank_line(block: Block, lesson: int) -> str:
    return f'{block.indent}raise NotImplementedError("{block.id} — lesson {lesson}; make check EX={block.id}")'


def _solution_lines(block: Block, outside: set[str]) -> set[str]:
    # A line counts as solution text when it says something (not a bare return/pass/comment) and is not
    # boilerplate that occurs outside every block of the sources (those lines give nothing away). Anywhere in
    # the copy (a notebook, a doc, a test) such a line must not appear, even inside a longer line.
    lines = set()
    for line in block.body:
        text = line.strip()
        if len(text) >= 8 and not text.startswith("#") and text not in outside:
            lines.add(text)
    return lines


def write_student_copy(root: Path, dest: Path, exercises: Sequence[Exercise] = EXERCISES,
                       withheld: Sequence[str] = WITHHELD) -> list[Block]:
    """Write the student copy of ``root`` into ``dest`` (which must not exist or be empty) and commit it."""
    root, dest = Path(root).resolve(), Path(dest).resolve()
    if dest == root or root in dest.parents and not _ignored(root, dest):
        raise ExerciseError(f"{dest} is inside {root} but not git-ignored; pick an ignored folder (student/)")
    if dest.exists() and any(dest.iterdir()):
        raise ExerciseError(f"{dest} already exists and is not empty; remove it or choose EXERCISES_DIR=...")
    inside = os.path.relpath(dest, root)
    files = [f for f in source_files(root) if f not in withheld and not (f + "/").startswith(inside + "/")]
    blocks = find_blocks(root, library_files(files))
    match_table(blocks, exercises)
    lessons = {e.id: e.lesson for e in exercises}
    per_file = blocks_per_file(blocks)
    outside_text = _lines_outside_blocks(root, files, per_file)
    dest.mkdir(parents=True, exist_ok=True)
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in per_file:
            target.write_text(render(root, name, per_file[name], lessons), encoding="utf-8")
        else:
            shutil.copy2(root / name, target)
    _assert_no_solution_survives(dest, files, blocks, outside_text)
    git = ["git", "-c", "user.name=minipretrain course", "-c", "user.email=course@minipretrain.invalid",
           "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-q", "-m", f"minipretrain student copy: {len(blocks)} exercises"],
                   cwd=dest, check=True)
    return blocks


def blocks_per_file(blocks: Iterable[Block]) -> dict[str, list[Block]]:
    per_file: dict[str, list[Block]] = {}
    for block in blocks:
        per_file.setdefault(block.file, []).append(block)
    return per_file


def render(root: Path, name: str, blocks: Sequence[Block], lessons: dict[str, int],
           solved: Iterable[str] = ()) -> str:
    """The text of ``name`` in a student copy: every block blanked except those of the ``solved`` exercises."""
    solved = set(solved)
    lines = (root / name).read_text(encoding="utf-8").splitlines()
    for block in sorted(blocks, key=lambda b: b.begin, reverse=True):
        if block.id not in solved:
            lines[block.begin + 1:block.end] = [blank_line(block, lessons[block.id])]
    return "\n".join(lines) + "\n"


def _lines_outside_blocks(root: Path, files: Sequence[str], per_file: dict[str, list[Block]]) -> set[str]:
    """Every stripped line of the Python sources outside the blocks: boilerplate such as ``x, = ctx.saved``."""
    outside = set()
    for name in files:
        if not name.endswith(".py"):
            continue
        lines = (root / name).read_text(encoding="utf-8").splitlines()
        hidden = {i for b in per_file.get(name, ()) for i in range(b.begin + 1, b.end)}
        outside |= {line.strip() for i, line in enumerate(lines) if i not in hidden}
    return outside


def _ignored(root: Path, path: Path) -> bool:
    if not (root / ".git").exists():
        return True
    # A pattern such as "student/" matches directories only, so ask about a probe file inside the folder.
    probe = os.path.relpath(path / "probe", root)
    return subprocess.run(["git", "check-ignore", "-q", "--no-index", probe], cwd=root).returncode == 0


def _assert_no_solution_survives(dest: Path, files: Sequence[str], blocks: Iterable[Block],
                                 outside: set[str]) -> None:
    secrets = {line: block.id for block in blocks for line in _solution_lines(block, outside)}
    if not secrets:
        return
    for name in files:
        try:
            text = (dest / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for secret, exercise_id in secrets.items():
            if secret in text:
                raise ExerciseError(f"solution text of {exercise_id!r} survives in {name}: {secret!r}")


@dataclass(frozen=True)
class CheckResult:
    id: str
    lesson: int
    passed: bool
    detail: str

    def row(self) -> str:
        return f"{self.id:<28} {self.lesson:>6}  {'pass' if self.passed else 'FAIL':<5} {self.detail}"


RUNNER = Path(__file__).with_name("runner.py")


@dataclass(frozen=True)
class Grading:
    """One grading run: ``tests`` in ``root``, with ``files`` (relative path -> text) written in for its duration."""

    root: Path
    tests: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)


def _grading_runs(runs: Sequence[Grading], python: str = sys.executable) -> list[dict]:
    """Every run in one helper process (runner.py), each in a fresh child that imports its root's own code."""
    with tempfile.TemporaryDirectory() as scratch:
        jobs = [{"root": str(run.root), "tests": list(run.tests), "files": run.files, "path": [str(HOME)],
                 "report": str(Path(scratch) / f"report-{i}.json")} for i, run in enumerate(runs)]
        (Path(scratch) / "jobs.json").write_text(json.dumps(jobs))
        completed = subprocess.run([python, str(RUNNER), str(Path(scratch) / "jobs.json")], capture_output=True,
                                   text=True)
        reports = []
        for job in jobs:
            path = Path(job["report"])
            if path.exists():
                reports.append(json.loads(path.read_text()))
            else:
                tail = (completed.stdout + completed.stderr).strip().splitlines()[-1:] or ["no output"]
                reports.append({"exitstatus": completed.returncode, "results": [], "error": tail[0]})
        return reports


def _belongs(nodeid: str, spec: str) -> bool:
    return nodeid == spec or nodeid.startswith(spec + "::") or nodeid.startswith(spec + "[")


def _result(exercise: Exercise, report: dict) -> CheckResult:
    mine = [r for r in report["results"] if any(_belongs(r["test"], spec) for spec in exercise.tests)]
    failures = [r for r in mine if not r["passed"] and not r["skipped"]]
    ran = [r for r in mine if r["when"] == "call" and not r["skipped"]]
    if failures:
        first = failures[0]
        return CheckResult(exercise.id, exercise.lesson, False, f"{first['test']}: {first.get('detail', '')}")
    if not ran:
        collection = [r["detail"] for r in report["results"] if r["when"] == "collect"]
        why = (collection[:1] or [report.get("error") or f"pytest exit status {report['exitstatus']}"])[0]
        return CheckResult(exercise.id, exercise.lesson, False, f"no grading test ran ({why})")
    return CheckResult(exercise.id, exercise.lesson, True, f"{len(ran)} tests")


def run_checks(root: Path = HOME, exercises: Sequence[Exercise] = EXERCISES,
               only: str | Sequence[str] | None = None) -> list[CheckResult]:
    """Grade every exercise (or only the one or ones named), in table order, in one pytest run over their tests."""
    wanted = None if only is None else {only} if isinstance(only, str) else set(only)
    if wanted is not None and (unknown := sorted(wanted - {e.id for e in exercises})):
        raise ExerciseError(f"no exercise {unknown[0]!r}; the exercises are: {[e.id for e in exercises]}")
    chosen = [e for e in exercises if wanted is None or e.id in wanted]
    if not chosen:
        return []
    (report,) = _grading_runs([Grading(Path(root).resolve(), _tests_of(chosen))])
    return [_result(exercise, report) for exercise in chosen]


def _tests_of(exercises: Sequence[Exercise]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(test for exercise in exercises for test in exercise.tests))


def self_test(root: Path = HOME, exercises: Sequence[Exercise] = EXERCISES) -> list[str]:
    """What CI proves: in a fresh copy every check fails, in ``root`` every one passes, and putting one
    exercise's blocks back (with those of its prerequisites) makes exactly those checks pass; an exercise with
    prerequisites still fails when they stay blank. Returns the problems found (empty when all holds).

    All the gradings run in one helper process (runner.py), which forks a child for each version."""
    root = Path(root).resolve()
    tests = _tests_of(exercises)
    lessons = {e.id: e.lesson for e in exercises}
    with tempfile.TemporaryDirectory(prefix="minipretrain-selftest-") as scratch:
        copy = Path(scratch) / "student"
        per_file = blocks_per_file(write_student_copy(root, copy, exercises))
        trials = []  # (what is solved, which checks must then pass)
        for exercise in exercises:
            needed = prerequisites_of(exercise.id, exercises)
            trials.append(({exercise.id} | needed, {exercise.id} | needed))
            if needed:
                trials.append(({exercise.id}, set()))
        runs = [Grading(root, tests), Grading(copy, tests)]
        for solved, _ in trials:
            runs.append(Grading(copy, tests, {name: render(root, name, blocks, lessons, solved)
                                              for name, blocks in per_file.items()
                                              if any(b.id in solved for b in blocks)}))
        original, blank, *variants = [[_result(e, report) for e in exercises] for report in _grading_runs(runs)]
    problems = [f"{r.id}: fails with the solutions in place: {r.detail}" for r in original if not r.passed]
    problems += [f"{r.id}: passes in the student copy" for r in blank if r.passed]
    for (solved, expected), results in zip(trials, variants):
        passing = {r.id for r in results if r.passed}
        if passing != expected:
            problems.append(f"{'+'.join(sorted(solved))}: with the blocks of {sorted(solved)} back, these checks "
                            f"pass: {sorted(passing)} (expected {sorted(expected)})")
    return problems


def format_table(results: Sequence[CheckResult]) -> str:
    header = f"{'exercise':<28} {'lesson':>6}  {'':<5} detail"
    passed = sum(r.passed for r in results)
    return "\n".join([header, *(r.row() for r in results), f"{passed}/{len(results)} passed"])


def check(*exercise_ids: str, root: Path = HOME, exercises: Sequence[Exercise] = EXERCISES) -> list[CheckResult]:
    """The lessons' last cell: grade the lesson's exercises (in the checkout this module came from, the
    original or a student copy) and print their rows. It never raises on a failure: the table says what to fix."""
    results = run_checks(root, exercises, only=exercise_ids)
    print(format_table(results))
    return results
