"""Where a notification in the web app leads: from its kind and the ids it carries."""

from __future__ import annotations

import pytest

from splitgo.pages.alerts import CATEGORIES, about


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            "ChatMention",
            {"conversation_id": "c1", "message_id": "m1"},
            ("/messages/c1", "Open the conversation"),
        ),
        (
            "ExpenseAdded",
            {"group_id": "g", "expense_id": "e"},
            ("/groups/g/expenses/e", "Open the expense"),
        ),
        ("ExpenseDeleted", {"group_id": "g", "expense_id": "e"}, ("/groups/g", "Open the group")),
        ("RideOffered", {"ride_id": "r"}, ("/driver", "See the offer")),
        ("TopUpSucceeded", {"top_up_id": "t"}, ("/wallet", "Open your wallet")),
        ("Unknown", {}, None),
    ],
)
def test_a_notice_leads_to_its_subject(
    kind: str, data: dict[str, str], expected: tuple[str, str] | None
) -> None:
    """A chat notice opens its conversation; the others their expense, group, ride or wallet."""
    assert about(kind, data) == expected


def test_the_chat_category_has_words_on_the_preferences_page() -> None:
    """The chat row of the preferences is labelled and explained."""
    label, hint = CATEGORIES["chat"]
    assert label == "Chat"
    assert "Mentions" in hint
