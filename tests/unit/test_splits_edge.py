"""The splits edge's body → command conversion, without a server: percents to basis points,
payers, share lines per split mode, mixed currencies, field paths of problems."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import pytest

from actors.runtime import DomainError
from actors.runtime.errors import RemoteError
from actors.splits.messages import (
    AddExpense,
    ExpenseView,
    GroupView,
    Invite,
    Member,
    Payer,
    SettlementView,
    Share,
    ShareLine,
)
from actors.splits.shares import InvalidSplit
from splitgo.web.problems import ProblemError, to_json, validation_problem
from splitgo.web.splits import (
    ExpenseBody,
    ExpensePatch,
    GroupBody,
    MemberBody,
    SettlementBody,
    add_expense_message,
    attachment,
    edit_expense_message,
    failed_settlement_problem,
    group_message,
    json_path_problem,
    member_target,
    percent_bp,
    settlement_message,
)

T = TypeVar("T")

ALICE, BOB, CAROL = "alice", "bob", "carol"


def decode(body: dict[str, Any], body_type: type[T]) -> T:
    """Decode as the edge does: a validation failure is the edge's 422 problem."""
    try:
        return msgspec.json.decode(msgspec.json.encode(body), type=body_type)
    except msgspec.ValidationError as error:
        raise validation_problem(error) from None


def expense(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": "Dinner",
        "amount": 9000,
        "currency": "EUR",
        "paid_by": ALICE,
        "split": {"mode": "equal", "shares": [{"user_id": ALICE}, {"user_id": BOB}]},
    }
    body.update(changes)
    return body


def convert(body: dict[str, Any]) -> AddExpense:
    return add_expense_message(
        decode(body, ExpenseBody), group_id="g1", user_id=ALICE, expense_id="e1"
    )


def refused(body: dict[str, Any]) -> ProblemError:
    with pytest.raises(ProblemError) as caught:
        convert(body)
    return caught.value


def fields(problem: ProblemError) -> list[str]:
    return [error.field for error in problem.errors]


def current_expense(**changes: Any) -> ExpenseView:
    base: dict[str, Any] = {
        "id": "e1",
        "group_id": "g1",
        "description": "Dinner",
        "amount": 9000,
        "currency": "EUR",
        "date": "2024-05-01",
        "category": "general",
        "paid_by": [Payer(user_id=ALICE, amount=9000)],
        "split_mode": "equal",
        "shares": [Share(user_id=ALICE, amount=4500), Share(user_id=BOB, amount=4500)],
        "created_by": ALICE,
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
        "version": 1,
    }
    base.update(changes)
    return ExpenseView(**base)


@pytest.mark.parametrize(
    ("percent", "basis_points"),
    [(0, 0), (100, 10000), (33.33, 3333), (12.5, 1250), (0.01, 1), (66.67, 6667), (50, 5000)],
)
def test_percent_becomes_exact_basis_points(percent: float, basis_points: int) -> None:
    """A percent with at most two decimals converts exactly to basis points."""
    assert percent_bp(percent, "$.p") == basis_points


@pytest.mark.parametrize("percent", [33.333, 0.001, 100.01, -1, 1e300, float("nan")])
def test_percent_out_of_range_or_too_precise_is_refused(percent: float) -> None:
    """Three decimals, a negative, above 100 or NaN is a 422 naming the field."""
    with pytest.raises(ProblemError) as caught:
        percent_bp(percent, "$.split.shares[0].percent")
    assert caught.value.status == 422
    assert fields(caught.value) == ["$.split.shares[0].percent"]


def test_percent_split_converts_every_line_to_basis_points() -> None:
    """A percent split reaches the actor as percent_bp on every share line."""
    message = convert(
        expense(
            split={
                "mode": "percent",
                "shares": [
                    {"user_id": ALICE, "percent": 33.34},
                    {"user_id": BOB, "percent": 33.33},
                    {"user_id": CAROL, "percent": 33.33},
                ],
            }
        )
    )
    assert message.split_mode == "percent"
    assert [line.percent_bp for line in message.shares] == [3334, 3333, 3333]
    assert all(line.amount is None and line.shares is None for line in message.shares)


def test_too_precise_percent_in_a_body_names_its_line() -> None:
    """33.333 % on the second line is a 422 naming `$.split.shares[1].percent`."""
    problem = refused(
        expense(
            split={
                "mode": "percent",
                "shares": [{"user_id": ALICE, "percent": 50}, {"user_id": BOB, "percent": 33.333}],
            }
        )
    )
    assert fields(problem) == ["$.split.shares[1].percent"]


def test_paid_by_a_user_id_pays_the_whole_amount() -> None:
    """`paid_by: "<id>"` becomes one payer of the full amount."""
    message = convert(expense(paid_by=BOB))
    assert message.paid_by == [Payer(user_id=BOB, amount=9000)]
    assert message.shares == [ShareLine(user_id=ALICE), ShareLine(user_id=BOB)]
    assert (message.group_id, message.user_id, message.expense_id) == ("g1", ALICE, "e1")
    assert message.category == "general"
    assert message.date is None


def test_paid_by_lines_become_several_payers() -> None:
    """A list of payer lines becomes the same payers, in order."""
    message = convert(
        expense(
            paid_by=[
                {"user_id": ALICE, "amount": 6000},
                {"user_id": BOB, "amount": 3000, "currency": "EUR"},
            ]
        )
    )
    assert message.paid_by == [Payer(user_id=ALICE, amount=6000), Payer(user_id=BOB, amount=3000)]


@pytest.mark.parametrize(
    "paid_by", [[], [{"user_id": ALICE, "amount": 6000}, {"user_id": BOB, "amount": 2999}]]
)
def test_payers_must_pay_the_whole_amount(paid_by: list[dict[str, Any]]) -> None:
    """No payer, or payers not adding up to the amount, is a 422 naming `$.paid_by`."""
    assert fields(refused(expense(paid_by=paid_by))) == ["$.paid_by"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"paid_by": [{"user_id": ALICE, "amount": 9000, "currency": "USD"}]},
            "$.paid_by[0].currency",
        ),
        (
            {
                "split": {
                    "mode": "exact",
                    "shares": [
                        {"user_id": ALICE, "amount": 9000},
                        {"user_id": BOB, "amount": 0, "currency": "GBP"},
                    ],
                }
            },
            "$.split.shares[1].currency",
        ),
    ],
)
def test_a_line_in_another_currency_is_mixed_currencies(
    changes: dict[str, Any], field: str
) -> None:
    """A payer or share line in another currency is a 422 `mixed_currencies` naming it."""
    problem = refused(expense(**changes))
    assert (problem.status, problem.code) == (422, "mixed_currencies")
    assert fields(problem) == [field]


@pytest.mark.parametrize(
    ("amount", "message_part"),
    [(12.5, "int"), ("90", "int"), (0, ">= 1"), (-5, ">= 1"), (10**12 + 1, "<="), (True, "int")],
)
def test_bad_amounts_name_the_amount(amount: Any, message_part: str) -> None:
    """A float, a string, zero, a negative or a huge amount is a 422 naming `$.amount`."""
    problem = refused(expense(amount=amount))
    assert (problem.status, problem.code) == (422, "validation_error")
    assert fields(problem) == ["$.amount"]
    assert message_part in problem.errors[0].message


def test_missing_and_unknown_fields_are_refused() -> None:
    """A missing field or one the body does not know is a 422 naming where it is."""
    body = expense()
    del body["currency"]
    assert "currency" in refused(body).detail
    problem = refused(expense(split={"mode": "equal", "shares": [{"user_id": ALICE, "x": 1}]}))
    assert fields(problem) == ["$.split.shares[0]"]
    assert "x" in problem.errors[0].message
    assert fields(refused(expense(gratuity=3))) == ["$"]
    assert fields(refused(expense(split={"mode": "halves"}))) == ["$.split.mode"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"currency": "XXX"}, "$.currency"),
        ({"currency": "eur"}, "$.currency"),
        ({"description": ""}, "$.description"),
        ({"description": "   "}, "$.description"),
        ({"description": "x" * 201}, "$.description"),
        ({"date": "2024-02-30"}, "$.date"),
        ({"date": "yesterday"}, "$.date"),
        ({"category": ""}, "$.category"),
        ({"recurrence": "daily"}, "$.recurrence"),
    ],
)
def test_bad_expense_fields_are_named(changes: dict[str, Any], field: str) -> None:
    """Every bad field of an expense is a 422 naming it."""
    assert fields(refused(expense(**changes))) == [field]


@pytest.mark.parametrize(
    ("split", "field"),
    [
        ({"mode": "exact", "shares": [{"user_id": ALICE}]}, "$.split.shares[0].amount"),
        ({"mode": "percent", "shares": [{"user_id": ALICE}]}, "$.split.shares[0].percent"),
        ({"mode": "shares", "shares": [{"user_id": ALICE}]}, "$.split.shares[0].shares"),
        (
            {"mode": "exact", "shares": [{"user_id": ALICE, "percent": 100}]},
            "$.split.shares[0].percent",
        ),
        (
            {"mode": "equal", "shares": [{"user_id": ALICE, "amount": 5}]},
            "$.split.shares[0].amount",
        ),
        (
            {"mode": "exact", "shares": [{"user_id": ALICE, "amount": -1}]},
            "$.split.shares[0].amount",
        ),
        (
            {"mode": "shares", "shares": [{"user_id": ALICE, "shares": -1}]},
            "$.split.shares[0].shares",
        ),
        ({"mode": "exact", "shares": []}, "$.split.shares"),
        ({"mode": "percent"}, "$.split.shares"),
    ],
)
def test_share_lines_must_carry_what_their_mode_reads(split: dict[str, Any], field: str) -> None:
    """A line missing its mode's value, or carrying another mode's, is a 422 naming it."""
    assert fields(refused(expense(split=split))) == [field]


def test_every_mode_reaches_the_actor_with_its_value() -> None:
    """exact, shares, adjustment and an equal split without lines convert as given."""
    exact = convert(
        expense(
            split={
                "mode": "exact",
                "shares": [{"user_id": ALICE, "amount": 5000}, {"user_id": BOB, "amount": 4000}],
            }
        )
    )
    assert exact.shares == [
        ShareLine(user_id=ALICE, amount=5000),
        ShareLine(user_id=BOB, amount=4000),
    ]
    weights = convert(
        expense(
            split={
                "mode": "shares",
                "shares": [{"user_id": ALICE, "shares": 2}, {"user_id": BOB, "shares": 1}],
            }
        )
    )
    assert [line.shares for line in weights.shares] == [2, 1]
    adjusted = convert(
        expense(
            split={
                "mode": "adjustment",
                "shares": [{"user_id": ALICE, "amount": -500}, {"user_id": BOB}],
            }
        )
    )
    assert adjusted.shares == [ShareLine(user_id=ALICE, amount=-500), ShareLine(user_id=BOB)]
    everyone = convert(expense(split={"mode": "equal"}))
    assert (everyone.split_mode, everyone.shares) == ("equal", [])


def test_optional_expense_fields_pass_through() -> None:
    """date, category and recurrence reach the actor unchanged; the description is trimmed."""
    message = convert(
        expense(description="  Rent ", date="2024-02-29", category="home", recurrence="monthly")
    )
    assert (message.description, message.date, message.category, message.recurrence) == (
        "Rent",
        "2024-02-29",
        "home",
        "monthly",
    )


def test_edit_with_a_new_amount_moves_a_sole_payer_along() -> None:
    """A new amount alone keeps the sole payer paying all of it; nothing else is sent."""
    patch = decode({"amount": 12000}, ExpensePatch)
    message = edit_expense_message(patch, current_expense(), user_id=BOB)
    assert message.amount == 12000
    assert message.paid_by == [Payer(user_id=ALICE, amount=12000)]
    assert (message.group_id, message.expense_id, message.user_id) == ("g1", "e1", BOB)
    assert message.split_mode is None
    assert message.shares is None
    assert message.description is None


def test_edit_paid_by_id_pays_the_current_amount_and_recurrence_can_stop() -> None:
    """paid_by as an id pays the expense's current amount; `recurrence: none` stops it."""
    patch = decode(
        {
            "paid_by": BOB,
            "recurrence": "none",
            "split": {
                "mode": "percent",
                "shares": [{"user_id": ALICE, "percent": 25}, {"user_id": BOB, "percent": 75}],
            },
        },
        ExpensePatch,
    )
    message = edit_expense_message(patch, current_expense(), user_id=ALICE)
    assert message.paid_by == [Payer(user_id=BOB, amount=9000)]
    assert message.recurrence == "none"
    assert message.split_mode == "percent"
    assert [line.percent_bp for line in message.shares or []] == [2500, 7500]
    assert message.amount is None


def test_edit_lines_follow_the_expense_currency() -> None:
    """In an edit, line currencies are checked against the new or current currency."""
    patch = decode(
        {"paid_by": [{"user_id": ALICE, "amount": 9000, "currency": "USD"}]}, ExpensePatch
    )
    with pytest.raises(ProblemError) as caught:
        edit_expense_message(patch, current_expense(), user_id=ALICE)
    assert caught.value.code == "mixed_currencies"
    patch = decode(
        {"currency": "USD", "paid_by": [{"user_id": ALICE, "amount": 9000, "currency": "USD"}]},
        ExpensePatch,
    )
    assert edit_expense_message(patch, current_expense(), user_id=ALICE).currency == "USD"


def test_group_name_is_trimmed_and_currency_known() -> None:
    """The group name is trimmed to 1..100 characters and the currency must be one we keep."""
    message = group_message(
        decode({"name": "  Trip  ", "currency": "EUR"}, GroupBody), group_id="g", user_id=ALICE
    )
    assert (message.name, message.currency, message.user_id) == ("Trip", "EUR", ALICE)
    for body, field in [
        ({"name": "   ", "currency": "EUR"}, "$.name"),
        ({"name": "x" * 101, "currency": "EUR"}, "$.name"),
        ({"name": "Trip", "currency": "ABC"}, "$.currency"),
    ]:
        with pytest.raises(ProblemError) as caught:
            group_message(decode(body, GroupBody), group_id="g", user_id=ALICE)
        assert fields(caught.value) == [field]


def test_a_member_is_named_by_exactly_one_of_user_id_or_email() -> None:
    """user_id or a normalised email; both, neither or a malformed email is a 422."""
    assert member_target(MemberBody(user_id=BOB)) == ("user_id", BOB)
    assert member_target(MemberBody(email="  Bob@Example.COM ")) == ("email", "bob@example.com")
    for body, field in [
        (MemberBody(), "$.user_id"),
        (MemberBody(user_id=BOB, email="b@example.com"), "$.email"),
        (MemberBody(email="not-an-email"), "$.email"),
        (MemberBody(email="a@b"), "$.email"),
        (MemberBody(email="a b@example.com"), "$.email"),
    ]:
        with pytest.raises(ProblemError) as caught:
            member_target(body)
        assert fields(caught.value) == [field]


def test_a_settlement_names_someone_else() -> None:
    """Settling with yourself is a 422 naming `$.to_user_id`; a known currency is needed."""
    body = decode(
        {"to_user_id": BOB, "amount": 2500, "currency": "EUR", "method": "wallet"}, SettlementBody
    )
    message = settlement_message(body, group_id="g", user_id=ALICE, settlement_id="s")
    assert (message.to_user_id, message.amount, message.method) == (BOB, 2500, "wallet")
    with pytest.raises(ProblemError) as caught:
        settlement_message(body, group_id="g", user_id=BOB, settlement_id="s")
    assert fields(caught.value) == ["$.to_user_id"]
    with pytest.raises(ProblemError) as caught:
        decode(
            {"to_user_id": BOB, "amount": 1, "currency": "EUR", "method": "card"}, SettlementBody
        )
    assert fields(caught.value) == ["$.method"]


def test_actor_field_names_become_json_paths() -> None:
    """The actor's `split.shares[1].amount` is answered as `$.split.shares[1].amount`."""
    problem = json_path_problem(
        InvalidSplit("shares do not add up", field="split.shares[1].amount")
    )
    assert problem is not None
    assert (problem.status, problem.code) == (422, "invalid_split")
    assert fields(problem) == ["$.split.shares[1].amount"]
    remote = RemoteError(
        "bad",
        code="invalid_split",
        category="invalid",
        details={"field": "split.shares[0].percent_bp"},
    )
    problem = json_path_problem(remote)
    assert problem is not None
    assert fields(problem) == ["$.split.shares[0].percent"]
    assert json_path_problem(InvalidSplit("x", field="$.amount")) is None
    assert json_path_problem(InvalidSplit("x", field="group_id")) is None
    assert json_path_problem(DomainError("no field")) is None


def test_views_become_plain_json_without_tags() -> None:
    """Nested members and invites are plain dicts, with no `msg_type` anywhere."""
    group = GroupView(
        id="g",
        name="Trip",
        currency="EUR",
        created_by=ALICE,
        created_at="t",
        members=[Member(user_id=ALICE, joined_at="t")],
        invited=[Invite(email="c@example.com", invited_by=ALICE, invited_at="t")],
    )
    plain = to_json(group)
    assert plain["members"] == [
        {"user_id": ALICE, "joined_at": "t", "placeholder": False, "name": None}
    ]
    assert plain["invited"] == [
        {"email": "c@example.com", "invited_by": ALICE, "invited_at": "t", "id": None}
    ]
    assert "msg_type" not in msgspec.json.encode(plain).decode()


def test_a_failed_settlement_is_a_problem_with_its_code() -> None:
    """A failed wallet settlement answers 422 with the transfer's failure code and message."""
    view = SettlementView(
        id="s",
        group_id="g",
        from_user_id=ALICE,
        to_user_id=BOB,
        amount=2500,
        currency="EUR",
        method="wallet",
        status="failed",
        created_at="t",
        failure_code="insufficient_funds",
        failure_message="not enough money",
    )
    problem = failed_settlement_problem(view)
    assert (problem.status, problem.code, problem.detail) == (
        422,
        "insufficient_funds",
        "not enough money",
    )


def test_export_filenames_are_safe_in_a_header() -> None:
    """Quotes, slashes and spaces never reach the Content-Disposition header."""
    assert attachment("trip-2024.csv") == 'attachment; filename="trip-2024.csv"'
    assert attachment('a"b/c d.csv') == 'attachment; filename="a_b_c_d.csv"'
    assert attachment("") == 'attachment; filename="export.csv"'
