"""The database schema as ordered, run-once steps: the NNNN_what.sql files beside this module.

A start brings the database up to date in one transaction under an advisory lock: every step
not yet recorded in schema_migrations runs, in number order, and is recorded with the SHA-256
of its file. A step runs once per database, so an applied step is never edited (a start
refuses one whose file changed): a change to the schema is a new step with the next number.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger("splitgo.schema")

STEPS_DIR = Path(__file__).resolve().parent
# The schema_version the last idempotent schema.sql recorded. Step 1 is that schema, so step n
# brings a database to version BASELINE_VERSION - 1 + n, and code from before the steps (which
# refuses a version above its own) refuses a database that a later step changed.
BASELINE_VERSION = 9
# any fixed number, the one used before the steps too: nodes (old or new) apply one at a time
_SCHEMA_LOCK = 7_350_001
# Not the pool's command timeout: a step that outlasts it (an index on a big table) would be
# cut off at every start and never land. Other starting nodes wait on the lock as long.
_STEP_TIMEOUT = 3600.0
_STEP_FILE = re.compile(r"(?P<number>\d{4})_(?P<what>[a-z0-9_]+)\.sql")

# the steps' own bookkeeping (schema_version as the idempotent schema.sql made it)
_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_version (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version    integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schema_migrations (
    step       integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


class SchemaError(RuntimeError):
    """The database and this code's schema steps do not fit together: the start stops."""

    code = "schema_error"


class SchemaTooNew(SchemaError):
    """The database was upgraded by newer code than this; running on would corrupt it."""

    code = "schema_too_new"


class SchemaStepEdited(SchemaError):
    """A step the database already applied has changed since: the change would never reach it."""

    code = "schema_step_edited"


class SchemaStepsInvalid(SchemaError):
    """The steps folder is malformed: a misnamed file, a gap or a repeated number."""

    code = "schema_steps_invalid"


@dataclass(frozen=True, slots=True)
class Step:
    """One schema step: its number (its place in the order), file name, SQL and checksum."""

    number: int
    name: str
    sql: str
    checksum: str

    @property
    def version(self) -> int:
        """The schema_version a database holds once this step is its newest."""
        return BASELINE_VERSION - 1 + self.number


def load_steps(folder: Path = STEPS_DIR) -> tuple[Step, ...]:
    """The steps in `folder` in order; SchemaStepsInvalid unless numbered 1, 2, 3… exactly."""
    steps: list[Step] = []
    for path in folder.glob("*.sql"):
        match = _STEP_FILE.fullmatch(path.name)
        if match is None:
            raise SchemaStepsInvalid(
                f"{path.name} in {folder}: a schema step is named NNNN_what.sql,"
                " e.g. 0002_rides_by_driver.sql"
            )
        # read_text turns \r\n into \n: a checkout with other line endings sums the same
        sql = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        steps.append(Step(int(match["number"]), path.name, sql, checksum))
    steps.sort(key=lambda step: (step.number, step.name))
    numbers = [step.number for step in steps]
    if not steps or numbers != list(range(1, len(steps) + 1)):
        raise SchemaStepsInvalid(
            f"the schema steps in {folder} are numbered {numbers};"
            " they must be 1, 2, 3… with no gap or repeat"
        )
    return tuple(steps)


SCHEMA_VERSION = load_steps()[-1].version


async def apply_schema(pool: asyncpg.Pool, steps_dir: Path = STEPS_DIR) -> int:
    """Run every step the database has not applied, in order, in one transaction under the
    schema lock; the schema version the database then holds.

    A database made by the idempotent schema.sql of before (a schema_version row, no steps
    recorded) takes step 1 (the same schema, every statement safe to run twice) and the rest.
    Raises SchemaTooNew for a database newer code upgraded and SchemaStepEdited when an
    applied step's file has changed; either way nothing is changed.
    """
    steps = load_steps(steps_dir)
    target = steps[-1].version
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK, timeout=_STEP_TIMEOUT
        )
        await connection.execute(_BOOKKEEPING)
        held: int | None = await connection.fetchval("SELECT version FROM schema_version")
        rows = await connection.fetch("SELECT step, name, checksum FROM schema_migrations")
        applied = {row["step"]: (row["name"], row["checksum"]) for row in rows}
        pending = _pending(steps, held, applied)
        for step in pending:
            await _run(connection, step)
        await connection.execute(
            """
            INSERT INTO schema_version (singleton, version) VALUES (true, $1)
            ON CONFLICT (singleton) DO UPDATE
                SET version = EXCLUDED.version, applied_at = now()
                WHERE schema_version.version < EXCLUDED.version
            """,
            target,
        )
    if pending:
        log.info(
            "schema_applied",
            from_version=held,
            to_version=target,
            steps=[step.name for step in pending],
            adopted=held is not None and not applied,
        )
    return target


def _pending(
    steps: Sequence[Step], held: int | None, applied: Mapping[int, tuple[str, str]]
) -> list[Step]:
    """The steps still to run; raises when the database is too new or a step was edited."""
    newest = steps[-1]
    if held is not None and held > newest.version:
        raise SchemaTooNew(
            f"the database holds schema version {held}; this code knows {newest.version}"
        )
    unknown = sorted(number for number in applied if number > newest.number)
    if unknown:
        names = ", ".join(applied[number][0] for number in unknown)
        raise SchemaTooNew(
            f"the database has applied schema steps this code does not know ({names}; its"
            f" newest is {newest.name}): newer code upgraded it, so run that code"
        )
    for step in steps:
        recorded = applied.get(step.number)
        if recorded is not None and recorded[1] != step.checksum:
            raise SchemaStepEdited(
                f"schema step {step.name} has changed since this database applied it (as"
                f" {recorded[0]}, sha256 {recorded[1][:12]}…, now {step.checksum[:12]}…); an"
                " applied step never runs again: restore it and put the change in a new step,"
                f" {newest.number + 1:04d}_what.sql"
            )
    return [step for step in steps if step.number not in applied]


async def _run(connection: asyncpg.Connection, step: Step) -> None:
    try:
        await connection.execute(step.sql, timeout=_STEP_TIMEOUT)
    except asyncpg.PostgresError as error:
        log.error("schema_step_failed", step=step.name, error=str(error))
        error.add_note(f"in schema step {step.name}: no step of this start was kept")
        raise
    await connection.execute(
        "INSERT INTO schema_migrations (step, name, checksum) VALUES ($1, $2, $3)",
        step.number,
        step.name,
        step.checksum,
    )
