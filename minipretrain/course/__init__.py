"""The course tools: the exercise table, ``make exercises`` / ``make check``, and ``make bugs`` (in bugs.py)."""
from .catalog import EXERCISES, Exercise
from .exercises import CheckResult, ExerciseError, check, run_checks, write_student_copy

__all__ = ["EXERCISES", "CheckResult", "Exercise", "ExerciseError", "check", "run_checks", "write_student_copy"]
