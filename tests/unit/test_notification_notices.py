"""Who hears about each event and what every channel says (actors/notifications/notices.py)."""

from __future__ import annotations

import pytest

from actors.auth.messages import EmailVerificationRequested, PasswordChanged, TelegramLinked
from actors.notifications.notices import (
    CATEGORIES,
    CHANNELS,
    DEFAULT_PREFERENCES,
    EVENTS,
    notices_for,
)
from actors.payments.messages import TopUpSucceeded, TransferCompleted, format_money
from actors.splits.messages import (
    ExpenseAdded,
    ExpenseDeleted,
    MemberAdded,
    SettlementFailed,
    SettlementRecorded,
    Share,
)

URL = "https://splitgo.example"


def test_every_category_has_a_default_for_every_channel() -> None:
    """Preferences start from a full table: each category says on or off for each channel."""
    assert set(DEFAULT_PREFERENCES) == set(CATEGORIES)
    for switches in DEFAULT_PREFERENCES.values():
        assert set(switches) == set(CHANNELS)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1250, "EUR", "12.50 EUR"),
        (-5, "EUR", "-0.05 EUR"),
        (1200, "JPY", "1200 JPY"),
        (1, "KWD", "0.001 KWD"),
    ],
)
def test_money_reads_in_the_currency_s_own_minor_units(
    amount: int, currency: str, shown: str
) -> None:
    """Amounts in notices read with integer arithmetic and the currency's exponent (the one
    formatter, beside the currency table)."""
    assert format_money(amount, currency) == shown


def test_an_expense_tells_every_participant_but_its_creator() -> None:
    """Each other participant hears their own share; the creator hears nothing."""
    event = ExpenseAdded(
        group_id="g",
        group_name="Trip",
        expense_id="e",
        description="Dinner",
        amount=9000,
        currency="EUR",
        created_by="bob",
        shares=[Share(user_id="amy", amount=6000), Share(user_id="bob", amount=3000)],
    )
    [notice] = notices_for(event, public_url=URL)
    assert notice.user_id == "amy"
    assert notice.category == "splits"
    assert "60.00 EUR" in notice.text
    assert not notice.security


def test_user_text_is_escaped_for_html_and_telegram() -> None:
    """A description with markup is shown as text in email and Telegram, never as markup."""
    event = ExpenseAdded(
        group_id="g",
        group_name="<b>Trip</b>",
        expense_id="e",
        description="<script>x</script>",
        amount=100,
        currency="EUR",
        created_by="bob",
        shares=[Share(user_id="amy", amount=100)],
    )
    [notice] = notices_for(event, public_url=URL)
    assert "<script>" not in notice.html
    assert "<script>" not in notice.telegram
    assert "&lt;script&gt;" in notice.telegram


def test_security_messages_are_marked_and_tokens_go_by_mail_only() -> None:
    """Verification links go by email only; a password change and a Telegram link are
    security messages that ignore preferences."""
    [verify] = notices_for(
        EmailVerificationRequested(user_id="u", email="u@x.org", name="U", token="t0k"),
        public_url=URL,
    )
    assert verify.security
    assert verify.only == ("email",)
    assert verify.email_to == "u@x.org"
    [changed] = notices_for(
        PasswordChanged(user_id="u", email="u@x.org", telegram_chat_id=7), public_url=URL
    )
    assert changed.security
    assert changed.only is None
    assert changed.telegram_chat_id == 7
    [linked] = notices_for(TelegramLinked(user_id="u", chat_id=9), public_url=URL)
    assert linked.security


def test_a_p2p_transfer_tells_both_sides_and_other_kinds_none() -> None:
    """The payer hears it was sent and the payee it arrived; a settlement is left to splits."""
    p2p = TransferCompleted(
        transfer_id="t",
        from_user_id="amy",
        to_user_id="bob",
        amount=500,
        currency="EUR",
        kind="p2p",
    )
    sent, received = notices_for(p2p, public_url=URL)
    assert (sent.user_id, sent.kind) == ("amy", "TransferSent")
    assert (received.user_id, received.kind) == ("bob", "TransferReceived")
    settlement = TransferCompleted(
        transfer_id="t",
        from_user_id="amy",
        to_user_id="bob",
        amount=500,
        currency="EUR",
        kind="settlement",
    )
    assert notices_for(settlement, public_url=URL) == []


def test_settlements_tell_both_people_and_failures_the_payer() -> None:
    """A recorded settlement reaches payer and payee; a failed one only the payer, with why."""
    recorded = SettlementRecorded(
        group_id="g",
        group_name="Trip",
        settlement_id="s",
        from_user_id="amy",
        to_user_id="bob",
        amount=2500,
        currency="EUR",
        method="wallet",
    )
    assert [n.user_id for n in notices_for(recorded, public_url=URL)] == ["amy", "bob"]
    failed = SettlementFailed(
        group_id="g",
        group_name="Trip",
        settlement_id="s",
        from_user_id="amy",
        to_user_id="bob",
        amount=2500,
        currency="EUR",
        code="insufficient_funds",
        message="Not enough money.",
    )
    [notice] = notices_for(failed, public_url=URL)
    assert notice.user_id == "amy"
    assert "Not enough money." in notice.text


def test_membership_deletion_and_top_ups_have_notices() -> None:
    """Being added to a group, a deleted expense and a top-up each tell the right person."""
    [added] = notices_for(
        MemberAdded(group_id="g", group_name="Trip", member_user_id="cy", added_by="amy"),
        public_url=URL,
    )
    assert added.user_id == "cy"
    deleted = ExpenseDeleted(
        group_id="g",
        group_name="Trip",
        expense_id="e",
        description="Taxi",
        deleted_by="amy",
        participants=["amy", "bob"],
    )
    assert [n.user_id for n in notices_for(deleted, public_url=URL)] == ["bob"]
    [top_up] = notices_for(
        TopUpSucceeded(top_up_id="t", user_id="amy", amount=2000, currency="EUR"), public_url=URL
    )
    assert top_up.category == "money"


def test_every_handled_event_renders() -> None:
    """The actor subscribes to exactly the events that have notices."""
    assert len(EVENTS) == len(set(EVENTS)) >= 14


def test_an_unknown_event_is_refused() -> None:
    """An event with no notice is a programming error, not a silent drop."""
    with pytest.raises(TypeError, match="no notice"):
        notices_for(Share(user_id="x", amount=1), public_url=URL)
