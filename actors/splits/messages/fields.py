"""The splits messages' shared ground: field bounds, the shard key (`splits_key`), the
settlement reference, and `SplitsInput`, the base of what the splits actor handles."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from actors.auth.messages import EMAIL_MAX
from actors.runtime import Message
from actors.runtime.bounds import check_bounds
from actors.splits.errors import InvalidExpense

SplitModeName = Literal["equal", "exact", "percent", "shares", "adjustment"]
Recurrence = Literal["weekly", "monthly", "yearly"]
SettlementMethod = Literal["wallet", "cash"]
SETTLEMENT_REFERENCE = (
    "splits:"  # payments' `reference` of a wallet settlement: splits:<group>:<id>
)
LINK_SECONDS_MIN, LINK_SECONDS_MAX = 3_600, 30 * 86_400  # a join link lives 1 h to 30 days
MAX_MEMBERS = 1_000
DESCRIPTION_MAX = 200
COMMENT_MAX = 2_000
CATEGORY_MAX = 40
GROUP_NAME_MAX = 100
EMAIL_TEXT_MAX = 2 * EMAIL_MAX  # before the address is trimmed and checked
VERSION_MAX = 64  # a kept balances view's version (hot.py makes them)

# Bounds of the fields below (actors/runtime/bounds.py checks them wherever a message is
# made or decoded). Amounts are bounded in size here, and by the rules in meaning (an
# expense is 1 to MAX_AMOUNT; an adjustment may be negative).
Currency = Annotated[str, Meta(min_length=3, max_length=3)]
GroupName = Annotated[str, Meta(max_length=GROUP_NAME_MAX)]
Description = Annotated[str, Meta(max_length=DESCRIPTION_MAX)]
Category = Annotated[str, Meta(max_length=CATEGORY_MAX)]
CommentText = Annotated[str, Meta(max_length=COMMENT_MAX)]
Email = Annotated[str, Meta(max_length=EMAIL_TEXT_MAX)]
PlaceholderName = Annotated[str, Meta(max_length=2 * GROUP_NAME_MAX)]  # before trimming


def splits_key(message: Any) -> str | None:
    """Shard key: the group; payments' events by the group in their reference; else the
    user (reads across groups, sign-ups)."""
    group_id = getattr(message, "group_id", None)
    if group_id:
        return str(group_id)
    reference = getattr(message, "reference", None) or ""
    if reference.startswith(SETTLEMENT_REFERENCE):
        return reference.split(":")[1]
    user_id = getattr(message, "user_id", None) or getattr(message, "from_user_id", None)
    return str(user_id) if user_id else None


def settlement_reference(group_id: str, settlement_id: str) -> str:
    return f"{SETTLEMENT_REFERENCE}{group_id}:{settlement_id}"


class SplitsInput(Message, frozen=True):
    """What the splits actor handles (commands, its timers, the events it publishes): the
    fields' bounds hold wherever one is made or decoded, or it is InvalidExpense naming the
    field (`$.date`)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidExpense)
