"""The Splitwise CSV importer: fixtures read exactly, every refusal, the mapping step, and
hypothesis properties (nets reproduced to the unit, ids stable per file and group)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.payments.messages import CURRENCIES
from actors.runtime.errors import Failure
from actors.splits import import_reading, importing
from actors.splits.import_mapping import apply_mapping, dry_run, propose_mapping
from actors.splits.import_reading import parse_splitwise
from actors.splits.importing import (
    ImportDryRun,
    ImportPlan,
    InvalidImport,
    import_group_id,
)
from actors.splits.messages import (
    DESCRIPTION_MAX,
    GROUP_NAME_MAX,
    AddExpense,
    AddMember,
    RecordSettlement,
)
from actors.splits.shares import ShareSpec, compute_shares, expense_deltas, split_payers

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "splitwise"
GROUP = "group-1"
HEADER = "Date,Description,Category,Cost,Currency"
PROPERTY = settings(max_examples=60, deadline=None)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(text: str | bytes, group_id: str = GROUP) -> ImportPlan:
    data = text.encode() if isinstance(text, str) else text
    return parse_splitwise(data, group_id=group_id)


def refusal(text: str | bytes) -> InvalidImport:
    with pytest.raises(InvalidImport) as caught:
        parse(text)
    assert caught.value.code == "invalid_import"
    return caught.value


def row_nets(plan: ImportPlan) -> dict[tuple[str, str], int]:
    """Every person's net per currency made by the planned expenses and settlements."""
    nets: dict[tuple[str, str], int] = defaultdict(int)
    for expense in plan.expenses:
        for name, delta in expense_deltas(expense.paid_by, expense.shares).items():
            nets[name, expense.currency] += delta
    for settlement in plan.settlements:
        nets[settlement.from_name, settlement.currency] += settlement.amount
        nets[settlement.to_name, settlement.currency] -= settlement.amount
    return {key: net for key, net in nets.items() if net}


def report_nets(plan: ImportPlan) -> dict[tuple[str, str], int]:
    return {(line.name, line.currency): line.net for line in plan.report.nets if line.net}


# ── the fixtures ──────────────────────────────────────────────────────────────────────


def test_flat_fixture_becomes_expenses_a_settlement_and_a_skipped_row() -> None:
    """A one-currency export reads into exact expenses (payers' shares from the cost), the
    payment as a settlement from its payer, and a zero row skipped with its reason."""
    plan = parse(fixture("flat.csv"))

    assert plan.people == ("Ana Lima", "Bo Chen", "Cleo Park")
    rent, groceries, dinner, taxi = plan.expenses
    assert (rent.row, rent.date, rent.category, rent.amount) == (2, "2024-03-01", "rent", 120000)
    assert rent.paid_by == (("Ana Lima", 120000),)
    assert rent.shares == (("Ana Lima", 40000), ("Bo Chen", 40000), ("Cleo Park", 40000))
    assert groceries.paid_by == (("Bo Chen", 4510),)
    assert groceries.shares == (("Ana Lima", 1503), ("Bo Chen", 1503), ("Cleo Park", 1504))
    assert (dinner.description, dinner.category) == ("Dinner, with wine", "food")
    assert dinner.paid_by == (("Ana Lima", 4500), ("Bo Chen", 4500))
    assert dinner.shares == (("Ana Lima", 1500), ("Bo Chen", 1500), ("Cleo Park", 6000))
    assert taxi.paid_by == (("Cleo Park", 2000),)
    assert taxi.shares == (("Bo Chen", 1000), ("Cleo Park", 1000))
    (payment,) = plan.settlements
    assert (payment.row, payment.from_name, payment.to_name, payment.amount) == (
        6,
        "Bo Chen",
        "Ana Lima",
        40000,
    )
    report = plan.report
    assert (report.rows_read, report.expenses, report.payments, report.settlements) == (7, 4, 1, 1)
    assert report.skipped_count == 1
    assert report.skipped[0].row == 7
    assert "no one's balance" in report.skipped[0].reason
    (eur,) = report.currencies
    assert (eur.currency, eur.expenses, eur.expense_total) == ("EUR", 4, 135510)
    assert (eur.payments, eur.payment_total) == (1, 40000)
    assert report_nets(plan) == {
        ("Ana Lima", "EUR"): 41497,
        ("Bo Chen", "EUR"): 5007,
        ("Cleo Park", "EUR"): -46504,
    }
    assert report.checked_currencies == ["EUR"]


def test_trip_fixture_reads_two_currencies_and_checks_both_total_rows() -> None:
    """Yen written with or without ".00", unicode and disambiguated names, two payers, an
    unknown category as general, and one Total balance row per currency all checked."""
    plan = parse(fixture("trip.csv"))

    assert plan.people == ("Zoë", "Marc", "Sam", "Sam L.")
    ramen, train, hotel, museum, snacks = plan.expenses
    assert (ramen.currency, ramen.amount, ramen.paid_by) == ("JPY", 4800, (("Zoë", 4800),))
    assert (train.amount, train.category) == (12000, "transport")
    assert hotel.paid_by == (("Zoë", 15000), ("Marc", 15000))
    assert museum.shares == (("Zoë", 334), ("Marc", 250), ("Sam", 333), ("Sam L.", 84))
    assert (snacks.category, snacks.source_category) == ("general", "Weird Category")
    assert snacks.shares == (("Zoë", 350), ("Marc", 350))  # the payer's own share is 0
    (payment,) = plan.settlements
    assert (payment.currency, payment.from_name, payment.to_name, payment.amount) == (
        "JPY",
        "Sam",
        "Zoë",
        1200,
    )
    assert plan.report.checked_currencies == ["EUR", "JPY"]
    assert [c.currency for c in plan.report.currencies] == ["EUR", "JPY"]
    assert row_nets(plan) == report_nets(plan)


@pytest.mark.parametrize("name", ["flat.csv", "trip.csv"])
def test_fixture_plans_reproduce_every_net(name: str) -> None:
    """The planned expenses and settlements move each person's net by exactly what the
    file's rows say (the report's totals, checked against the Total balance rows)."""
    plan = parse(fixture(name))

    assert row_nets(plan) == report_nets(plan)
    for expense in plan.expenses:
        assert sum(paid for _, paid in expense.paid_by) == expense.amount
        assert sum(share for _, share in expense.shares) == expense.amount


def test_bom_and_crlf_read_the_same_as_plain_text() -> None:
    """A UTF-8 BOM and CRLF line ends change nothing but the file's digest and ids."""
    plain = parse(fixture("trip.csv"))
    windows = parse(b"\xef\xbb\xbf" + fixture("trip.csv").replace(b"\n", b"\r\n"))

    assert windows.people == plain.people
    assert windows.report.nets == plain.report.nets
    assert [(e.row, e.amount, e.shares) for e in windows.expenses] == [
        (e.row, e.amount, e.shares) for e in plain.expenses
    ]
    assert windows.file_sha256 != plain.file_sha256


def test_quoted_cells_may_hold_commas_quotes_and_line_breaks() -> None:
    """A description with a comma, quotes and a line break is one cell, made one line; the
    row number is the line the row ends on."""
    plan = parse(
        f'{HEADER},A,B\n2024-01-01,"Pizza, ""large""\nand drinks",General,9,EUR,4.5,-4.5\n'
    )

    (expense,) = plan.expenses
    assert expense.description == 'Pizza, "large" and drinks'
    assert expense.row == 3


def test_header_columns_are_found_by_name_and_a_trailing_comma_is_ignored() -> None:
    """The five columns match whatever their case and order; an empty last header cell
    names no one; a short row reads its missing cells as zero."""
    plan = parse(
        "a,currency,COST,category,description,date,b,c,\n5,eur,10,General,X,2024-01-01,-5\n"
    )

    assert plan.people == ("a", "b", "c")
    (expense,) = plan.expenses
    assert expense.paid_by == (("a", 1000),)
    assert expense.shares == (("a", 500), ("b", 500))


def test_description_is_one_line_of_at_most_the_expense_limit() -> None:
    """Long descriptions are cut to AddExpense's limit, control characters dropped, and an
    empty one named after its category."""
    long = "x" * 300
    plan = parse(
        f"{HEADER},A,B\n2024-01-01,{long},General,1,EUR,0.5,-0.5\n"
        "2024-01-02,,Groceries,1,EUR,0.5,-0.5\n"
        "2024-01-03,\x07Bell\x1bing,General,1,EUR,0.5,-0.5\n"
    )

    first, second, third = plan.expenses
    assert len(first.description) == DESCRIPTION_MAX
    assert first.description.endswith("…")
    assert second.description == "Groceries"
    assert third.description == "Bell ing"


def test_a_payment_among_several_people_becomes_settlements_that_move_the_same_nets() -> None:
    """A Payment row moving more than two nets is paired up greedily, in column order."""
    plan = parse(f"{HEADER},A,B,C,D\n2024-01-01,Settle,Payment,10,EUR,6,-3,4,-7\n")

    pairs = [(s.from_name, s.to_name, s.amount) for s in plan.settlements]
    assert pairs == [("A", "B", 300), ("A", "D", 300), ("C", "D", 400)]
    assert len({s.settlement_id for s in plan.settlements}) == 3
    assert row_nets(plan) == {("A", "EUR"): 600, ("B", "EUR"): -300, ("C", "EUR"): 400,
                              ("D", "EUR"): -700}  # fmt: skip


def test_every_splitwise_category_maps_to_one_the_expense_form_offers() -> None:
    """The category map only yields the categories our expense form lists."""
    from splitgo.pages.expenses import CATEGORIES

    assert set(importing.CATEGORY_MAP.values()) <= set(CATEGORIES)


def test_bounds_repeated_here_equal_the_messages() -> None:
    """The description and name limits this module repeats are AddExpense's and
    AddMember's (they are repeated to let messages.py re-export this module)."""
    assert importing.DESCRIPTION_MAX == DESCRIPTION_MAX
    assert importing.NAME_MAX == GROUP_NAME_MAX


def test_ten_thousand_rows_are_read_whole() -> None:
    """A 10,000-row export is read into 10,000 expenses, each as written (its speed is
    measured in `make bench`, section import, never asserted here)."""
    rows = []
    for i in range(10_000):
        paid = 300 + i % 9700  # A paid for all five; each other's share is in the row
        nets = [paid - 50, -100, -100, 0, -(paid - 250)]
        cells = ",".join(decimal_text(net, 2, 0) for net in nets)
        rows.append(
            f"2024-01-{1 + i % 28:02d},Row {i},Groceries,{decimal_text(paid, 2, 0)},EUR,{cells}"
        )
    data = "\n".join([f"{HEADER},A,B,C,D,E", *rows]).encode()

    plan = parse(data)

    assert len(plan.expenses) == 10_000
    assert [e.amount for e in plan.expenses[:2]] == [300, 301]
    assert plan.expenses[-1].description == "Row 9999"


# ── refusals ──────────────────────────────────────────────────────────────────────────


def test_a_file_over_the_size_limit_is_refused_before_it_is_read() -> None:
    """More than 20 MiB is refused, saying the limit."""
    error = refusal(b"x" * (importing.MAX_FILE_BYTES + 1))

    assert "20 MiB" in error.message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b" \n\n", "empty"),
        (b"PK\x03\x04\x00\x00binary", "binary"),
        ("Date,Description\n2024-01-01,Caf\xe9\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_what_is_not_csv_text_is_refused(data: bytes, words: str) -> None:
    """Empty files, binary files and text in another encoding are refused, saying which."""
    assert words in refusal(data).message


def test_broken_quoting_is_refused_naming_the_line() -> None:
    """A quote that never closes is malformed CSV, refused with its line."""
    error = refusal(f'{HEADER},A,B\n2024-01-01,"Pizza,General,9,EUR,4.5,-4.5\n')

    assert "not well-formed CSV" in error.message
    assert error.row is not None


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("Date,Description,Category,Currency,A,B", "no Cost column"),
        ("Date,Category,A,B", "no Description, Cost and Currency columns"),
        ("Datum;Beschreibung;Kosten", "not separated by commas"),
        (
            "expense_id,date,description,category,currency,amount,paid_by,share:A",
            "splitgo export",
        ),
        ('{"expenses": []}', "starts with"),
    ],
)
def test_a_foreign_header_is_refused_naming_the_missing_columns(header: str, words: str) -> None:
    """A header without Splitwise's five columns is refused, naming the missing ones and
    what the file looks like instead."""
    error = refusal(f"{header}\n1,2,3\n")

    assert "not a Splitwise group export" in error.message
    assert words in error.message
    assert error.row == 1


def test_a_bank_statement_fixture_is_refused_as_a_foreign_shape() -> None:
    """A semicolon-separated bank export is refused with a hint about the separator."""
    error = refusal(fixture("bank_statement.csv"))

    assert "not separated by commas" in error.message


@pytest.mark.parametrize(
    ("people", "words"),
    [
        ("A", "names 1 people"),
        ("", "names 0 people"),
        ("A,a", "both named"),
        ("A,,B", "column 7 has no name"),
        ("A," + "x" * 101, "printable characters"),
    ],
)
def test_bad_people_columns_are_refused(people: str, words: str) -> None:
    """Fewer than two people, two columns of one name, a nameless or overlong name are
    refused, naming the column."""
    assert words in refusal(f"{HEADER},{people}\n").message


def test_more_than_two_hundred_people_are_refused() -> None:
    """A file of 201 people is refused, saying the limit."""
    people = ",".join(f"P{i}" for i in range(201))

    assert "at most 200" in refusal(f"{HEADER},{people}\n").message


def test_more_rows_than_the_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The row past the limit is refused, naming it (the limit lowered to keep this fast)."""
    monkeypatch.setattr(import_reading, "MAX_ROWS", 3)
    rows = "\n".join("2024-01-01,X,General,1,EUR,0.5,-0.5" for _ in range(4))

    error = refusal(f"{HEADER},A,B\n{rows}\n")

    assert error.row == 5
    assert "more than 3 rows" in error.message


@pytest.mark.parametrize(
    ("row", "column", "words"),
    [
        ("01/02/2024,X,General,1,EUR,0.5,-0.5", "Date", "not a date written YYYY-MM-DD"),
        ("2024-02-30,X,General,1,EUR,0.5,-0.5", "Date", "not a date"),
        ("1899-12-31,X,General,1,EUR,0.5,-0.5", "Date", "not from 1900-01-01"),
        ("2024-01-01,X,General,1,THB,0.5,-0.5", "Currency", "'THB' is not a currency"),
        ("2024-01-01,X,General,1,,0.5,-0.5", "Currency", "an empty cell"),
        ('2024-01-01,X,General,"1,50",EUR,0.75,-0.75', "Cost", "not an amount"),
        ("2024-01-01,X,General,1e3,EUR,500,-500", "Cost", "not an amount"),
        ("2024-01-01,X,General,1.234,EUR,0.5,-0.5", "Cost", "more decimals than EUR has (2)"),
        ("2024-01-01,X,General,12.5,JPY,6,-6", "Cost", "more decimals than JPY has (0)"),
        ("2024-01-01,X,General,1,EUR,0.5,-0.5x", "B", "not an amount"),
        ("2024-01-01,X,General,99999999999,EUR,1,-1", "Cost", "more than splitgo takes"),
        ("2024-01-01,X,General,-5,EUR,0.5,-0.5", "Cost", "a cost is not negative"),
        ("2024-01-01,X,General,1,EUR,0.5,-0.4", None, "add up to 0.10 EUR, not zero"),
        ("2024-01-01,X,General,1,EUR,5,-5", "Cost", "more than the Cost of 1.00"),
    ],
)
def test_a_bad_cell_is_refused_naming_row_and_column(
    row: str, column: str | None, words: str
) -> None:
    """Bad dates, currencies and amounts, nets that do not sum to zero or that exceed the
    cost are refused with a sentence naming the row and the column."""
    error = refusal(f"{HEADER},A,B\n2024-01-01,Fine,General,1,EUR,0.5,-0.5\n{row}\n")

    assert words in error.message
    assert error.message.startswith("Row 3")
    assert error.row == 3
    assert error.column == column
    assert error.details["field"] == "file"


def test_extra_cells_past_the_header_are_refused() -> None:
    """A row with a value beyond the header's last column is refused (empty ones are not)."""
    assert parse(f"{HEADER},A,B\n2024-01-01,X,General,1,EUR,0.5,-0.5,,\n").expenses
    error = refusal(f"{HEADER},A,B\n2024-01-01,X,General,1,EUR,0.5,-0.5,7\n")

    assert "more than the header's 7" in error.message


def test_a_total_balance_that_disagrees_with_the_rows_is_refused() -> None:
    """A Total balance row unlike the rows' sum is refused naming the person's column."""
    text = fixture("flat.csv").decode().replace("414.97,50.07", "414.96,50.08")

    error = refusal(text)

    assert error.row == 9
    assert error.column == "Ana Lima"
    assert "Total balance is 414.96 EUR" in error.message


def test_a_total_balance_row_without_currency_is_checked_against_the_one_currency() -> None:
    """A Total balance row with no currency is read in the file's only currency."""
    plan = parse(
        f"{HEADER},A,B\n2024-01-01,X,General,1,EUR,0.5,-0.5\n\n,Total balance,,,,0.5,-0.5\n"
    )

    assert plan.report.checked_currencies == ["EUR"]
    text = f"{HEADER},A,B\n2024-01-01,X,General,1,EUR,0.5,-0.5\n"
    text += "2024-01-01,Y,General,100,JPY,50,-50\n,Total balance,,,,0.5,-0.5\n"
    assert "names no currency" in refusal(text).message


def test_the_refusal_survives_an_ask_round_trip() -> None:
    """Re-raised at an ask's caller (rebuilt from code and details), the error keeps its
    code, row and column."""
    with pytest.raises(InvalidImport) as caught:
        parse(f"{HEADER},A,B\n2024-01-01,X,General,1,EUR,0.5,-0.4\n")

    rebuilt = Failure.of(caught.value).to_error()

    assert isinstance(rebuilt, InvalidImport)
    assert (rebuilt.code, rebuilt.row, rebuilt.column) == ("invalid_import", 2, None)


# ── ids ───────────────────────────────────────────────────────────────────────────────


def test_ids_are_the_same_for_the_same_file_and_group_and_differ_otherwise() -> None:
    """Parsing twice gives the same ids; another group or another file gives other ids."""
    data = fixture("flat.csv")
    first, second = parse(data), parse(data)
    other_group = parse(data, group_id="group-2")
    other_file = parse(data.replace(b"Rent March", b"Rent April"))

    def ids(plan: ImportPlan) -> set[str]:
        return {
            *(e.expense_id for e in plan.expenses),
            *(s.settlement_id for s in plan.settlements),
            *plan.placeholder_ids.values(),
        }

    assert ids(first) == ids(second)
    assert len(ids(first)) == 4 + 1 + 3
    assert not ids(first) & ids(other_group)
    assert not ids(first) & ids(other_file)


def test_a_new_groups_id_is_derived_from_the_user_and_the_file() -> None:
    """The same user importing the same file gets the same new group id; others do not."""
    data = fixture("flat.csv")

    assert import_group_id("u1", data) == import_group_id("u1", data)
    assert import_group_id("u1", data) != import_group_id("u2", data)
    assert import_group_id("u1", data) != import_group_id("u1", data + b"\n")


# ── the mapping ───────────────────────────────────────────────────────────────────────


def test_proposal_matches_names_ignoring_case_and_spaces() -> None:
    """Names match members ignoring case and spacing; no match or two matches propose a
    new placeholder (None)."""
    members = [("u-ana", " ana   LIMA "), ("u-bo1", "Bo Chen"), ("u-bo2", "bo chen"), ("u-x", None)]

    proposal = propose_mapping(["Ana Lima", "Bo Chen", "Cleo Park"], members)

    assert proposal == {"Ana Lima": "u-ana", "Bo Chen": None, "Cleo Park": None}


def test_dry_run_is_a_json_ready_report_with_the_proposal() -> None:
    """The dry run's answer encodes to JSON and decodes back equal, mapping in file order."""
    plan = parse(fixture("flat.csv"))

    answer = dry_run(plan, [("u-ana", "Ana Lima")])
    again = msgspec.json.decode(msgspec.json.encode(answer), type=ImportDryRun)

    assert again == answer
    assert [(m.name, m.user_id) for m in answer.mapping] == [
        ("Ana Lima", "u-ana"),
        ("Bo Chen", None),
        ("Cleo Park", None),
    ]


def test_a_confirmed_mapping_yields_valid_messages() -> None:
    """Placeholders for unmapped names (their ids from the plan), and expenses and cash
    settlements that build real AddMember, AddExpense and RecordSettlement messages."""
    plan = parse(fixture("flat.csv"))

    batch = apply_mapping(
        plan, {"Ana Lima": "u-ana", "Bo Chen": None, "Cleo Park": None}, members={"u-ana"}
    )

    bo, cleo = plan.placeholder_ids["Bo Chen"], plan.placeholder_ids["Cleo Park"]
    assert [(p.placeholder_id, p.name) for p in batch.placeholders] == [
        (bo, "Bo Chen"),
        (cleo, "Cleo Park"),
    ]
    added = [AddMember(group_id=GROUP, user_id="u-ana", **p.fields()) for p in batch.placeholders]
    assert [m.placeholder_id for m in added] == [bo, cleo]
    expenses = [AddExpense(group_id=GROUP, user_id="u-ana", **e.fields()) for e in batch.expenses]
    assert [e.expense_id for e in expenses] == [e.expense_id for e in plan.expenses]
    rent = expenses[0]
    assert (rent.split_mode, rent.date, rent.category, rent.amount) == (
        "exact",
        "2024-03-01",
        "rent",
        120000,
    )
    assert [(p.user_id, p.amount) for p in rent.paid_by] == [("u-ana", 120000)]
    assert [(s.user_id, s.amount) for s in rent.shares] == [
        ("u-ana", 40000),
        (bo, 40000),
        (cleo, 40000),
    ]
    (settlement,) = [RecordSettlement(group_id=GROUP, **s.fields()) for s in batch.settlements]
    assert (settlement.user_id, settlement.to_user_id, settlement.amount) == (bo, "u-ana", 40000)
    assert (settlement.method, batch.settlements[0].date) == ("cash", "2024-03-10")
    for expense in expenses:  # what the actor's split arithmetic accepts
        lines = [ShareSpec(user_id=s.user_id, amount=s.amount) for s in expense.shares]
        assert compute_shares(expense.amount, "exact", lines)
        assert split_payers(expense.amount, [(p.user_id, p.amount) for p in expense.paid_by])


def test_two_names_mapped_to_one_member_are_merged() -> None:
    """Names mapped to one member merge their lines; a payment between them is dropped;
    every member's net is still what the file says."""
    plan = parse(fixture("trip.csv"))
    mapping: dict[str, str | None] = {"Zoë": "u-z", "Marc": "u-m", "Sam": "u-s", "Sam L.": "u-s"}

    batch = apply_mapping(plan, mapping)

    assert batch.placeholders == ()
    ramen = batch.expenses[0]
    assert ramen.shares == (("u-z", 1200), ("u-m", 1200), ("u-s", 2400))
    assert (len(batch.settlements), batch.dropped_settlements) == (1, 0)
    merged = apply_mapping(plan, {**mapping, "Zoë": "u-s"})
    assert (len(merged.settlements), merged.dropped_settlements) == (0, 1)
    nets: dict[tuple[str, str], int] = defaultdict(int)
    for expense in batch.expenses:
        for user, delta in expense_deltas(expense.paid_by, expense.shares).items():
            nets[user, expense.currency] += delta
    for s in batch.settlements:
        nets[s.from_user_id, s.currency] += s.amount
        nets[s.to_user_id, s.currency] -= s.amount
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for line in plan.report.nets:
        expected[mapping[line.name] or "", line.currency] += line.net
    assert {k: v for k, v in nets.items() if v} == {k: v for k, v in expected.items() if v}


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ({"Ana Lima": "u-ana", "Bo Chen": None}, "'Cleo Park' is not mapped"),
        (
            {"Ana Lima": "u-ana", "Bo Chen": None, "Cleo Park": None, "Dan": None},
            "'Dan' is not a name in the file",
        ),
        ({"Ana Lima": "u-eve", "Bo Chen": None, "Cleo Park": None}, "not a member"),
        ({"Ana Lima": "", "Bo Chen": None, "Cleo Park": None}, "not a member"),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_person(
    mapping: dict[str, str | None], words: str
) -> None:
    """A name left out, a name not in the file or a mapping to a non-member is refused."""
    plan = parse(fixture("flat.csv"))

    with pytest.raises(InvalidImport) as caught:
        apply_mapping(plan, mapping, members={"u-ana"})

    assert words in caught.value.message
    assert caught.value.column is not None


# ── properties ────────────────────────────────────────────────────────────────────────

CODES = ["EUR", "JPY", "KWD", "USD"]


def decimal_text(amount: int, exponent: int, zeros: int) -> str:
    """Minor units as Splitwise writes them, with `zeros` extra trailing zeros."""
    sign = "-" if amount < 0 else ""
    whole, minor = divmod(abs(amount), 10**exponent)
    fraction = (f"{minor:0{exponent}d}" if exponent else "") + "0" * zeros
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


@st.composite
def exports(draw: st.DrawFn) -> tuple[str, list[str], list[tuple[bool, str, list[int]]]]:
    """A Splitwise export: its text, its people and each row (payment?, currency, nets)."""
    people = [f"P{i}" for i in range(draw(st.integers(2, 6)))]
    rows: list[tuple[bool, str, list[int]]] = []
    lines = [",".join([HEADER, *people])]
    for number in range(draw(st.integers(1, 12))):
        currency = draw(st.sampled_from(CODES))
        exponent = CURRENCIES[currency]
        head = draw(st.lists(st.integers(-(10**6), 10**6), min_size=len(people) - 1,
                             max_size=len(people) - 1))  # fmt: skip
        nets = [*head, -sum(head)]
        payment = draw(st.booleans())
        extra = 0 if payment else draw(st.integers(0, 10**6))
        cost = sum(n for n in nets if n > 0) + extra
        zeros = draw(st.integers(0, 2))
        cells = [decimal_text(n, exponent, zeros) for n in nets]
        category = "Payment" if payment else draw(st.sampled_from(["General", "Taxi", "Odd"]))
        lines.append(
            f"2024-01-{1 + number:02d},Row {number},{category},"
            f"{decimal_text(cost, exponent, zeros)},{currency},{','.join(cells)}"
        )
        rows.append((payment, currency, nets))
    return "\n".join(lines) + "\n", people, rows


@PROPERTY
@given(exports())
def test_planned_rows_reproduce_each_persons_nets_exactly(
    export: tuple[str, list[str], list[tuple[bool, str, list[int]]]],
) -> None:
    """For generated rows, each planned expense or settlement moves every person's net by
    exactly the row's value, and its lines are what the actor's split arithmetic accepts."""
    text, people, rows = export

    plan = parse(text)

    expenses = iter(plan.expenses)
    settlements_by_row: dict[int, list[int]] = defaultdict(list)
    for index, settlement in enumerate(plan.settlements):
        settlements_by_row[settlement.row].append(index)
    for number, (payment, currency, nets) in enumerate(rows):
        expected = {name: net for name, net in zip(people, nets, strict=True) if net}
        if not expected:
            continue  # skipped: it moves nothing
        moved: dict[str, int] = defaultdict(int)
        if payment:
            for index in settlements_by_row[number + 2]:
                s = plan.settlements[index]
                assert s.amount > 0
                assert s.currency == currency
                moved[s.from_name] += s.amount
                moved[s.to_name] -= s.amount
        else:
            expense = next(expenses)
            assert (expense.row, expense.currency) == (number + 2, currency)
            assert split_payers(expense.amount, expense.paid_by)
            specs = [ShareSpec(user_id=name, amount=share) for name, share in expense.shares]
            assert compute_shares(expense.amount, "exact", specs)
            moved.update(expense_deltas(expense.paid_by, expense.shares))
        assert {k: v for k, v in moved.items() if v} == expected
    assert next(expenses, None) is None


@PROPERTY
@given(exports(), st.text(alphabet="abc", min_size=1, max_size=3))
def test_ids_are_stable_across_parses_and_differ_for_another_file(
    export: tuple[str, list[str], list[tuple[bool, str, list[int]]]], suffix: str
) -> None:
    """Two parses of one file give the same ids; a file that differs by one description
    gives none of them."""
    text = export[0]
    changed = text.replace("Row 0,", f"Row 0{suffix},", 1)

    def ids(plan: ImportPlan) -> list[str]:
        return [
            *(e.expense_id for e in plan.expenses),
            *(s.settlement_id for s in plan.settlements),
            *plan.placeholder_ids.values(),
        ]

    first, second, other = ids(parse(text)), ids(parse(text)), ids(parse(changed))

    assert first == second
    assert len(set(first)) == len(first)
    assert not set(first) & set(other)
