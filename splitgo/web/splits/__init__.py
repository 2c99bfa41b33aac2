"""The Splits routes of API.md: groups, members and invites, expenses in every split mode,
balances, the settle-up plan, settlements (cash or through the wallet), the activity feed,
comments and the CSV export.

`bodies` holds the request bodies and their conversion into the splits actor's commands
(no IO); `groups`, `expenses`, `settlements` and `history` hold the routes; `asking` how
they ask the actor. `routes` is every route, in the order the API lists them.
"""

from __future__ import annotations

from aiohttp import web

from splitgo.web.splits import (
    attachments,
    expenses,
    groups,
    history,
    imports,
    invites,
    links,
    recurring,
    search,
    settlements,
    summary,
)
from splitgo.web.splits.asking import json_path_problem
from splitgo.web.splits.bodies import (
    ExpenseBody,
    ExpensePatch,
    GroupBody,
    MemberBody,
    SettlementBody,
    add_expense_message,
    edit_expense_message,
    group_message,
    member_target,
    percent_bp,
    settlement_message,
)
from splitgo.web.splits.history import attachment
from splitgo.web.splits.settlements import (
    failed_settlement_problem,
)

routes: tuple[web.AbstractRouteDef, ...] = (
    *groups.routes,
    *expenses.routes,
    *settlements.routes,
    *history.routes,
    *summary.routes,
    *invites.routes,
    *links.routes,
    *search.routes,
    *attachments.routes,
    *recurring.routes,
    *imports.routes,
)

__all__ = [
    "ExpenseBody",
    "ExpensePatch",
    "GroupBody",
    "MemberBody",
    "SettlementBody",
    "add_expense_message",
    "attachment",
    "edit_expense_message",
    "failed_settlement_problem",
    "group_message",
    "json_path_problem",
    "member_target",
    "percent_bp",
    "routes",
    "settlement_message",
]
