"""Your data: everything splitgo keeps about the caller as one JSON download, and deleting
the account (issue 19).

The export is gathered here, at the edge, by asking each actor for the caller's own data
(each owns its tables): auth (profile, sessions, social logins), notifications (switches,
push devices, in-app notices), payments (wallet, statement), splits (groups, expenses,
settlements, comments, balances), chat (messages written) and rides. Every part is bounded:
the document says under `limits` how much of each kind it holds at most, and each part says
`truncated` when more was left out. The pages (splitgo/pages/account_data.py) serve the
same document.

Deleting is auth's one command (DeleteAccount): it checks the wallet and the group
balances itself and refuses, in words, while anything is owed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web

from actors.auth.messages import (
    AccountDeletion,
    AccountNotEmpty,
    DeleteAccount,
    DescribeMyAccount,
    MyAccount,
)
from actors.chat.messages import MY_MESSAGES_MAX, DescribeMyChat, MyChat
from actors.notifications.messages import (
    GetPreferences,
    ListNotifications,
    ListPushSubscriptions,
    NotificationPage,
    Preferences,
    PushSubscriptionList,
)
from actors.payments.messages import GetStatement, GetWallet, StatementPage, WalletView
from actors.rides.messages import MY_RIDES_MAX, DescribeMyRides, MyRides
from actors.runtime import rfc3339
from actors.runtime.bounds import PAGE_MAX
from actors.splits.messages import PERSONAL_ROWS_MAX, DescribeMySplits, MySplits
from splitgo.web.actors import ask
from splitgo.web.declare import Content, documented, idempotency
from splitgo.web.idempotency import key_for
from splitgo.web.problems import FieldError, ProblemError, json_response, to_json
from splitgo.web.security import authenticate

routes = web.RouteTableDef()

EXPORT_FORMAT = "splitgo-export/1"
STATEMENT_LINES_MAX = 5_000  # wallet statement lines in one export
NOTICES_MAX = 1_000  # in-app notices in one export
EXPORT_ASK_SECONDS = 20.0  # one actor's part of the export (its reads are bounded)

AnyPassword = Annotated[str, msgspec.Meta(max_length=1024)]


class DeleteMeBody(msgspec.Struct, forbid_unknown_fields=True):
    """Your password, to confirm (an account with no password: leave it out, and sign in
    again first)."""

    password: AnyPassword | None = None


def export_filename(now: datetime) -> str:
    """splitgo-export-YYYY-MM-DD.json, the day in UTC."""
    return f"splitgo-export-{now.astimezone(UTC):%Y-%m-%d}.json"


async def _pages(request: web.Request, first: Any, cap: int) -> tuple[list[Any], bool]:
    """Items of a cursor-paged list up to `cap`, and whether more were left out.
    `first` is the message asking for the first page (GetStatement, ListNotifications)."""
    actor = "payments" if isinstance(first, GetStatement) else "notifications"
    items: list[Any] = []
    message = first
    while True:
        page: StatementPage | NotificationPage = await ask(
            request, actor, message, timeout=EXPORT_ASK_SECONDS
        )
        items.extend(page.items)
        if page.next_cursor is None:
            return items[:cap], len(items) > cap
        if len(items) >= cap:
            return items[:cap], True
        message = msgspec.structs.replace(message, cursor=page.next_cursor)


async def gather_export(request: web.Request, user_id: str) -> dict[str, Any]:
    """Everything splitgo keeps about `user_id`, as one JSON document (plain data)."""
    timeout = EXPORT_ASK_SECONDS

    async def part(actor: str, message: Any) -> Any:
        return await ask(request, actor, message, timeout=timeout)

    (
        account,
        preferences,
        devices,
        wallet,
        splits,
        chat,
        rides,
        (statement, statement_cut),
        (notices, notices_cut),
    ) = await asyncio.gather(
        part("auth", DescribeMyAccount(user_id=user_id)),
        part("notifications", GetPreferences(user_id=user_id)),
        part("notifications", ListPushSubscriptions(user_id=user_id)),
        part("payments", GetWallet(user_id=user_id)),
        part("splits", DescribeMySplits(user_id=user_id)),
        part("chat", DescribeMyChat(user_id=user_id)),
        part("rides", DescribeMyRides(user_id=user_id)),
        _pages(request, GetStatement(user_id=user_id, limit=PAGE_MAX), STATEMENT_LINES_MAX),
        _pages(request, ListNotifications(user_id=user_id, limit=PAGE_MAX), NOTICES_MAX),
    )
    return _document(
        user_id,
        account=account,
        preferences=preferences,
        devices=devices,
        wallet=wallet,
        statement=(statement, statement_cut),
        notices=(notices, notices_cut),
        splits=splits,
        chat=chat,
        rides=rides,
    )


def _document(
    user_id: str,
    *,
    account: MyAccount,
    preferences: Preferences,
    devices: PushSubscriptionList,
    wallet: WalletView,
    statement: tuple[list[Any], bool],
    notices: tuple[list[Any], bool],
    splits: MySplits,
    chat: MyChat,
    rides: MyRides,
) -> dict[str, Any]:
    """The export's shape: one key per kind of data, each with what it holds."""
    groups = to_json(splits)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": rfc3339(datetime.now(UTC), timespec="seconds"),
        "user_id": user_id,
        "account": {
            "profile": to_json(account.user),
            "sessions": to_json(account.sessions),
            "social_logins": to_json(account.providers),
        },
        "notifications": {
            "preferences": to_json(preferences),
            # where each browser is reached is a capability: its name and age only
            "push_devices": [
                {"id": device.id, "label": device.label, "created_at": device.created_at}
                for device in devices.items
            ],
            "notices": to_json(notices[0]),
            "notices_truncated": notices[1],
        },
        "money": {
            "wallet": to_json(wallet.balances),
            "statement": to_json(statement[0]),
            "statement_truncated": statement[1],
        },
        "groups": groups,
        "chat": to_json(chat),
        "rides": to_json(rides),
        "limits": {
            "statement_lines": STATEMENT_LINES_MAX,
            "notices": NOTICES_MAX,
            "group_rows_per_kind": PERSONAL_ROWS_MAX,
            "chat_messages": MY_MESSAGES_MAX,
            "rides": MY_RIDES_MAX,
        },
    }


@routes.get("/api/v1/me/export")
@documented(
    summary="Download everything splitgo keeps about you",
    description="One JSON document (`format`: splitgo-export/1): your profile, sessions and "
    "social logins; notification switches, devices and notices; wallet and statement; "
    "groups with your expenses, settlements, comments and balances; the chat messages you "
    "wrote; your rides. Each part is bounded (`limits`) and says `truncated` when more was "
    "left out. Served as a download, splitgo-export-YYYY-MM-DD.json.",
    tags=["auth"],
    responses={
        200: Content(
            description="the export, a JSON file",
            headers={"Content-Disposition": ("attachment; filename=...", True)},
        )
    },
)
async def export_me(request: web.Request) -> web.StreamResponse:
    claims = authenticate(request)
    document = await gather_export(request, claims.sub)
    response = json_response(document)
    filename = export_filename(datetime.now(UTC))
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def deletion_refused(error: AccountNotEmpty) -> ProblemError:
    """409 `account_not_empty`: the detail says it all; each reason is one error."""
    reasons = error.details.get("reasons")
    items = [str(reason) for reason in reasons] if isinstance(reasons, list) else []
    return ProblemError(
        409,
        error.code,
        error.message,
        errors=[FieldError(field="$", message=reason) for reason in items],
    )


async def delete_account(
    request: web.Request, user_id: str, session_id: str, password: str | None, body: object
) -> AccountDeletion:
    """Ask auth to delete the account (its refusal as `deletion_refused` says it)."""
    message = DeleteAccount(
        user_id=user_id,
        session_id=session_id,
        password=password or None,
        idempotency=key_for(request, body, caller=user_id),
    )
    try:
        deletion: AccountDeletion = await ask(request, "auth", message, timeout=30)
    except AccountNotEmpty as error:
        raise deletion_refused(error) from None
    return deletion


@routes.delete("/api/v1/me")
@documented(
    summary="Delete your account",
    description="Confirmed with your `password` (an account with no password: sign in again "
    "first; within 10 minutes, else 403 `fresh_sign_in_required`). A wrong password: 422 "
    "`wrong_password` at `$.password`. With two-factor sign-in on, a session that began "
    "before it was turned on (no code or passkey passed) is 403 `mfa_required`. Refused "
    "with 409 `account_not_empty` while your wallet or a group balance is not zero: the "
    "detail, and one error each, say what to do. "
    "Otherwise your profile is anonymised, every session ends, your contacts go; ledger "
    'lines stay, and what you wrote shows as written by "Deleted user". Once deleted, this '
    "token is refused (401): a retry that gets 401 `session_revoked` after a lost answer "
    "means the account is gone.",
    tags=["auth"],
    body=DeleteMeBody,
    body_required=False,
    headers=[idempotency(required=False)],
    responses={200: AccountDeletion},
    errors=[403, 409, 422],
)
async def delete_me(request: web.Request, body: DeleteMeBody) -> web.Response:
    claims = authenticate(request)
    deletion = await delete_account(request, claims.sub, claims.sid, body.password, body)
    return json_response(to_json(deletion))
