"""The shell every page of one group shares (templates/group_layout.html).

A page of a group (its expenses, balances, activity, members; the expense and settle
pages) extends `group_layout.html` and renders it with `group_context`:

    context = await group_context(request, viewer, group_id)
    return await render(request, "x.html", {**context, "tab": "balances", ...})

The context holds `group` (the GetGroup reply as GET /api/v1/groups/{id} answers it, with
names beside the ids), `my_net` (the viewer's net in the group, one `{currency, net}` per
currency with a balance: > 0 owed to them, < 0 they owe; empty when settled), `title`,
`section` ("groups") and `tab` ("expenses" unless the page sets another). A page that
needs neither the member list nor the others' balances (the Expenses and Activity tabs)
renders with `header_context` instead: `group` is then the GetGroupHeader reply (with
`member_count`, no `members`), which a 1,000-member group answers in a fraction of the
time. To anyone who
is not a member the group does not exist: the splits actor's GroupNotFound, which the
pages' middleware answers with the 404 page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from aiohttp import web

from actors.splits.messages import (
    BalanceLine,
    BalancesView,
    GetBalances,
    GetGroup,
    GetGroupHeader,
    GroupHeader,
    GroupView,
)
from splitgo.pages.render import named
from splitgo.pages.sessions import Viewer
from splitgo.web.splits.asking import ask_splits

TABS = ("expenses", "balances", "activity", "chat", "insight", "recurring", "members")  # in order


def nets_of(balances: BalancesView, user_id: str) -> list[dict[str, Any]]:
    """`user_id`'s non-zero nets in the group, one per currency, by currency."""
    return nets_in(line for line in balances.balances if line.user_id == user_id)


def nets_in(lines: Iterable[BalanceLine]) -> list[dict[str, Any]]:
    """The non-zero nets of `lines` (one person's), one per currency, by currency."""
    lines = [line for line in lines if line.net != 0]
    return [
        {"currency": line.currency, "net": line.net}
        for line in sorted(lines, key=lambda line: line.currency)
    ]


async def group_context(request: web.Request, viewer: Viewer, group_id: str) -> dict[str, Any]:
    """What group_layout.html needs for `group_id` as `viewer` sees it (see the module)."""
    view: GroupView = await ask_splits(request, GetGroup(group_id=group_id, user_id=viewer.user_id))
    balances: BalancesView = await ask_splits(
        request, GetBalances(group_id=group_id, user_id=viewer.user_id)
    )
    return {
        "group": await named(request, view),
        "my_net": nets_of(balances, viewer.user_id),
        "title": view.name,
        "section": "groups",
        "tab": "expenses",
    }


async def header_context(request: web.Request, viewer: Viewer, group_id: str) -> dict[str, Any]:
    """group_context's keys from the group's header alone (see the module): no member
    list, and only the viewer's own balance read."""
    header: GroupHeader = await ask_splits(
        request, GetGroupHeader(group_id=group_id, user_id=viewer.user_id)
    )
    return {
        "group": msgspec.structs.asdict(header),
        "my_net": nets_in(header.nets),
        "title": header.name,
        "section": "groups",
        "tab": "expenses",
    }
