"""claims.json: schema validation, the Markdown table, and rewriting the results README."""
from __future__ import annotations

import json

import pytest

from minipretrain.experiments.claims import (
    END_MARKER,
    START_MARKER,
    Claim,
    ClaimsError,
    load_claims,
    main,
    render_table,
    update_readme,
    validate_claims,
    with_table,
)


def _record(**changes) -> dict:
    # Placeholder wording and numbers: a shape for the validator, not a result.
    record = {"id": "example-claim", "question": "Q0 example", "claim": "A beats B", "source": "ours",
              "rule": "paired t-test over 5 seeds, p < 0.01", "measured": "A - B = 1.0 [0.5, 1.5]",
              "verdict": "reproduced", "page": "example/README.md"}
    record.update(changes)
    return {key: value for key, value in record.items() if value is not None}


def test_a_valid_record_becomes_a_claim() -> None:
    undetermined = _record(id="second", verdict="undetermined", power="10 seeds would give 80% power at 0.5")
    claims = validate_claims([_record(), undetermined])
    assert claims[0] == Claim(**_record()) and claims[0].power is None
    assert claims[1].power.startswith("10 seeds")


@pytest.mark.parametrize("record, message", [
    (_record(rule=None), "missing field 'rule'"),
    (_record(verdict="partly"), "verdict 'partly' must be one of"),
    (_record(verdict="undetermined"), "needs 'power'"),
    (_record(measured="better"), "'measured' must give the numbers"),
    (_record(claim="  "), "'claim' must be a non-empty string"),
    (_record(measured=1.5), "'measured' must be a non-empty string"),
    (_record(id="Scaling Law"), "lowercase letters and digits joined by hyphens"),
    (_record(page="../secrets.md"), "relative to docs/results/"),
    (_record(page="/abs/page.md"), "relative to docs/results/"),
    (_record(page="scaling/results.json"), "must be a .md path"),
    ({**_record(), "verdit": "reproduced"}, "unknown field 'verdit'"),
    ("not a record", "must be a JSON object"),
])
def test_each_schema_violation_is_named(record, message) -> None:
    with pytest.raises(ClaimsError, match=message):
        validate_claims([record])


def test_every_problem_is_reported_at_once_and_ids_are_unique() -> None:
    with pytest.raises(ClaimsError) as caught:
        validate_claims([_record(), _record(), _record(id="other", verdict="maybe", measured="none")])
    text = str(caught.value)
    assert "id 'example-claim' is used twice" in text and "verdict 'maybe'" in text and "'measured'" in text
    with pytest.raises(ClaimsError, match="JSON list"):
        validate_claims({"claims": []})


def test_load_claims_reads_json_and_checks_pages(tmp_path) -> None:
    path = tmp_path / "claims.json"
    path.write_text(json.dumps([_record()]))
    with pytest.raises(ClaimsError, match="does not exist under"):
        load_claims(path)
    assert load_claims(path, check_pages=False)[0].id == "example-claim"
    (tmp_path / "example").mkdir()
    (tmp_path / "example" / "README.md").write_text("# page\n")
    assert len(load_claims(path)) == 1
    path.write_text("[{")
    with pytest.raises(ClaimsError, match="not valid JSON"):
        load_claims(path)
    with pytest.raises(ClaimsError, match="does not exist; create it"):
        load_claims(tmp_path / "missing.json")


def test_render_table_escapes_cells_and_shows_the_power_of_undetermined_claims() -> None:
    claims = validate_claims([_record(claim="A | B\nacross lines"),
                              _record(id="open", verdict="undetermined", power="20 seeds")])
    table = render_table(claims).splitlines()
    assert table[0].startswith("| id | question | claim |") and len(table) == 4
    assert "A \\| B across lines" in table[2] and table[2].count(" | ") == 7
    assert "**undetermined** (would resolve with: 20 seeds)" in table[3]
    assert "[example/README.md](example/README.md)" in table[3]


def test_the_readme_table_is_rewritten_between_markers_and_checked(tmp_path, capsys) -> None:
    (tmp_path / "example").mkdir()
    (tmp_path / "example" / "README.md").write_text("# page\n")
    claims_path = tmp_path / "claims.json"
    claims_path.write_text(json.dumps([_record()]))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Results\n{START_MARKER}\nold table\n{END_MARKER}\nafter\n")
    arguments = ["--claims", str(claims_path), "--readme", str(readme)]
    assert main([*arguments, "--check"]) == 1
    assert main(arguments) == 0
    text = readme.read_text()
    assert "old table" not in text and "| example-claim |" in text and text.endswith(f"{END_MARKER}\nafter\n")
    assert main([*arguments, "--check"]) == 0
    assert not update_readme(readme, load_claims(claims_path))  # idempotent
    assert "up to date" in capsys.readouterr().out
    with pytest.raises(ClaimsError, match="needs the lines"):
        with_table("# no markers\n", [])


def test_replace_question_keeps_the_other_questions_and_refuses_strangers(tmp_path) -> None:
    from minipretrain.experiments.claims import replace_question

    (tmp_path / "example").mkdir()
    (tmp_path / "example" / "README.md").write_text("# Example\n", encoding="utf-8")
    path = tmp_path / "claims.json"
    first = replace_question(path, "Q0 example", [_record()])
    assert [c.id for c in first] == ["example-claim"]
    other = _record(id="other", question="Q9 other")
    replace_question(path, "Q9 other", [other])
    again = replace_question(path, "Q0 example", [_record(id="renamed")])
    assert [(c.id, c.question) for c in again] == [("other", "Q9 other"), ("renamed", "Q0 example")]
    assert [c.id for c in load_claims(path)] == ["other", "renamed"]
    with pytest.raises(ClaimsError, match="do not belong"):
        replace_question(path, "Q0 example", [other])
    with pytest.raises(ClaimsError, match="missing field"):
        replace_question(path, "Q0 example", [_record(rule=None)])
    assert [c.id for c in load_claims(path)] == ["other", "renamed"]  # a refused write leaves the file alone
