"""``tiercel validate``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from runtime.cli import main

GOOD = "id: good\nnamespace: t\ntasks:\n  - {id: a, type: Log, message: hi}\n"
BAD = "id: bad\nnamespace: t\ntasks:\n  - {id: a, type: Lgo, message: hi}\n"


def test_validate_prints_ok_for_valid_files_and_every_problem_for_others(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    bad = tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    result = CliRunner().invoke(main, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert f"{good}: ok (t.good, 1 tasks)" in result.stdout
    assert f"{bad}:4:19: tasks[0].type: unknown task type 'Lgo'" in result.stderr
    assert "Traceback" not in result.output


def test_validate_exits_zero_when_all_files_are_valid(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    result = CliRunner().invoke(main, ["validate", str(good), str(good)])
    assert result.exit_code == 0
    assert result.stdout.count(": ok") == 2


def test_validate_reports_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "cannot read file" in result.stderr
