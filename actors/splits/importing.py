"""Splitwise CSV import: a group export read into planned expenses and settlements. Pure, no IO.

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

import csv
import hashlib
import io
import re
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from actors.payments.messages import CURRENCIES, MAX_AMOUNT
from actors.runtime import DomainError, Message
from actors.runtime.bounds import EARLIEST_DAY, LATEST_DAY
from actors.splits.replies import Payer, ShareLine
from actors.splits.shares import largest_remainder

# what actors/splits/messages.py re-exports (its public interface)
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
    "read_report",
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

_AMOUNT = re.compile(r"([+-]?)([0-9]{1,16})(?:\.([0-9]{1,12}))?")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
    """A member: `placeholder` when they have no account yet."""

    user_id: str
    joined_at: str
    placeholder: bool


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


# ── reading the file ──────────────────────────────────────────────────────────────────


def import_group_id(user_id: str, data: bytes) -> str:
    """The id of a new group made from this file by this user: the same on a retry, so a
    second run finds the group the first one made."""
    return _id("group", user_id, hashlib.sha256(data).hexdigest())


def parse_splitwise(data: bytes, *, group_id: str) -> ImportPlan:
    """Read a Splitwise group export into a plan for the group `group_id` (ids are derived
    from it, the file's SHA-256 and each row's line), or raise InvalidImport naming the row
    and column at fault."""
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImport(
            f"The file is {len(data) / 2**20:.1f} MiB; an import is at most "
            f"{MAX_FILE_BYTES // 2**20} MiB."
        )
    if not data.strip():
        raise InvalidImport("The file is empty; export the group from Splitwise as CSV.")
    if b"\x00" in data:
        raise InvalidImport("This is not a CSV file (it holds binary data, as a spreadsheet does).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidImport(
            f"The file is not UTF-8 text (byte {error.start} is not); export it from Splitwise "
            "again or save it as CSV UTF-8."
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return _Parser(group_id, digest, reader).plan()
    except csv.Error as error:
        raise InvalidImport(
            f"Line {reader.line_num} is not well-formed CSV: {error}.", row=reader.line_num
        ) from None


class _Parser:
    """One pass over the rows (the file is read once, row by row)."""

    def __init__(self, group_id: str, digest: str, reader: Iterator[list[str]]) -> None:
        self.group_id, self.digest, self.reader = group_id, digest, reader
        self.expenses: list[PlannedExpense] = []
        self.settlements: list[PlannedSettlement] = []
        self.skipped: list[ImportSkip] = []
        self.skipped_count = 0
        self.rows_read = 0
        self.payments = 0
        # currency -> [expenses, expense total, payments, payment total]
        self.totals: dict[str, list[int]] = {}
        self.nets: dict[str, list[int]] = {}  # currency -> each person's net, by column
        self.balance_rows: list[tuple[int, str, list[int]]] = []
        self.amounts: dict[tuple[str, int], int] = {}

    def line(self) -> int:
        """The file's line the current row ended on (what the refusals name as its row)."""
        return int(getattr(self.reader, "line_num", 0))

    def plan(self) -> ImportPlan:
        header = next((cells for cells in self.reader if any(c.strip() for c in cells)), None)
        if header is None:
            raise InvalidImport("The file is empty; export the group from Splitwise as CSV.")
        self.read_header(header)
        for cells in self.reader:
            if any(cell.strip() for cell in cells):
                self.read_row(cells)
        checked = self.check_totals()
        return ImportPlan(
            group_id=self.group_id,
            file_sha256=self.digest,
            people=tuple(self.people),
            placeholder_ids={
                name: _id(self.group_id, self.digest, "person", str(index))
                for index, name in enumerate(self.people)
            },
            expenses=tuple(self.expenses),
            settlements=tuple(self.settlements),
            report=self.report(checked),
        )

    # ── the header ──

    def read_header(self, header: list[str]) -> None:
        row = self.line()
        cells = [" ".join(cell.split()) for cell in header]
        while cells and not cells[-1]:
            cells.pop()  # a trailing comma names no one
        found = {cell.casefold(): index for index, cell in reversed(list(enumerate(cells)))}
        missing = [name for name in REQUIRED_COLUMNS if name.casefold() not in found]
        if missing:
            raise InvalidImport(_foreign_shape(cells, missing), row=row)
        self.width = len(cells)
        self.date_at, self.description_at, self.category_at, self.cost_at, self.currency_at = (
            found[name.casefold()] for name in REQUIRED_COLUMNS
        )
        required = {found[name.casefold()] for name in REQUIRED_COLUMNS}
        self.columns = [index for index in range(len(cells)) if index not in required]
        self.people = [cells[index] for index in self.columns]
        if len(self.people) < 2:
            raise InvalidImport(
                f"The header names {len(self.people)} people after the Currency column; a "
                "Splitwise group export has a column for each of at least 2 people.",
                row=row,
            )
        if len(self.people) > MAX_PEOPLE:
            raise InvalidImport(
                f"The file has {len(self.people)} people; an import takes at most {MAX_PEOPLE}.",
                row=row,
            )
        seen: dict[str, int] = {}
        for index, name in zip(self.columns, self.people, strict=True):
            where = f"column {index + 1}"
            if not name:
                raise InvalidImport(f"Row {row}, {where} has no name in the header.", row=row)
            if _CONTROL.search(name) or len(name) > NAME_MAX:
                raise InvalidImport(
                    f"Row {row}, {where}: a name is 1 to {NAME_MAX} printable characters.",
                    row=row,
                    column=name,
                )
            other = seen.setdefault(name.casefold(), index)
            if other != index:
                raise InvalidImport(
                    f"Row {row}: columns {other + 1} and {index + 1} are both named {name!r}; "
                    "each person needs a name of their own.",
                    row=row,
                    column=name,
                )

    # ── a row ──

    def read_row(self, cells: list[str]) -> None:
        row = self.line()
        self.rows_read += 1
        if self.rows_read > MAX_ROWS:
            raise InvalidImport(f"The file has more than {MAX_ROWS:,} rows.", row=row)
        if len(cells) > self.width:
            if any(cell.strip() for cell in cells[self.width :]):
                raise InvalidImport(
                    f"Row {row} has {len(cells)} cells, more than the header's {self.width}.",
                    row=row,
                )
        elif len(cells) < self.width:
            cells = cells + [""] * (self.width - len(cells))
        description = " ".join(_CONTROL.sub(" ", cells[self.description_at]).split())
        if description.casefold() == TOTAL_BALANCE:
            self.read_balance_row(row, cells)
            return
        day = self.date(row, cells[self.date_at])
        currency = self.currency(row, cells[self.currency_at])
        exponent = CURRENCIES[currency]
        cost = self.amount(cells[self.cost_at], exponent, currency, row, "Cost")
        if cost < 0:
            raise InvalidImport(
                f"Row {row}, column Cost: a cost is not negative.", row=row, column="Cost"
            )
        nets = [
            self.amount(cells[index], exponent, currency, row, name)
            for index, name in zip(self.columns, self.people, strict=True)
        ]
        total = sum(nets)
        if total != 0:
            raise InvalidImport(
                f"Row {row}: the people's columns add up to {_decimal(total, exponent)} "
                f"{currency}, not zero, as each row of a Splitwise export does.",
                row=row,
            )
        source_category = " ".join(cells[self.category_at].split())
        if source_category.casefold() == PAYMENT_CATEGORY:
            self.payment(row, day, currency, nets)
        else:
            self.expense(row, day, currency, cost, nets, description, source_category)

    def read_balance_row(self, row: int, cells: list[str]) -> None:
        code = cells[self.currency_at].strip().upper()
        if code and code not in CURRENCIES:
            raise InvalidImport(
                f"Row {row}, column Currency: {code!r} is not a currency splitgo accepts.",
                row=row,
                column="Currency",
            )
        exponent = CURRENCIES.get(code, 2)
        nets = [
            _amount(cells[index], exponent, code or "the file's currency", row, name)
            for index, name in zip(self.columns, self.people, strict=True)
        ]
        self.balance_rows.append((row, code, nets))

    def amount(self, cell: str, exponent: int, currency: str, row: int, column: str) -> int:
        """`_amount`, remembered: a file repeats the same few cells ("0.00") many times."""
        key = (cell, exponent)
        value = self.amounts.get(key)
        if value is None:
            value = _amount(cell, exponent, currency, row, column)
            if len(self.amounts) < AMOUNTS_REMEMBERED:
                self.amounts[key] = value
        return value

    def date(self, row: int, cell: str) -> str:
        text = cell.strip()
        try:
            day = date.fromisoformat(text) if _DAY.fullmatch(text) else None
        except ValueError:
            day = None
        if day is None:
            raise InvalidImport(
                f"Row {row}, column Date: {text!r} is not a date written YYYY-MM-DD.",
                row=row,
                column="Date",
            )
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            raise InvalidImport(
                f"Row {row}, column Date: {text} is not from {EARLIEST_DAY} to {LATEST_DAY}.",
                row=row,
                column="Date",
            )
        return text

    def currency(self, row: int, cell: str) -> str:
        code = cell.strip().upper()
        if code not in CURRENCIES:
            shown = repr(code) if code else "an empty cell"
            raise InvalidImport(
                f"Row {row}, column Currency: {shown} is not a currency splitgo accepts "
                f"({', '.join(sorted(CURRENCIES))}).",
                row=row,
                column="Currency",
            )
        return code

    def count(self, currency: str, nets: list[int]) -> list[int]:
        """The currency's running totals, after adding the row's nets to everyone's."""
        totals = self.totals.setdefault(currency, [0, 0, 0, 0])
        running = self.nets.setdefault(currency, [0] * len(self.people))
        for index, net in enumerate(nets):
            running[index] += net
        return totals

    def skip(self, row: int, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < SKIPPED_SHOWN:
            self.skipped.append(ImportSkip(row=row, reason=reason))

    def expense(
        self,
        row: int,
        day: str,
        currency: str,
        cost: int,
        nets: list[int],
        description: str,
        source_category: str,
    ) -> None:
        if not any(nets):
            reason = "it costs nothing" if cost == 0 else "it moves no one's balance"
            self.skip(row, f"{reason} (whoever paid it paid only for themselves)")
            return
        payers = [(self.people[i], net) for i, net in enumerate(nets) if net > 0]
        owing = sum(net for _, net in payers)
        payers_share = cost - owing
        if payers_share < 0:
            exponent = CURRENCIES[currency]
            raise InvalidImport(
                f"Row {row}: the people's columns move {_decimal(owing, exponent)} {currency}, "
                f"more than the Cost of {_decimal(cost, exponent)}.",
                row=row,
                column="Cost",
            )
        # The payers' own shares: what the cost leaves after the others' debts, spread
        # evenly over them (exactly, by largest remainder). Each payer then paid their net
        # plus their share, so paid - share reproduces every net exactly.
        own = (
            [payers_share]
            if len(payers) == 1
            else largest_remainder(payers_share, [1] * len(payers))
        )
        own_share = {name: part for (name, _), part in zip(payers, own, strict=True)}
        shares = tuple(
            (name, own_share[name] if net > 0 else -net)
            for name, net in zip(self.people, nets, strict=True)
            if net < 0 or own_share.get(name, 0) > 0
        )
        paid_by = tuple((name, net + own_share[name]) for name, net in payers)
        self.expenses.append(
            PlannedExpense(
                row=row,
                expense_id=_id(self.group_id, self.digest, "row", str(row)),
                date=day,
                description=_description(description, source_category),
                category=CATEGORY_MAP.get(source_category.casefold(), GENERAL),
                source_category=source_category,
                currency=currency,
                amount=cost,
                paid_by=paid_by,
                shares=shares,
            )
        )
        totals = self.count(currency, nets)
        totals[0] += 1
        totals[1] += cost

    def payment(self, row: int, day: str, currency: str, nets: list[int]) -> None:
        if not any(nets):
            self.skip(row, "a payment that moves no one's balance")
            return
        # Whoever paid has the positive net (their debt shrinks), whoever was paid the
        # negative one: a settlement from the first to the second moves the nets alike.
        # A row of more than two people is paired up greedily, in column order.
        givers = [(name, net) for name, net in zip(self.people, nets, strict=True) if net > 0]
        takers = [(name, -net) for name, net in zip(self.people, nets, strict=True) if net < 0]
        left_given, left_taken = givers[0][1], takers[0][1]
        g = t = moved = 0
        while g < len(givers) and t < len(takers):
            amount = min(left_given, left_taken)
            self.settlements.append(
                PlannedSettlement(
                    row=row,
                    settlement_id=_id(self.group_id, self.digest, "row", str(row), str(g + t)),
                    date=day,
                    currency=currency,
                    from_name=givers[g][0],
                    to_name=takers[t][0],
                    amount=amount,
                )
            )
            moved += amount
            left_given -= amount
            left_taken -= amount
            # each step uses up a giver or a taker (or both): g + t numbers the steps apart
            if left_given == 0:
                g += 1
                left_given = givers[g][1] if g < len(givers) else 0
            if left_taken == 0:
                t += 1
                left_taken = takers[t][1] if t < len(takers) else 0
        self.payments += 1
        totals = self.count(currency, nets)
        totals[2] += 1
        totals[3] += moved

    # ── the end ──

    def check_totals(self) -> list[str]:
        """Check each Total balance row against the nets the rows add up to; the
        currencies checked."""
        checked: list[str] = []
        for row, code, totals in self.balance_rows:
            currency = code
            if not currency:
                if len(self.nets) > 1:
                    raise InvalidImport(
                        f"Row {row}: a Total balance row names no currency, and the file has "
                        f"several ({', '.join(sorted(self.nets))}).",
                        row=row,
                        column="Currency",
                    )
                currency = next(iter(self.nets), "")
            exponent = CURRENCIES.get(currency, 2)
            nets = self.nets.get(currency, [0] * len(self.people))
            for name, net, total in zip(self.people, nets, totals, strict=True):
                if net != total:
                    raise InvalidImport(
                        f"Row {row}, column {name!r}: the Total balance is "
                        f"{_decimal(total, exponent)} {currency}, but the rows add up to "
                        f"{_decimal(net, exponent)}; the file was changed or is incomplete.",
                        row=row,
                        column=name,
                    )
            if currency and currency not in checked:
                checked.append(currency)
        return checked

    def report(self, checked: list[str]) -> ImportReport:
        return ImportReport(
            file_sha256=self.digest,
            people=list(self.people),
            rows_read=self.rows_read,
            expenses=len(self.expenses),
            payments=self.payments,
            settlements=len(self.settlements),
            skipped_count=self.skipped_count,
            skipped=self.skipped,
            currencies=[
                ImportCurrencyTotal(
                    currency=code,
                    expenses=counts[0],
                    expense_total=counts[1],
                    payments=counts[2],
                    payment_total=counts[3],
                )
                for code, counts in sorted(self.totals.items())
            ],
            nets=[
                ImportPersonNet(name=name, currency=code, net=net)
                for code, nets in sorted(self.nets.items())
                for name, net in zip(self.people, nets, strict=True)
            ],
            checked_currencies=sorted(checked),
        )


def _id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


def _amount(cell: str, exponent: int, currency: str, row: int, column: str) -> int:
    """The cell's decimal text as minor units (blank: 0), exactly; refused naming the row
    and column when it is not a number or has more decimals than the currency."""
    text = cell.strip()
    if not text:
        return 0
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise InvalidImport(
            f"Row {row}, column {column}: {text[:40]!r} is not an amount (digits with a point "
            "for decimals, like 12.50).",
            row=row,
            column=column,
        )
    sign, whole, fraction = match.groups()
    fraction = fraction or ""
    # trailing zeros are no extra precision ("1200.00" yen is 1200 yen)
    if len(fraction.rstrip("0")) > exponent:
        raise InvalidImport(
            f"Row {row}, column {column}: {text} has more decimals than {currency} has "
            f"({exponent}).",
            row=row,
            column=column,
        )
    digits = fraction[:exponent].ljust(exponent, "0")
    scale: int = 10**exponent
    value = int(whole) * scale + (int(digits) if digits else 0)
    if value > MAX_AMOUNT:
        raise InvalidImport(
            f"Row {row}, column {column}: {text} is more than splitgo takes in one amount.",
            row=row,
            column=column,
        )
    return -value if sign == "-" else value


def _decimal(amount: int, exponent: int) -> str:
    sign = "-" if amount < 0 else ""
    whole, minor = divmod(abs(amount), 10**exponent)
    return f"{sign}{whole}.{minor:0{exponent}d}" if exponent else f"{sign}{whole}"


def _description(text: str, source_category: str) -> str:
    """The description as AddExpense takes it: one line, 1 to DESCRIPTION_MAX characters."""
    text = text or source_category or "Imported expense"
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def _foreign_shape(header: Sequence[str], missing: Sequence[str]) -> str:
    """Why a header is not a Splitwise export's, in words."""
    named = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    noun = "column" if len(missing) == 1 else "columns"
    reason = f"This is not a Splitwise group export: the header has no {named} {noun}"
    if len(header) == 1 and any(mark in header[0] for mark in ";\t|"):
        return f"{reason} (its cells are not separated by commas; export it as CSV again)."
    if "expense_id" in (cell.casefold() for cell in header):
        return f"{reason} (it looks like a splitgo export, which is not imported)."
    shown = ", ".join(cell for cell in header[:6] if cell) or "nothing"
    return f"{reason} (it starts with {shown})."


# ── the mapping ───────────────────────────────────────────────────────────────────────


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def propose_mapping(
    people: Sequence[str], members: Sequence[tuple[str, str | None]]
) -> dict[str, str | None]:
    """Each Splitwise name and the member `(user_id, name)` of the same name (ignoring case
    and spaces), or None (a new placeholder) when no member, or more than one, has it."""
    by_name: dict[str, list[str]] = {}
    for user_id, name in members:
        if name:
            by_name.setdefault(_folded(name), []).append(user_id)
    proposal: dict[str, str | None] = {}
    for person in people:
        found = by_name.get(_folded(person), [])
        proposal[person] = found[0] if len(found) == 1 else None
    return proposal


def dry_run(plan: ImportPlan, members: Sequence[tuple[str, str | None]]) -> ImportDryRun:
    """The answer to a dry run: the plan's report and the proposed mapping."""
    proposal = propose_mapping(plan.people, members)
    return ImportDryRun(
        report=plan.report,
        mapping=[ImportMatch(name=name, user_id=user) for name, user in proposal.items()],
    )


@dataclass(frozen=True, slots=True)
class ImportedPlaceholder:
    """A new member with no account for a Splitwise name (AddMember's fields)."""

    placeholder_id: str
    name: str

    def fields(self) -> dict[str, Any]:
        """AddMember's fields but group_id and user_id (the importing member)."""
        return {"name": self.name, "placeholder_id": self.placeholder_id}


@dataclass(frozen=True, slots=True)
class ImportedExpense:
    """An expense between members: `paid_by` and `shares` are (user id, minor units)."""

    row: int
    expense_id: str
    date: str
    description: str
    category: str
    currency: str
    amount: int
    paid_by: tuple[tuple[str, int], ...]
    shares: tuple[tuple[str, int], ...]

    def fields(self) -> dict[str, Any]:
        """AddExpense's fields but group_id and user_id (the importing member)."""
        return {
            "expense_id": self.expense_id,
            "description": self.description,
            "amount": self.amount,
            "currency": self.currency,
            "paid_by": [Payer(user_id=user, amount=paid) for user, paid in self.paid_by],
            "split_mode": "exact",
            "shares": [ShareLine(user_id=user, amount=share) for user, share in self.shares],
            "date": self.date,
            "category": self.category,
        }


@dataclass(frozen=True, slots=True)
class ImportedSettlement:
    """A cash settlement between members, made on `date` (RecordSettlement has no date:
    the importing handler stores it as the settlement's day)."""

    row: int
    settlement_id: str
    date: str
    from_user_id: str
    to_user_id: str
    amount: int
    currency: str

    def fields(self) -> dict[str, Any]:
        """RecordSettlement's fields but group_id: `user_id` is the member who paid."""
        return {
            "user_id": self.from_user_id,
            "settlement_id": self.settlement_id,
            "to_user_id": self.to_user_id,
            "amount": self.amount,
            "currency": self.currency,
            "method": "cash",
        }


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """What a confirmed import records, in order: placeholders, then expenses and
    settlements (file order). `dropped_settlements`: payments between two names mapped to
    one member, which change nothing."""

    group_id: str
    placeholders: tuple[ImportedPlaceholder, ...]
    expenses: tuple[ImportedExpense, ...]
    settlements: tuple[ImportedSettlement, ...]
    dropped_settlements: int


def apply_mapping(
    plan: ImportPlan,
    mapping: Mapping[str, str | None],
    *,
    members: Collection[str] | None = None,
) -> ImportBatch:
    """The placeholders, expenses and settlements of a confirmed mapping: every name of the
    file mapped to a member's user id (one of `members`, when given) or to None for a new
    placeholder. Two names mapped to one member are merged into them. Raises InvalidImport
    naming the person when a name is missing, unknown or mapped to a non-member."""
    for name in plan.people:
        if name not in mapping:
            raise InvalidImport(
                f"{name!r} is not mapped: map every name to a member or to a new placeholder.",
                column=name,
            )
    known = set(plan.people)
    for name, user in mapping.items():
        if name not in known:
            raise InvalidImport(f"{name!r} is not a name in the file.", column=name)
        if user is not None and (not user or (members is not None and user not in members)):
            raise InvalidImport(
                f"{name!r} is mapped to {user!r}, who is not a member of the group.", column=name
            )
    users = {name: mapping[name] or plan.placeholder_ids[name] for name in plan.people}
    placeholders = tuple(
        ImportedPlaceholder(placeholder_id=plan.placeholder_ids[name], name=name)
        for name in plan.people
        if mapping[name] is None
    )
    expenses = tuple(
        ImportedExpense(
            row=planned.row,
            expense_id=planned.expense_id,
            date=planned.date,
            description=planned.description,
            category=planned.category,
            currency=planned.currency,
            amount=planned.amount,
            paid_by=_merged(planned.paid_by, users),
            shares=_merged(planned.shares, users),
        )
        for planned in plan.expenses
    )
    settlements = tuple(
        ImportedSettlement(
            row=planned.row,
            settlement_id=planned.settlement_id,
            date=planned.date,
            from_user_id=users[planned.from_name],
            to_user_id=users[planned.to_name],
            amount=planned.amount,
            currency=planned.currency,
        )
        for planned in plan.settlements
        if users[planned.from_name] != users[planned.to_name]
    )
    return ImportBatch(
        group_id=plan.group_id,
        placeholders=placeholders,
        expenses=expenses,
        settlements=settlements,
        dropped_settlements=len(plan.settlements) - len(settlements),
    )


def _merged(
    lines: Sequence[tuple[str, int]], users: Mapping[str, str]
) -> tuple[tuple[str, int], ...]:
    """Lines by name as lines by user, those of two names of one user added together."""
    merged: dict[str, int] = {}
    for name, amount in lines:
        user = users[name]
        merged[user] = merged.get(user, 0) + amount
    return tuple(merged.items())


# ── writing a confirmed import in chunks ──────────────────────────────────────────────


def batch_total(batch: ImportBatch) -> int:
    """How many rows a confirmed import writes: its expenses, then its settlements."""
    return len(batch.expenses) + len(batch.settlements)


def batch_chunk(
    batch: ImportBatch, start: int, size: int
) -> tuple[tuple[ImportedExpense, ...], tuple[ImportedSettlement, ...]]:
    """The rows `start` to `start + size` of the batch (expenses first, then settlements):
    consecutive chunks cover every row once."""
    start, end = max(0, start), max(0, start + size)
    count = len(batch.expenses)
    expenses = batch.expenses[min(start, count) : min(end, count)]
    settlements = batch.settlements[max(0, start - count) : max(0, end - count)]
    return expenses, settlements


def batch_deltas(
    expenses: Sequence[ImportedExpense], settlements: Sequence[ImportedSettlement]
) -> dict[str, dict[str, int]]:
    """What these rows do to the kept balances, per currency and user (> 0: owed to them);
    each currency's changes sum to zero."""
    deltas: dict[str, dict[str, int]] = {}
    for expense in expenses:
        nets = deltas.setdefault(expense.currency, {})
        for user, paid in expense.paid_by:
            nets[user] = nets.get(user, 0) + paid
        for user, owed in expense.shares:
            nets[user] = nets.get(user, 0) - owed
    for settlement in settlements:
        # the payer's debt shrinks, the payee is owed less (as a cash settlement does)
        nets = deltas.setdefault(settlement.currency, {})
        nets[settlement.from_user_id] = nets.get(settlement.from_user_id, 0) + settlement.amount
        nets[settlement.to_user_id] = nets.get(settlement.to_user_id, 0) - settlement.amount
    return {
        currency: {user: delta for user, delta in nets.items() if delta}
        for currency, nets in deltas.items()
    }


def main_currency(report: ImportReport) -> str | None:
    """The currency most of the file's expenses are in (a new group's currency), or None
    for a file with no expense."""
    counted = [(total.expenses + total.payments, total.currency) for total in report.currencies]
    if not counted:
        return None
    return min(counted, key=lambda item: (-item[0], item[1]))[1]


EXPORT_FORMAT = "splitgo.group.v1"


def read_report(data: bytes) -> ImportReport:
    """What a dry run would report of the file, before any group exists (a new group's
    currency is chosen from it); InvalidImport as parse_splitwise."""
    return parse_splitwise(data, group_id="").report
