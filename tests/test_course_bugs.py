"""make bugs: the seeded-bug runner on a synthetic tree, and the real mutations still apply to the code."""
from __future__ import annotations

from pathlib import Path

import pytest

from course_tree import make_tree

bugs = pytest.importorskip("minipretrain.course.bugs", reason="the answer key is withheld from student copies")
Mutation, MUTATIONS = bugs.Mutation, bugs.MUTATIONS
from minipretrain.course.exercises import ExerciseError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


def test_the_bug_runner_applies_one_mutation_to_a_copy_and_reports_whether_it_was_caught(tree: Path) -> None:
    caught = Mutation("dropped-grad", "fakepkg/ops.py", "return (2.0 * x * grad,)", "return (2.0 * x,)",
                      ("tests/test_fake.py::test_square",))
    harmless = Mutation("same-value", "fakepkg/ops.py", "return (2.0 * x * grad,)", "return (x * 2.0 * grad,)",
                        ("tests/test_fake.py::test_square",))
    results = bugs.verify_mutations(tree, (caught, harmless))
    assert [(r.id, r.caught) for r in results] == [("dropped-grad", True), ("same-value", False)]
    assert "2.0 * x * grad" in (tree / "fakepkg/ops.py").read_text()  # the original is never touched
    with pytest.raises(ExerciseError, match="occurs 0 times"):
        bugs.apply_mutation(tree, Mutation("gone", "fakepkg/ops.py", "no such line", "x", ()))


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.id for m in MUTATIONS])
def test_every_real_seeded_bug_still_applies(mutation: Mutation) -> None:
    text = (REPO / mutation.file).read_text()
    assert text.count(mutation.original) == 1, f"{mutation.file} changed; update minipretrain/course/bugs.py"
    assert all((REPO / test.split("::")[0]).is_file() for test in mutation.tests)
