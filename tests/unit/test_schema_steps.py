"""The schema's step files, read without a database: names, order, checksums, the baseline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from splitgo.schema import (
    BASELINE_VERSION,
    SCHEMA_VERSION,
    STEPS_DIR,
    SchemaStepsInvalid,
    load_steps,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OLD_SCHEMA = FIXTURES / "schema_before_migrations.sql"
SECTIONS = "-- ── runtime"


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


def test_the_packaged_steps_start_with_the_baseline() -> None:
    """The package holds steps 1, 2, 3… with 0001_base.sql first, and the newest one names
    SCHEMA_VERSION (step 1 is the version the idempotent schema.sql reached)."""
    steps = load_steps()
    assert steps[0].name == "0001_base.sql"
    assert steps[0].version == BASELINE_VERSION
    assert [step.number for step in steps] == list(range(1, len(steps) + 1))
    assert steps[-1].version == SCHEMA_VERSION
    assert (STEPS_DIR / "__init__.py").is_file(), "the steps sit beside the module that runs them"


def test_the_baseline_is_the_schema_from_before_the_steps() -> None:
    """Step 1 holds the old schema.sql's statements unchanged, less its header and the
    schema_version table (now made by the step runner itself, as it was)."""
    old = OLD_SCHEMA.read_text(encoding="utf-8")
    version_table = re.search(r"CREATE TABLE IF NOT EXISTS schema_version \(.*?\);\n\n", old, re.S)
    assert version_table is not None
    old_body = old.replace(version_table.group(0), "").split(SECTIONS, 1)[1]
    baseline = load_steps()[0].sql.split(SECTIONS, 1)[1]
    assert baseline == old_body


def test_every_baseline_statement_is_safe_to_run_twice() -> None:
    """A database made by the old schema.sql takes step 1 again: each CREATE in it is
    IF NOT EXISTS or OR REPLACE, and each trigger is dropped (IF EXISTS) before it is made."""
    sql = load_steps()[0].sql
    heads = re.findall(r"^(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE)\b(.*)$", sql, re.M)
    assert heads
    for verb, rest in heads:
        if verb == "CREATE" and rest.startswith(" TRIGGER"):
            name = rest.split()[1]
            assert f"DROP TRIGGER IF EXISTS {name} " in sql, name
        elif verb == "CREATE":
            assert "IF NOT EXISTS" in rest or rest.startswith(" OR REPLACE"), rest
        else:
            assert verb == "DROP", f"{verb}{rest}"
            assert "IF EXISTS" in rest, f"{verb}{rest}"


def test_steps_are_ordered_by_number_and_summed_over_their_text(tmp_path: Path) -> None:
    """Steps come back in number order whatever the folder lists first, and a file with
    Windows line endings has the same checksum as the same file with Unix ones."""
    unix = _write(tmp_path / "unix", {"0002_b.sql": "SELECT 2;\n", "0001_a.sql": "SELECT 1;\n"})
    windows = _write(tmp_path / "win", {"0001_a.sql": "SELECT 1;\r\n", "0002_b.sql": "SELECT 2;\n"})
    steps = load_steps(unix)
    assert [step.name for step in steps] == ["0001_a.sql", "0002_b.sql"]
    assert [step.checksum for step in load_steps(windows)] == [step.checksum for step in steps]
    assert steps[0].checksum != steps[1].checksum
    assert len(steps[0].checksum) == 64


@pytest.mark.parametrize(
    ("files", "names"),
    [
        ({"0001_a.sql": "", "0003_c.sql": ""}, r"numbered \[1, 3\]"),
        ({"0001_a.sql": "", "0001_b.sql": ""}, r"numbered \[1, 1\]"),
        ({"0002_b.sql": ""}, r"numbered \[2\]"),
        ({}, r"numbered \[\]"),
        ({"0001_a.sql": "", "2_b.sql": ""}, "2_b.sql .*NNNN_what.sql"),
        ({"0001_Base Schema.sql": ""}, "NNNN_what.sql"),
    ],
)
def test_a_malformed_steps_folder_is_refused(
    tmp_path: Path, files: dict[str, str], names: str
) -> None:
    """A gap, a repeated number, a missing step 1, no steps or a misnamed file stops the load
    with schema_steps_invalid."""
    with pytest.raises(SchemaStepsInvalid, match=names) as refused:
        load_steps(_write(tmp_path / "steps", files))
    assert refused.value.code == "schema_steps_invalid"


def test_files_other_than_sql_are_not_steps(tmp_path: Path) -> None:
    """Python files and notes beside the steps (the package's own module) are not steps."""
    folder = _write(tmp_path / "steps", {"0001_a.sql": "SELECT 1;", "__init__.py": "", "x.txt": ""})
    assert [step.name for step in load_steps(folder)] == ["0001_a.sql"]
