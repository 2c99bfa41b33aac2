"""A user's personal data across groups: their export, and whether they may leave."""

from __future__ import annotations

from actors.runtime import Message
from actors.runtime.bounds import Id
from actors.splits.messages.fields import SplitsInput

# ── personal data: a user's export, and whether they may leave (issue 19) ─────────────

PERSONAL_ROWS_MAX = 2_000  # rows of each kind one DescribeMySplits answers at most


class DescribeMySplits(SplitsInput, frozen=True):
    """What splits keeps about the user across every group: their groups, the expenses
    they made or share in, their settlements and comments (each at most
    PERSONAL_ROWS_MAX, oldest first; `truncated` says more were left out), and who owes
    whom with them in each group. `records` False: the balances and debts only (what an
    account deletion checks). Replies MySplits."""

    user_id: Id
    records: bool = True


class MyGroup(Message, frozen=True):
    group_id: str
    name: str
    currency: str
    joined_at: str
    archived: bool


class MyExpense(Message, frozen=True):
    """An expense the user made or shares in, with what they paid and owe of it."""

    expense_id: str
    group_id: str
    description: str
    amount: int
    currency: str
    spent_on: str
    category: str
    created_by: str
    created_at: str
    deleted: bool
    paid: int
    owed: int


class MySettlement(Message, frozen=True):
    settlement_id: str
    group_id: str
    from_user_id: str
    to_user_id: str
    amount: int
    currency: str
    method: str
    status: str
    created_at: str


class MyComment(Message, frozen=True):
    comment_id: str
    group_id: str
    expense_id: str
    body: str
    created_at: str


class MyDebt(Message, frozen=True):
    """What settling up in the group would move between the user and `other_user_id`:
    `amount` > 0 the user owes them, < 0 they owe the user."""

    group_id: str
    group_name: str
    other_user_id: str
    currency: str
    amount: int


class MyGroupBalance(Message, frozen=True):
    group_id: str
    group_name: str
    currency: str
    net: int  # > 0: owed to the user


class MySplits(Message, frozen=True):
    groups: list[MyGroup]
    expenses: list[MyExpense]
    settlements: list[MySettlement]
    comments: list[MyComment]
    balances: list[MyGroupBalance]
    debts: list[MyDebt]
    truncated: bool = False
