"""The one table of exercises.

An exercise is a block of the library's own source between ``# >>> exercise: <id>`` and ``# <<< exercise``.
``make exercises`` blanks every block listed here; ``make check`` runs each one's grading tests. A block in the
source that is not listed here (or an entry here without its block) is an error, so the two cannot drift.

The blocks are marked once the house layout of issue 9 has settled (the ops move beside their references);
until then the table is empty and the tool is proven on a synthetic tree (tests/test_course_exercises.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Exercise:
    """One blank in the student copy: where it is taught, what grades it, and what must be solved first."""

    id: str
    lesson: int
    tests: tuple[str, ...]                  # pytest node ids, relative to the repository root
    prerequisites: tuple[str, ...] = field(default=())


EXERCISES: tuple[Exercise, ...] = ()
