"""The exercise tool (make exercises / make check), proven on a synthetic tree made here.

The fake package has two ops whose backward passes are marked as exercises, grading tests that use
``check_backward`` on raw arrays, and a table; the tests blank it, grade it and put blocks back.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minipretrain.autograd.function import Function
from minipretrain.course import catalog, exercises
from minipretrain.course.catalog import Exercise
from minipretrain.course.exercises import (ExerciseError, find_blocks, match_table, run_checks, self_test,
                                          write_student_copy)
from minipretrain.course.grading import AutogradInBackwardError, GradingError, check_backward

from course_tree import GRADING, OPS, git, make_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


def _table(root: Path) -> tuple[Exercise, ...]:
    namespace: dict = {}
    exec((root / "fakepkg/table.py").read_text(), namespace)
    return namespace["EXERCISES"]


def test_student_copy_blanks_every_block_and_is_a_fresh_repository(tree: Path) -> None:
    student = tree / "student"
    blocks = write_student_copy(tree, student, _table(tree))
    assert [b.id for b in blocks] == ["square-backward", "rowscale-backward"]
    text = (student / "fakepkg/ops.py").read_text()
    assert 'raise NotImplementedError("square-backward — lesson 1; make check EX=square-backward")' in text
    assert 'raise NotImplementedError("rowscale-backward — lesson 2; make check EX=rowscale-backward")' in text
    assert "2.0 * x * grad" not in text and "grad_w_rows" not in text
    assert text.count("# >>> exercise:") == 2 and text.count("# <<< exercise") == 2
    assert (student / "tests/test_fake.py").read_text() == GRADING
    assert git(student, "rev-list", "--count", "HEAD").strip() == "1"
    assert "origin" not in git(student, "log", "--format=%s")
    assert git(tree, "status", "--porcelain") == ""  # student/ is ignored; the original is untouched


def test_every_check_fails_in_the_copy_passes_in_the_original_and_one_block_back_passes_alone(tree: Path) -> None:
    table = _table(tree)
    original = run_checks(tree, table)
    assert [(r.id, r.passed) for r in original] == [("square-backward", True), ("rowscale-backward", True)]
    student = tree / "student"
    write_student_copy(tree, student, table)
    blank = run_checks(student, table)
    assert [r.passed for r in blank] == [False, False]
    assert all("NotImplementedError" in r.detail and f"make check EX={r.id}" in r.detail for r in blank)
    # The student solves RowScale only: exactly its check turns green.
    ops_text = (student / "fakepkg/ops.py").read_text()
    solved = ops_text.replace(
        '        raise NotImplementedError("rowscale-backward — lesson 2; make check EX=rowscale-backward")',
        "        x, w = ctx.saved\n        return grad * w, (grad * x).sum(axis=0)")
    (student / "fakepkg/ops.py").write_text(solved)
    assert [(r.id, r.passed) for r in run_checks(student, table)] == [("square-backward", False),
                                                                     ("rowscale-backward", True)]


def test_a_wrong_gradient_is_reported_with_its_element_and_both_values(tree: Path) -> None:
    ops_path = tree / "fakepkg/ops.py"
    ops_path.write_text(ops_path.read_text().replace("grad_w_rows = (grad * x).sum(axis=0)",
                                                     "grad_w_rows = (grad * x).sum(axis=0) * 1.5"))
    (result,) = run_checks(tree, _table(tree), only="rowscale-backward")
    assert not result.passed
    assert "element (" in result.detail and "analytic" in result.detail and "numerical" in result.detail


class _Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return (3.0 * x * x * grad,)


class _CubeViaAutograd(_Cube):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        from minipretrain.ops import elementwise
        return (elementwise.Mul.apply(3.0 * x * x, grad).data,)


class _CubeWrong(_Cube):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return (3.0 * x * x,)  # drops the upstream gradient


def test_check_backward_passes_a_right_gradient_and_locates_a_wrong_one() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3))
    assert check_backward(_Cube, x) < 1e-7
    with pytest.raises(GradingError) as caught:
        check_backward(_CubeWrong, x)
    error = caught.value
    assert error.input_index == 0 and len(error.element) == 2
    assert error.analytic == pytest.approx(3 * x[error.element] ** 2)
    assert error.analytic != pytest.approx(error.numerical)


def test_a_backward_that_calls_autograd_is_refused_and_apply_is_restored() -> None:
    x = np.random.default_rng(0).standard_normal(4)
    with pytest.raises(AutogradInBackwardError, match="_CubeViaAutograd.backward called Mul.apply"):
        check_backward(_CubeViaAutograd, x)
    assert Function.__dict__["apply"].__func__.__name__ == "apply"


def test_a_solution_line_quoted_elsewhere_stops_the_copy(tree: Path) -> None:
    (tree / "NOTES.md").write_text("The answer is `grad_w_rows = (grad * x).sum(axis=0)`\n")
    with pytest.raises(ExerciseError, match="grad_w_rows = .* survives in NOTES.md|survives"):
        write_student_copy(tree, tree / "student", _table(tree))


def test_table_and_markers_must_agree(tree: Path) -> None:
    blocks = find_blocks(tree, ["fakepkg/ops.py"])
    table = _table(tree)
    with pytest.raises(ExerciseError, match="not in the table"):
        match_table(blocks, table[:1])
    with pytest.raises(ExerciseError, match="not marked in the source"):
        match_table(blocks[:1], table)
    with pytest.raises(ExerciseError, match="unknown prerequisites"):
        match_table(blocks, (table[0], Exercise("rowscale-backward", 2, (), ("nope",))))
    (tree / "fakepkg/ops.py").write_text(OPS.replace("        # <<< exercise\n\n\nclass RowScale", "\n\nclass RowScale"))
    with pytest.raises(ExerciseError, match="opens inside 'square-backward'"):
        find_blocks(tree, ["fakepkg/ops.py"])


def test_a_copy_inside_the_checkout_must_be_ignored(tree: Path) -> None:
    with pytest.raises(ExerciseError, match="not git-ignored"):
        write_student_copy(tree, tree / "fakepkg" / "copy", _table(tree))


def test_the_command_line_grades_and_exits_nonzero_on_a_failure(tree: Path) -> None:
    command = [sys.executable, "-m", "minipretrain.course", "--root", str(tree), "--table", "fakepkg.table:EXERCISES"]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tree)}
    made = subprocess.run(command + ["exercises", "--dest", str(tree / "student")], env=env, capture_output=True,
                          text=True)
    assert made.returncode == 0, made.stderr
    student = [sys.executable, "-m", "minipretrain.course", "--root", str(tree / "student"), "--table",
               "fakepkg.table:EXERCISES", "check", "--ex", "square-backward"]
    graded = subprocess.run(student, env=env, capture_output=True, text=True)
    assert graded.returncode == 1
    assert "square-backward" in graded.stdout and "FAIL" in graded.stdout and "0/1 passed" in graded.stdout


def test_the_self_test_passes_on_a_sound_tree_and_names_a_check_that_cannot_fail(tree: Path) -> None:
    table = _table(tree)
    assert self_test(tree, table) == []
    # A grading test that passes whatever the student writes is exactly what the self-test is for.
    (tree / "tests/test_fake.py").write_text(GRADING.replace(
        "    check_backward(Square, np.random.default_rng(0).standard_normal((3, 4)))", "    pass"))
    problems = self_test(tree, table)
    assert any(p.startswith("square-backward: passes in the student copy") for p in problems), problems


def test_the_self_test_names_a_prerequisite_the_grading_tests_do_not_need(tree: Path) -> None:
    square, rowscale = _table(tree)
    claimed = (square, Exercise(rowscale.id, rowscale.lesson, rowscale.tests, ("square-backward",)))
    assert self_test(tree, claimed) == [
        "rowscale-backward: with the blocks of ['rowscale-backward'] back, these checks pass: "
        "['rowscale-backward'] (expected [])"]


def test_a_real_student_copy_leaves_the_answer_key_behind(tmp_path: Path) -> None:
    blocks = write_student_copy(REPO, tmp_path / "student")
    assert {b.id for b in blocks} == {e.id for e in catalog.EXERCISES}
    assert not (tmp_path / "student/minipretrain/course/bugs.py").exists()
    assert (tmp_path / "student/minipretrain/course/exercises.py").is_file()
    assert git(tmp_path / "student", "rev-list", "--count", "HEAD").strip() == "1"


def test_the_real_table_matches_the_real_markers() -> None:
    files = exercises.source_files(REPO)
    match_table(find_blocks(REPO, exercises.library_files(files)), catalog.EXERCISES)


def test_the_course_self_test_passes_on_the_real_library() -> None:
    """CI's proof (make check-selftest): in a student copy every check fails, here every one passes, and each
    exercise's blocks put back (with its prerequisites') make exactly those checks pass."""
    assert self_test(REPO) == []
