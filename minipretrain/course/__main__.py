"""python -m minipretrain.course exercises|check|bugs — what `make exercises`, `make check` and `make bugs` run."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, Sequence

from .exercises import HOME, ExerciseError, format_table, run_checks, self_test, write_student_copy


def _load(spec: str | None, default: str, root: Path) -> Any:
    """``module:attribute`` (importable from ``root``), e.g. the table of a synthetic tree in a test."""
    module_name, attribute = (spec or default).split(":")
    sys.path.insert(0, str(root))
    return getattr(importlib.import_module(module_name), attribute)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minipretrain.course", description=__doc__)
    parser.add_argument("--root", type=Path, default=HOME, help="the checkout to read (default: this one)")
    parser.add_argument("--table", help="module:attribute of the exercise table, or for bugs of the mutation table "
                        "(default: the ones in minipretrain/course/)")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("exercises", help="write the student copy")
    make.add_argument("--dest", type=Path, default=Path("student"))
    grade = commands.add_parser("check", help="grade the exercises and print a table")
    grade.add_argument("--ex", default="", help="one exercise id (default: all)")
    commands.add_parser("selftest", help="CI: every check fails in a copy, passes here, and one block back passes alone")
    bugs = commands.add_parser("bugs", help="verify that every seeded bug is caught by its tests")
    bugs.add_argument("--bug", default="", help="one bug id (default: all)")
    bugs.add_argument("--plant", type=Path, help="instead, write a copy with --bug planted into this folder")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.command == "exercises":
            table = _load(args.table, "minipretrain.course.catalog:EXERCISES", root)
            blocks = write_student_copy(root, args.dest, table)
            print(f"wrote {args.dest}: {len({b.id for b in blocks})} exercises ({len(blocks)} blocks) blanked, a fresh git "
                  f"repository. Next: "
                  f"cd {args.dest} && make check")
            return 0
        if args.command == "check":
            table = _load(args.table, "minipretrain.course.catalog:EXERCISES", root)
            if not table:
                print("no exercises are marked yet (minipretrain/course/catalog.py is empty)")
                return 0
            results = run_checks(root, table, only=args.ex or None)
            print(format_table(results))
            return 0 if all(r.passed for r in results) else 1
        if args.command == "selftest":
            table = _load(args.table, "minipretrain.course.catalog:EXERCISES", root)
            problems = self_test(root, table)
            print("\n".join(problems) or f"course self-test passed: {len(table)} exercises")
            return 1 if problems else 0
        try:
            from . import bugs as bug_module
        except ImportError:
            print("the seeded bugs are hunted in the original checkout, not in a student copy", file=sys.stderr)
            return 2
        mutations = _load(args.table, "minipretrain.course.bugs:MUTATIONS", root) if args.table else \
            bug_module.MUTATIONS
        if args.plant:
            chosen = [m for m in mutations if m.id == args.bug]
            if not chosen:
                raise ExerciseError(f"--plant needs --bug, one of {[m.id for m in mutations]}")
            bug_module.plant(root, args.plant, chosen[0])
            print(f"planted one bug in {args.plant}; hint: {chosen[0].hint}. Which test catches it?")
            return 0
        results = bug_module.verify_mutations(root, mutations, only=args.bug or None)
        print("\n".join(r.row() for r in results))
        return 0 if all(r.caught for r in results) else 1
    except ExerciseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
