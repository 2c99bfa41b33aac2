"""Splitwise CSV import: the format's rules, the plan, the report and the JSON export's
shapes (re-exported by messages.py). Pure, no IO; reading a file is import_reading.py,
applying a mapping import_mapping.py.

Splitwise's group export is one row per expense or payment: `Date, Description, Category,
Cost, Currency`, then one column per person holding their net for that row (positive: paid
more than their share; negative: owes), the nets of a row summing to zero. A blank line and
a `Total balance` row per currency end it.

The import goes in two steps:

1. `parse_splitwise` reads the file into an `ImportPlan` (refusing a foreign or broken file
   with `InvalidImport`, naming the row and column) and `dry_run` reports it with a proposed
   mapping of each Splitwise name to a member of the group, or to a new placeholder (None).
2. `apply_mapping` takes the confirmed mapping and gives the placeholders to add and the
   expenses and settlements to record, as the field values of `AddMember`, `AddExpense` and
   `RecordSettlement`.

Every id is derived (uuid5) from the group, the file's SHA-256 and the row's line number, so
importing the same file into the same group twice makes the same ids: the second run adds
nothing. Amounts are parsed from their decimal text into integer minor units by integer
arithmetic only.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actors.runtime import DomainError, Message

# what actors/splits/messages re-exports (its public interface)
__all__ = [
    "EXPORT_FORMAT",
    "MAX_FILE_BYTES",
    "MAX_PEOPLE",
    "MAX_ROWS",
    "ExportedComment",
    "ExportedExpense",
    "ExportedGroup",
    "ExportedLine",
    "ExportedMember",
    "ExportedSettlement",
    "GroupExport",
    "ImportCurrencyTotal",
    "ImportDryRun",
    "ImportMatch",
    "ImportPersonNet",
    "ImportProgress",
    "ImportReport",
    "ImportSkip",
    "InvalidImport",
    "import_group_id",
    "main_currency",
]

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 50_000
MAX_PEOPLE = 200
# The bounds AddExpense and AddMember put on these (messages.DESCRIPTION_MAX and
# GROUP_NAME_MAX): repeated, not imported, so that messages.py may re-export this module
# without an import cycle; a unit test keeps them equal.
DESCRIPTION_MAX = 200
NAME_MAX = 100
SKIPPED_SHOWN = 100  # the report lists this many skipped rows (and counts them all)
AMOUNTS_REMEMBERED = 100_000  # parsed cells kept for reuse while reading one file

REQUIRED_COLUMNS = ("Date", "Description", "Category", "Cost", "Currency")
PAYMENT_CATEGORY = "payment"
TOTAL_BALANCE = "total balance"
GENERAL = "general"

# Ids are uuid5 in this namespace: the same inputs give the same id on every node.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "splitgo:import:splitwise")

# Splitwise's categories (the subcategories its export writes, lower case) as ours (the ones
# the expense form offers); anything else becomes "general".
CATEGORY_MAP: dict[str, str] = {
    "general": "general",
    "uncategorized": "general",
    "dining out": "food",
    "food and drink": "food",
    "food and drink - other": "food",
    "liquor": "food",
    "groceries": "groceries",
    "rent": "rent",
    "mortgage": "rent",
    "bicycle": "transport",
    "bus/train": "transport",
    "car": "transport",
    "gas/fuel": "transport",
    "parking": "transport",
    "taxi": "transport",
    "transportation": "transport",
    "transportation - other": "transport",
    "plane": "travel",
    "hotel": "travel",
    "entertainment": "fun",
    "entertainment - other": "fun",
    "games": "fun",
    "movies": "fun",
    "music": "fun",
    "sports": "fun",
    "utilities": "utilities",
    "utilities - other": "utilities",
    "cleaning": "utilities",
    "electricity": "utilities",
    "heat/gas": "utilities",
    "trash": "utilities",
    "tv/phone/internet": "utilities",
    "water": "utilities",
}


class InvalidImport(DomainError):
    """The file is not a Splitwise group export we can read; `details` name the `row` (its
    line in the file) and `column` when one is to blame, and `field` is always "file"."""

    code = "invalid_import"
    category = "invalid"

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        details: dict[str, Any] = {"field": "file"}
        if row is not None:
            details["row"] = row
        if column is not None:
            details["column"] = column
        super().__init__(message, details=details)

    @property
    def row(self) -> int | None:
        """The line of the file at fault, if one is."""
        # from details, not an attribute: an error re-raised at an ask's caller is rebuilt
        # from its code and details without calling __init__
        row = self.details.get("row")
        return row if isinstance(row, int) else None

    @property
    def column(self) -> str | None:
        """The column at fault (its header), if one is."""
        column = self.details.get("column")
        return column if isinstance(column, str) else None


# ── the plan ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class PlannedExpense:
    """One expense row: who paid what and each person's share, by Splitwise name; every
    person's `paid - share` is their net in the row, exactly."""

    row: int
    expense_id: str
    date: str
    description: str
    category: str
    source_category: str
    currency: str
    amount: int
    paid_by: tuple[tuple[str, int], ...]
    shares: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class PlannedSettlement:
    """One payment between two people (a Payment row; one of several when a row moves more
    than two people's nets): `from_name` paid `to_name`."""

    row: int
    settlement_id: str
    date: str
    currency: str
    from_name: str
    to_name: str
    amount: int


# ── the report (JSON-ready: the dry run's answer) ─────────────────────────────────────


class ImportSkip(Message, frozen=True):
    """A row that is not imported, and why."""

    row: int
    reason: str


class ImportCurrencyTotal(Message, frozen=True):
    """What the file holds in one currency: expenses and payments, counted and summed."""

    currency: str
    expenses: int
    expense_total: int
    payments: int
    payment_total: int


class ImportPersonNet(Message, frozen=True):
    """A person's net over the whole file in one currency (> 0: owed to them)."""

    name: str
    currency: str
    net: int


class ImportReport(Message, frozen=True):
    """What an import of the file would do: `rows_read` counts every non-blank row after
    the header (expenses, payments, skipped and Total balance rows); `payments` counts
    Payment rows, `settlements` the settlements they make; `checked_currencies` are the
    currencies whose Total balance row matched every person's net."""

    file_sha256: str
    people: list[str]
    rows_read: int
    expenses: int
    payments: int
    settlements: int
    skipped_count: int
    skipped: list[ImportSkip]
    currencies: list[ImportCurrencyTotal]
    nets: list[ImportPersonNet]
    checked_currencies: list[str]


class ImportMatch(Message, frozen=True):
    """A Splitwise name and the member it becomes: `user_id` None is a new placeholder."""

    name: str
    user_id: str | None


class ImportDryRun(Message, frozen=True):
    """The dry run's answer: the report and the proposed mapping, to confirm or correct.
    `already_imported` counts the file's expenses and settlements the group holds already
    (from an earlier run: importing again adds only the others)."""

    report: ImportReport
    mapping: list[ImportMatch]
    already_imported: int = 0


class ImportProgress(Message, frozen=True):
    """How far a confirmed import is: `done` of `total` expenses and settlements written
    (or found there already); the counts are of what this import added, over every chunk
    so far. `finished` once the last chunk is written."""

    done: int
    total: int
    finished: bool
    expenses_added: int
    settlements_added: int
    placeholders_added: int


# ── the JSON export (the whole group; ids beside names, amounts in minor units) ────────


class ExportedMember(Message, frozen=True):
    """A member: `placeholder` when they have no account yet (then named here, from the
    group's own record; the edge names the others)."""

    user_id: str
    joined_at: str
    placeholder: bool
    name: str | None = None


class ExportedLine(Message, frozen=True):
    """One person's part of an expense: what they paid, or their share."""

    user_id: str
    amount: int


class ExportedComment(Message, frozen=True):
    """A comment on an expense."""

    id: str
    user_id: str
    text: str
    created_at: str


class ExportedExpense(Message, frozen=True):
    """A live expense with who paid and each share (exact, summing to `amount`)."""

    id: str
    date: str
    description: str
    category: str
    amount: int
    currency: str
    split_mode: str
    paid_by: list[ExportedLine]
    shares: list[ExportedLine]
    created_by: str
    created_at: str
    comments: list[ExportedComment]


class ExportedSettlement(Message, frozen=True):
    """A completed settlement: `from_user_id` paid `to_user_id`."""

    id: str
    from_user_id: str
    to_user_id: str
    amount: int
    currency: str
    method: str
    settled_at: str | None


class ExportedGroup(Message, frozen=True):
    """The group itself."""

    id: str
    name: str
    currency: str
    created_by: str
    created_at: str
    archived: bool


class GroupExport(Message, frozen=True):
    """The whole group as JSON: GET /api/v1/groups/{id}/export.json."""

    format: str
    exported_at: str
    group: ExportedGroup
    members: list[ExportedMember]
    expenses: list[ExportedExpense]
    settlements: list[ExportedSettlement]


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """A parsed file: its people (column names, in order), planned expenses and settlements
    (in file order) and the report. `placeholder_ids` are the ids a person mapped to a new
    placeholder gets."""

    group_id: str
    file_sha256: str
    people: tuple[str, ...]
    placeholder_ids: Mapping[str, str]
    expenses: tuple[PlannedExpense, ...]
    settlements: tuple[PlannedSettlement, ...]
    report: ImportReport


# ── ids ──────────────────────────────────────────────────────────────────────────────


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


def import_group_id(user_id: str, data: bytes) -> str:
    """The id of a new group made from this file by this user: the same on a retry, so a
    second run finds the group the first one made."""
    return derived_id("group", user_id, hashlib.sha256(data).hexdigest())


def main_currency(report: ImportReport) -> str | None:
    """The currency most of the file's expenses are in (a new group's currency), or None
    for a file with no expense."""
    counted = [(total.expenses + total.payments, total.currency) for total in report.currencies]
    if not counted:
        return None
    return min(counted, key=lambda item: (-item[0], item[1]))[1]


EXPORT_FORMAT = "splitgo.group.v1"
