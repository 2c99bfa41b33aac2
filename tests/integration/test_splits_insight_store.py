"""The insight's statements on a real PostgreSQL: search by each filter (text with its
wildcards taken literally, person as payer or sharer, category, currency, dates, amounts),
paging by (date, created, id) with no row twice or missed, deleted expenses and other
groups left out; totals by category and by month for the group and for one person's own
shares; and the proposed index serving a search of a large group without a sort."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from actors.splits.insight import (
    SearchCursor,
    SearchFilter,
    TotalRow,
    insight,
    known_categories,
    search_filter,
)
from actors.splits.store import expenses, groups
from actors.splits.store import insight as store
from actors.splits.store.expenses import ExpenseRecord

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
# the index the report proposes for the splits schema (created here in this test's own
# database only): a search's order, scanned backwards, and the totals' columns with it
PROPOSED_INDEX = (
    "CREATE INDEX IF NOT EXISTS splits_expenses_by_day ON splits_expenses"
    " (group_id, spent_on, created_at, id) INCLUDE (currency, category, amount)"
    " WHERE deleted_at IS NULL"
)


async def make_group(pool: asyncpg.Pool, *members: str) -> str:
    group_id = str(uuid.uuid4())
    await groups.insert_group(pool, group_id, "Trip", "EUR", members[0], NOW)
    for member in members[1:]:
        await groups.add_member(pool, group_id, member, NOW)
    return group_id


async def add(
    pool: asyncpg.Pool,
    group_id: str,
    description: str,
    amount: int,
    *,
    day: date = date(2026, 2, 1),
    category: str = "general",
    currency: str = "EUR",
    payers: Sequence[tuple[str, int]] | None = None,
    shares: Sequence[tuple[str, int]] | None = None,
    created: datetime = NOW,
    expense_id: str | None = None,
) -> ExpenseRecord:
    """An expense stored as the actor stores one: paid by ada, shared by ada and bo (the
    first share takes the odd minor unit) unless told otherwise."""
    half = amount // 2
    record = ExpenseRecord(
        id=expense_id or str(uuid.uuid4()),
        group_id=group_id,
        description=description,
        amount=amount,
        currency=currency,
        spent_on=day,
        category=category,
        split_mode="exact",
        split_input=[],
        created_by="ada",
        created_at=created,
        updated_at=created,
        payers=list(payers or [("ada", amount)]),
        shares=list(shares or [("ada", amount - half), ("bo", half)]),
    )
    assert await expenses.insert_expense(pool, record)
    return record


async def found(pool: asyncpg.Pool, group_id: str, **fields: object) -> list[str]:
    """The descriptions a search with `fields` finds (one page of up to 200)."""
    criteria = SearchFilter(**fields)  # type: ignore[arg-type]
    return [e.description for e in await store.search_expenses(pool, group_id, criteria, 200, None)]


@pytest.fixture
async def trip(pool: asyncpg.Pool) -> str:
    """A group with five expenses across categories, currencies, dates and payers; one
    deleted; and another group's expense that must never show."""
    group_id = await make_group(pool, "ada", "bo", "cy")
    await add(pool, group_id, "Pizza night", 3000, category="food", day=date(2026, 1, 10))
    await add(pool, group_id, "50% off pizza", 1200, category="food", day=date(2026, 1, 20))
    await add(
        pool,
        group_id,
        "Rent_march",
        90000,
        category="rent",
        day=date(2026, 3, 1),
        payers=[("cy", 90000)],
        shares=[("ada", 45000), ("bo", 45000)],
    )
    await add(
        pool,
        group_id,
        "Taxi",
        2500,
        category="transport",
        currency="USD",
        day=date(2025, 12, 31),
        shares=[("ada", 2500)],
    )
    await add(pool, group_id, "Museum", 1001, category="fun", day=date(2026, 3, 15))
    gone = await add(pool, group_id, "Pizza deleted", 999, category="food")
    await expenses.mark_deleted(pool, gone.id, NOW)
    other = await make_group(pool, "ada")
    await add(pool, other, "Pizza elsewhere", 700, shares=[("ada", 700)])
    return group_id


async def test_no_filter_finds_every_live_expense_newest_date_first(
    pool: asyncpg.Pool, trip: str
) -> None:
    """The deleted one and the other group's are left out; the order is by date."""
    assert await found(pool, trip) == [
        "Museum",
        "Rent_march",
        "50% off pizza",
        "Pizza night",
        "Taxi",
    ]


async def test_search_by_text_ignores_case_and_takes_wildcards_literally(
    pool: asyncpg.Pool, trip: str
) -> None:
    """Upper case finds both pizzas; "%", "_" and the escape character match only
    themselves, never anything."""
    assert await found(pool, trip, text="PIZZA") == ["50% off pizza", "Pizza night"]
    assert await found(pool, trip, text="50%") == ["50% off pizza"]
    assert await found(pool, trip, text="%") == ["50% off pizza"]
    assert await found(pool, trip, text="i_z") == []  # as a wildcard: both pizzas
    assert await found(pool, trip, text="nt_m") == ["Rent_march"]
    assert await found(pool, trip, text="_") == ["Rent_march"]
    assert await found(pool, trip, text="\\") == []
    await add(pool, trip, "C:\\temp_1%", 5, day=date(2026, 4, 1))
    assert await found(pool, trip, text="\\") == ["C:\\temp_1%"]
    assert await found(pool, trip, text=":\\t") == ["C:\\temp_1%"]
    assert await found(pool, trip, text="p_1%") == ["C:\\temp_1%"]


async def test_search_by_person_finds_what_they_paid_or_share(
    pool: asyncpg.Pool, trip: str
) -> None:
    """cy only paid the rent; bo shares all but the taxi; nobody else is found."""
    assert await found(pool, trip, person="cy") == ["Rent_march"]
    assert await found(pool, trip, person="bo") == [
        "Museum",
        "Rent_march",
        "50% off pizza",
        "Pizza night",
    ]
    assert await found(pool, trip, person="dee") == []


async def test_search_by_category_currency_dates_and_amounts(pool: asyncpg.Pool, trip: str) -> None:
    """Each filter alone, the dates and amounts inclusive at both ends, and together."""
    assert await found(pool, trip, category="food") == ["50% off pizza", "Pizza night"]
    assert await found(pool, trip, currency="USD") == ["Taxi"]
    assert await found(pool, trip, date_from=date(2026, 1, 20), date_to=date(2026, 3, 1)) == [
        "Rent_march",
        "50% off pizza",
    ]
    assert await found(pool, trip, date_to=date(2025, 12, 31)) == ["Taxi"]
    assert await found(pool, trip, amount_min=1200, amount_max=2500) == [
        "50% off pizza",
        "Taxi",
    ]
    assert await found(pool, trip, amount_min=90001) == []
    assert await found(
        pool, trip, text="pizza", category="food", amount_max=1200, person="bo", currency="EUR"
    ) == ["50% off pizza"]


async def test_a_filter_made_from_what_was_typed_searches_the_same(
    pool: asyncpg.Pool, trip: str
) -> None:
    """search_filter with the group's own categories and members, then the search."""
    criteria = search_filter(
        members={"ada", "bo", "cy"},
        categories=known_categories(await store.categories(pool, trip)),
        text="  pizza ",
        category="FOOD",
        date_from="2026-01-15",
    )
    rows = await store.search_expenses(pool, trip, criteria, 10, None)
    assert [row.description for row in rows] == ["50% off pizza"]
    assert rows[0].payers == [("ada", 1200)]
    assert rows[0].shares == [("ada", 600), ("bo", 600)]
    assert await store.categories(pool, trip) == ["food", "fun", "rent", "transport"]


async def test_pages_walk_every_match_once_in_order(pool: asyncpg.Pool) -> None:
    """Twenty expenses, many on one day and some at one time: pages of three, each after
    the last one's cursor, give each expense once, in (date, created, id) order, newest
    first; an expense added meanwhile on an older page's side does not shift the rest."""
    group_id = await make_group(pool, "ada", "bo")
    made = []
    for n in range(20):
        made.append(
            await add(
                pool,
                group_id,
                f"item {n}",
                100 + n,
                day=date(2026, 1, 1) + timedelta(days=n % 3),
                created=NOW + timedelta(seconds=n % 4),
                expense_id=f"e{n:02d}",
            )
        )
    expected = [
        e.id for e in sorted(made, key=lambda e: (e.spent_on, e.created_at, e.id), reverse=True)
    ]
    seen: list[str] = []
    cursor: SearchCursor | None = None
    for _ in range(10):
        page = await store.search_expenses(pool, group_id, SearchFilter(), 3 + 1, cursor)
        seen += [e.id for e in page[:3]]
        if len(page) <= 3:
            break
        # what the handler gives out and reads back
        cursor = SearchCursor.decode(store.cursor_after(page[2]).encode())
        if len(seen) == 3:
            # newest of all: lands before the cursor, so it is not on the following pages
            await add(pool, group_id, "late", 1, day=date(2026, 2, 1), expense_id="late")
    assert seen == expected


async def test_totals_by_category_for_the_group_and_for_a_person(
    pool: asyncpg.Pool, trip: str
) -> None:
    """The group's sums per currency and category, and bo's own shares of them (the odd
    minor unit of the museum is ada's); the deleted expense and other group count not."""
    group = await store.totals_by_category(pool, trip, SearchFilter())
    assert group == [
        TotalRow("EUR", "food", 4200, 2),
        TotalRow("EUR", "fun", 1001, 1),
        TotalRow("EUR", "rent", 90000, 1),
        TotalRow("USD", "transport", 2500, 1),
    ]
    bo = await store.totals_by_category(pool, trip, SearchFilter(), share_of="bo")
    assert bo == [
        TotalRow("EUR", "food", 2100, 2),
        TotalRow("EUR", "fun", 500, 1),
        TotalRow("EUR", "rent", 45000, 1),
    ]
    # cy paid the rent but shares nothing: no share of their own
    assert await store.totals_by_category(pool, trip, SearchFilter(), share_of="cy") == []
    food_in_january = SearchFilter(category="food", date_to=date(2026, 1, 15))
    assert await store.totals_by_category(pool, trip, food_in_january) == [
        TotalRow("EUR", "food", 3000, 1)
    ]


async def test_totals_by_month_make_a_zero_filled_insight(pool: asyncpg.Pool, trip: str) -> None:
    """Sums per currency and month from the store; the insight fills in February (nothing
    spent) and adds up to the group's total with percents of 100."""
    rows = await store.totals_by_month(pool, trip, SearchFilter(currency="EUR"))
    assert rows == [
        TotalRow("EUR", "2026-01", 4200, 2),
        TotalRow("EUR", "2026-03", 91001, 2),
    ]
    criteria = SearchFilter(currency="EUR")
    view = insight(
        await store.totals_by_category(pool, trip, criteria), rows, criteria, primary="EUR"
    )
    (months,) = view.by_month
    assert [(p.key, p.amount, p.percent) for p in months.slices] == [
        ("2026-01", 4200, 4),
        ("2026-02", 0, 0),
        ("2026-03", 91001, 96),
    ]
    assert months.total == view.by_category[0].total == 95201
    ada = await store.totals_by_month(pool, trip, SearchFilter(), share_of="ada")
    assert ada == [
        TotalRow("EUR", "2026-01", 2100, 2),
        TotalRow("EUR", "2026-03", 45501, 2),
        TotalRow("USD", "2025-12", 2500, 1),
    ]


async def test_the_proposed_index_serves_a_large_groups_search_without_a_sort(
    pool: asyncpg.Pool,
) -> None:
    """With 30,000 expenses in one group (and others beside it), a search's first and next
    pages read the proposed index backwards to the limit: no sequential scan, no sort."""
    group_id = await make_group(pool, "ada", "bo")
    other = await make_group(pool, "cy")
    await pool.execute(
        "INSERT INTO splits_expenses (id, group_id, description, amount, currency, spent_on,"
        " category, split_mode, split_input, created_by, created_at, updated_at)"
        " SELECT $1 || n, CASE WHEN n % 10 = 0 THEN $2 ELSE $1 END, 'thing ' || n,"
        " 100 + n, 'EUR', date '2020-01-01' + (n % 2000), (ARRAY['food','rent','fun'])[n % 3 + 1],"
        " 'equal', $3::jsonb, 'ada', $4, $4 FROM generate_series(1, 30000) AS n",
        group_id,
        other,
        json.dumps([]),
        NOW,
    )
    await pool.execute(PROPOSED_INDEX)
    await pool.execute("ANALYZE splits_expenses")
    cursor = SearchCursor(date(2024, 1, 1), NOW, "x")
    for criteria, after in (
        (SearchFilter(), None),
        (SearchFilter(), cursor),
        (SearchFilter(text="thing 1", amount_min=500), cursor),
        (SearchFilter(date_from=date(2021, 1, 1), date_to=date(2021, 6, 30)), None),
    ):
        plan = await explain(pool, group_id, criteria, after)
        assert "splits_expenses_by_day" in plan, plan
        assert "Seq Scan" not in plan, plan
        assert "Sort" not in plan, plan
    rows = await store.search_expenses(pool, group_id, SearchFilter(), 51, None)
    assert len(rows) == 51
    assert rows[0].spent_on >= rows[-1].spent_on


async def explain(
    pool: asyncpg.Pool, group_id: str, criteria: SearchFilter, cursor: SearchCursor | None
) -> str:
    """The plan PostgreSQL chooses for the search's own statement (caught as it is sent)."""
    captured: list[tuple[str, tuple[object, ...]]] = []

    class Recorder:
        async def fetch(self, query: str, *args: object) -> list[object]:
            captured.append((query, args))
            return []

    await store.search_expenses(Recorder(), group_id, criteria, 51, cursor)  # type: ignore[arg-type]
    query, args = captured[0]
    lines = await pool.fetch("EXPLAIN " + query, *args)
    return "\n".join(line[0] for line in lines)
