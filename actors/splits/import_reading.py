"""Splitwise CSV import, step 1: reading a group export into an `ImportPlan` (its people,
planned expenses and settlements, and the report), refusing a foreign or broken file with
`InvalidImport` naming the row and column. Pure, no IO; amounts are read from their decimal
text into integer minor units by integer arithmetic only (actors/splits/importing.py holds
the plan's types and the rules of the format)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from datetime import date

from actors.payments.messages import CURRENCIES, MAX_AMOUNT
from actors.runtime.bounds import EARLIEST_DAY, LATEST_DAY
from actors.splits.importing import (
    AMOUNTS_REMEMBERED,
    CATEGORY_MAP,
    DESCRIPTION_MAX,
    GENERAL,
    MAX_FILE_BYTES,
    MAX_PEOPLE,
    MAX_ROWS,
    NAME_MAX,
    PAYMENT_CATEGORY,
    REQUIRED_COLUMNS,
    SKIPPED_SHOWN,
    TOTAL_BALANCE,
    ImportCurrencyTotal,
    ImportPersonNet,
    ImportPlan,
    ImportReport,
    ImportSkip,
    InvalidImport,
    PlannedExpense,
    PlannedSettlement,
    derived_id,
)
from actors.splits.shares import largest_remainder

_AMOUNT = re.compile(r"([+-]?)([0-9]{1,16})(?:\.([0-9]{1,12}))?")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
                name: derived_id(self.group_id, self.digest, "person", str(index))
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
                expense_id=derived_id(self.group_id, self.digest, "row", str(row)),
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
                    settlement_id=derived_id(
                        self.group_id, self.digest, "row", str(row), str(g + t)
                    ),
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


def read_report(data: bytes) -> ImportReport:
    """What a dry run would report of the file, before any group exists (a new group's
    currency is chosen from it); InvalidImport as parse_splitwise."""
    return parse_splitwise(data, group_id="").report
