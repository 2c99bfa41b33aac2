"""The pure rules of account deletion: what stands in its way, said in words, and the
address a deleted account is left with."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actors.auth.deletion import refusal_reasons
from actors.auth.messages import EmailVerified, valid_email
from actors.auth.store.deletion import anonymous_email
from actors.payments.messages import Balance
from actors.splits.messages import MyDebt, MyGroupBalance

ANN = "11111111-1111-1111-1111-111111111111"


def debt(amount: int, other: str = ANN, group: str = "g1", name: str = "Trip") -> MyDebt:
    return MyDebt(
        group_id=group, group_name=name, other_user_id=other, currency="EUR", amount=amount
    )


def net(amount: int, group: str = "g1", name: str = "Trip") -> MyGroupBalance:
    return MyGroupBalance(group_id=group, group_name=name, currency="EUR", net=amount)


def test_an_empty_wallet_and_settled_groups_leave_nothing_in_the_way() -> None:
    """Zero everywhere: no reason, so the deletion goes ahead."""
    wallet = [Balance(currency="EUR", available=0, held=0)]
    assert refusal_reasons(wallet, [], [], {}) == []


def test_money_in_the_wallet_says_how_much_and_what_to_do() -> None:
    """12.50 EUR available and 3.00 EUR held are each a reason, in words."""
    wallet = [Balance(currency="EUR", available=1250, held=300)]
    assert refusal_reasons(wallet, [], [], {}) == [
        "Your wallet holds 12.50 EUR: withdraw or spend it first.",
        "3.00 EUR of your wallet is held for a ride: finish or cancel the ride first.",
    ]


def test_a_debt_names_the_person_the_amount_and_the_group() -> None:
    """Owing and being owed both say whom, how much and in which group."""
    reasons = refusal_reasons(
        [], [net(-500)], [debt(500), debt(-250, other="bob", name="Flat")], {ANN: "Ann"}
    )
    assert reasons == [
        "You owe Ann 5.00 EUR in Trip: settle up first.",
        "Another member owes you 2.50 EUR in Flat: settle up first (record their payment).",
    ]


def test_a_balance_no_payment_explains_is_said_itself() -> None:
    """A group balance with no planned payment is still a reason."""
    assert refusal_reasons([], [net(700, group="g2", name="Club")], [], {}) == [
        "Your balance in Club is 7.00 EUR: settle up first."
    ]


@given(
    available=st.integers(0, 10**9),
    held=st.integers(0, 10**9),
    owed=st.lists(st.integers(-(10**9), 10**9), max_size=5),
)
def test_nothing_in_the_way_exactly_when_everything_is_zero(
    available: int, held: int, owed: list[int]
) -> None:
    """The reasons are empty if and only if the wallet and every debt are zero (a zero
    debt is never planned: it is left out as the plan leaves it out)."""
    wallet = [Balance(currency="EUR", available=available, held=held)]
    debts = [debt(amount, group=f"g{i}") for i, amount in enumerate(owed) if amount]
    reasons = refusal_reasons(wallet, [], debts, {ANN: "Ann"})
    assert (reasons == []) == (available == 0 and held == 0 and not debts)
    assert len(reasons) == (available != 0) + (held != 0) + len(debts)


@given(st.uuids())
def test_a_deleted_account_is_left_an_address_nobody_can_have(user_id: object) -> None:
    """The address is valid as an email (the column's check holds), unique per account,
    and under .invalid, which no one can register or receive mail at."""
    address = anonymous_email(str(user_id))
    assert valid_email(address)
    assert address.endswith("@deleted.invalid")
    assert str(user_id) in address
    EmailVerified(user_id=str(user_id), email=address)  # within the messages' bounds
