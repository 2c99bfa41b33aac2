"""Who hears about an event, and what each channel says: one place for every template.

`notices_for(event)` turns any event the notifications actor handles into one `Notice`
per person to tell, carrying the category (for preferences), whether it is a security
message (never switched off), and the text per channel: plain (in-app, SMS), HTML for
email and Telegram's HTML subset. Pure functions, no IO; user-supplied text is escaped
for HTML and flattened to one line.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from actors.auth.messages import (
    EmailVerificationRequested,
    PasswordChanged,
    PasswordResetRequested,
    TelegramLinked,
)
from actors.chat.messages import ChatMessagePosted
from actors.notifications.templates import PRODUCT, display_name, render_email, reset_link
from actors.payments.messages import (
    HoldCaptured,
    TopUpFailed,
    TopUpSucceeded,
    TransferCompleted,
    format_money,
)
from actors.rides.messages import RideUpdated
from actors.runtime import Message
from actors.splits.messages import (
    ExpenseAdded,
    ExpenseDeleted,
    ExpenseUpdated,
    MemberAdded,
    MemberInvited,
    MemberReminded,
    SettlementFailed,
    SettlementRecorded,
)

Category = Literal["account", "money", "splits", "rides", "chat"]
CATEGORIES: tuple[Category, ...] = ("account", "money", "splits", "rides", "chat")
CHANNELS = ("email", "telegram", "inapp", "sms", "webpush")
# on unless the user says otherwise; SMS costs money, so it is opt-in; Web Push reaches
# only the browsers the user turned it on in, so it is on like the feed. Chat is mail-free
# by default like every category but the account's: a lively conversation would fill the
# inbox, and its notices reach the app, Telegram (where they can be answered) and push.
DEFAULT_PREFERENCES: dict[str, dict[str, bool]] = {
    "account": {"email": True, "telegram": True, "inapp": True, "sms": False, "webpush": True},
    "money": {"email": False, "telegram": True, "inapp": True, "sms": False, "webpush": True},
    "splits": {"email": False, "telegram": True, "inapp": True, "sms": False, "webpush": True},
    "rides": {"email": False, "telegram": True, "inapp": True, "sms": False, "webpush": True},
    "chat": {"email": False, "telegram": True, "inapp": True, "sms": False, "webpush": True},
}
# characters of a chat message a notice quotes (one line; a longer one ends in "…")
PREVIEW_CHARS = 200
NAME_CHARS = 80  # of a conversation's title or an author's name in a chat notice


@dataclass(frozen=True, slots=True)
class Notice:
    """One person to tell about one event, and how each channel says it."""

    user_id: str
    category: Category
    kind: str
    title: str
    text: str  # plain: in-app and SMS
    html: str  # email body
    telegram: str  # Telegram's HTML subset
    security: bool = False  # always sent, whatever the preferences
    email_to: str | None = None  # the event names the address (it may not be the account's)
    only: tuple[str, ...] | None = None  # channels allowed at all (a token goes by mail only)
    telegram_chat_id: int | None = None  # the event names the chat
    data: dict[str, Any] = field(default_factory=dict)
    # the notice quotes someone's own words: user ids in them are not replaced by names
    quotes: bool = False
    # absolute URL of the page the notice is about: the mail's button
    link: str | None = None
    # a Telegram answer to this notice is posted to this conversation (titled so)
    conversation_id: str | None = None
    conversation_title: str = ""


# a user id as notices mention people; `with_names` says their names instead
USER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def with_names(notice: Notice, names: dict[str, str]) -> Notice:
    """The notice with each user id it mentions replaced by that user's name (escaped for
    the HTML of mail and Telegram); a notice quoting someone's words is left as it is."""
    if notice.quotes:
        return notice

    def plain(found: re.Match[str]) -> str:
        return names.get(found[0], found[0])

    def escaped(found: re.Match[str]) -> str:
        return html.escape(names.get(found[0], found[0]))

    return dataclasses.replace(
        notice,
        title=USER_ID.sub(plain, notice.title),
        text=USER_ID.sub(plain, notice.text),
        html=USER_ID.sub(escaped, notice.html),
        telegram=USER_ID.sub(escaped, notice.telegram),
    )


def _line(value: str) -> str:
    return display_name(value)


def _simple(
    user_id: str, category: Category, kind: str, title: str, text: str, **extra: Any
) -> Notice:
    """A notice whose every channel says the same sentence."""
    safe = html.escape(text)
    return Notice(
        user_id=user_id,
        category=category,
        kind=kind,
        title=title,
        text=text,
        html=f"<p>{safe}</p>",
        telegram=f"<b>{html.escape(title)}</b>\n{safe}",
        **extra,
    )


# ── auth ───────────────────────────────────────────────────────────────────────────────


def _from_mail(event: Any, public_url: str, **extra: Any) -> Notice:
    mail = render_email(event, public_url=public_url)
    return Notice(
        user_id=event.user_id,
        category="account",
        kind=type(event).__name__,
        title=mail.subject,
        text=mail.text,
        html=mail.html or "",
        telegram=f"<b>{html.escape(mail.subject)}</b>",
        security=True,
        email_to=event.email,
        **extra,
    )


def _verification(event: EmailVerificationRequested, public_url: str) -> list[Notice]:
    return [_from_mail(event, public_url, only=("email",))]


def _reset(event: PasswordResetRequested, public_url: str) -> list[Notice]:
    mail = _from_mail(event, public_url, only=("email", "telegram"))
    link = html.escape(reset_link(public_url, event.token), quote=True)
    telegram = (
        f'<b>Reset your password</b>\n<a href="{link}">Choose a new password</a>'
        " (the link works once)."
    )
    return [
        Notice(
            **{**_fields(mail), "telegram": telegram, "telegram_chat_id": event.telegram_chat_id}
        )
    ]


def _password_changed(event: PasswordChanged, public_url: str) -> list[Notice]:
    mail = _from_mail(event, public_url, telegram_chat_id=event.telegram_chat_id)
    text = "Your splitgo password was changed. If this was not you, reset it now."
    return [Notice(**{**_fields(mail), "telegram": f"<b>Password changed</b>\n{text}"})]


def _telegram_linked(event: TelegramLinked, public_url: str) -> list[Notice]:
    return [
        _simple(
            event.user_id,
            "account",
            "TelegramLinked",
            "Telegram linked",
            "This Telegram chat now receives your splitgo notifications.",
            security=True,
            telegram_chat_id=event.chat_id,
        )
    ]


def _fields(notice: Notice) -> dict[str, Any]:
    return {name: getattr(notice, name) for name in Notice.__slots__}


# ── payments ───────────────────────────────────────────────────────────────────────────


def _transfer(event: TransferCompleted, public_url: str) -> list[Notice]:
    if event.kind != "p2p":  # settlements, fares: their own actors tell the story
        return []
    shown = format_money(event.amount, event.currency)
    notices: list[Notice] = []
    if event.from_user_id:
        notices.append(
            _simple(
                event.from_user_id,
                "money",
                "TransferSent",
                "Money sent",
                f"You sent {shown} to {event.to_user_id}.",
                data={"transfer_id": event.transfer_id},
            )
        )
    if event.to_user_id:
        notices.append(
            _simple(
                event.to_user_id,
                "money",
                "TransferReceived",
                "Money received",
                f"You received {shown} from {event.from_user_id}.",
                data={"transfer_id": event.transfer_id},
            )
        )
    return notices


def _top_up(event: TopUpSucceeded, public_url: str) -> list[Notice]:
    shown = format_money(event.amount, event.currency)
    return [
        _simple(
            event.user_id,
            "money",
            "TopUpSucceeded",
            "Wallet topped up",
            f"{shown} arrived in your wallet.",
            data={"top_up_id": event.top_up_id},
        )
    ]


def _top_up_failed(event: TopUpFailed, public_url: str) -> list[Notice]:
    shown = format_money(event.amount, event.currency)
    return [
        _simple(
            event.user_id,
            "money",
            "TopUpFailed",
            "Top-up failed",
            f"Your top-up of {shown} did not go through; nothing was charged.",
            data={"top_up_id": event.top_up_id},
        )
    ]


def _hold_captured(event: HoldCaptured, public_url: str) -> list[Notice]:
    shown = format_money(event.amount, event.currency)
    return [
        _simple(
            event.user_id,
            "money",
            "HoldCaptured",
            "Payment taken",
            f"{shown} was charged from your wallet.",
            data={"hold_id": event.hold_id},
        )
    ]


# ── splits ─────────────────────────────────────────────────────────────────────────────


def _expense_added(event: ExpenseAdded, public_url: str) -> list[Notice]:
    group, what = _line(event.group_name), _line(event.description)
    notices = []
    for share in event.shares:
        if share.user_id == event.created_by:
            continue
        notices.append(
            _simple(
                share.user_id,
                "splits",
                "ExpenseAdded",
                f"New expense in {group}",
                f"{event.created_by} added “{what}” ({format_money(event.amount, event.currency)});"
                f" your share is {format_money(share.amount, event.currency)}.",
                data={"group_id": event.group_id, "expense_id": event.expense_id},
            )
        )
    return notices


def _expense_updated(event: ExpenseUpdated, public_url: str) -> list[Notice]:
    group, what = _line(event.group_name), _line(event.description)
    return [
        _simple(
            share.user_id,
            "splits",
            "ExpenseUpdated",
            f"Expense changed in {group}",
            f"{event.changed_by} changed “{what}”; your share is now"
            f" {format_money(share.amount, event.currency)}.",
            data={"group_id": event.group_id, "expense_id": event.expense_id},
        )
        for share in event.shares
        if share.user_id != event.changed_by
    ]


def _expense_deleted(event: ExpenseDeleted, public_url: str) -> list[Notice]:
    group, what = _line(event.group_name), _line(event.description)
    return [
        _simple(
            user,
            "splits",
            "ExpenseDeleted",
            f"Expense deleted in {group}",
            f"{event.deleted_by} deleted “{what}”.",
            data={"group_id": event.group_id, "expense_id": event.expense_id},
        )
        for user in event.participants
        if user != event.deleted_by
    ]


def _member_added(event: MemberAdded, public_url: str) -> list[Notice]:
    return [
        _simple(
            event.member_user_id,
            "splits",
            "MemberAdded",
            "Added to a group",
            f"{event.added_by} added you to {_line(event.group_name)}.",
            data={"group_id": event.group_id},
        )
    ]


def _settlement(event: SettlementRecorded, public_url: str) -> list[Notice]:
    shown, group = format_money(event.amount, event.currency), _line(event.group_name)
    data = {"group_id": event.group_id, "settlement_id": event.settlement_id}
    return [
        _simple(
            event.from_user_id,
            "splits",
            "SettlementRecorded",
            f"Settled up in {group}",
            f"You paid {event.to_user_id} {shown} ({event.method}).",
            data=data,
        ),
        _simple(
            event.to_user_id,
            "splits",
            "SettlementRecorded",
            f"Settled up in {group}",
            f"{event.from_user_id} paid you {shown} ({event.method}).",
            data=data,
        ),
    ]


def _settlement_failed(event: SettlementFailed, public_url: str) -> list[Notice]:
    shown, group = format_money(event.amount, event.currency), _line(event.group_name)
    return [
        _simple(
            event.from_user_id,
            "money",
            "SettlementFailed",
            f"Payment failed in {group}",
            f"Your payment of {shown} to {event.to_user_id} failed: {event.message}",
            data={"group_id": event.group_id, "settlement_id": event.settlement_id},
        )
    ]


# ── rides ──────────────────────────────────────────────────────────────────────────────

_RIDER_SAYS = {
    "requested": ("Ride requested", "We are looking for a driver near you."),
    "driver_assigned": ("Driver on the way", "A driver accepted your ride."),
    "driver_arrived": ("Your driver is here", "Your driver is waiting at the pickup."),
    "in_progress": ("Ride started", "Enjoy the ride."),
    "completed": ("Ride completed", "Thanks for riding."),
    "cancelled": ("Ride cancelled", "The ride was cancelled."),
    "no_driver": ("No driver found", "No driver was available; nothing was charged."),
}
_DRIVER_SAYS = {
    "driver_assigned": ("Ride assigned", "Head to the pickup."),
    "completed": ("Ride completed", "The fare is on its way to your wallet."),
    "cancelled": ("Ride cancelled", "The ride was cancelled."),
}


def _ride_updated(event: RideUpdated, public_url: str) -> list[Notice]:
    data = {"ride_id": event.ride_id, "status": event.status}
    if event.offered_to:
        return [
            _simple(
                event.offered_to,
                "rides",
                "RideOffered",
                "New ride offer",
                "A rider near you wants a ride: accept it in the app.",
                data=data,
            )
        ]
    notices = []
    fare = f" Fare: {format_money(event.fare, event.currency or 'EUR')}." if event.fare else ""
    note = f" {event.note}" if event.note else ""
    if event.status in _RIDER_SAYS:
        title, text = _RIDER_SAYS[event.status]
        notices.append(
            _simple(
                event.rider_id,
                "rides",
                f"Ride_{event.status}",
                title,
                text + fare + note,
                data=data,
            )
        )
    if event.driver_id and event.status in _DRIVER_SAYS:
        title, text = _DRIVER_SAYS[event.status]
        notices.append(
            _simple(event.driver_id, "rides", f"Ride_{event.status}", title, text + note, data=data)
        )
    return notices


def _invited(event: MemberInvited, public_url: str) -> list[Notice]:
    """A mail to the invited address (it may have no account yet): always sent, mail only;
    and a notice in the app of the account that has the address, if one does."""
    group = _line(event.group_name)
    link = f"{public_url}/invites/{event.invite_id}" if event.invite_id else public_url
    text = (
        f"{event.invited_by} invited you to split expenses in {group} on {PRODUCT}. Open"
        f" {link} to accept or decline; with no account yet, sign up with this address and"
        f" verify it: you join {group} then. If you do not know them, ignore this mail."
    )
    data = {"group_id": event.group_id, "invite_id": event.invite_id}
    notice = _simple(
        f"invite:{event.email}",
        "splits",
        "MemberInvited",
        f"You are invited to {group}",
        text,
        data=data,
    )
    notices = [dataclasses.replace(notice, security=True, email_to=event.email, only=("email",))]
    if event.invitee_user_id:
        in_app = _simple(
            event.invitee_user_id,
            "splits",
            "MemberInvited",
            f"You are invited to {group}",
            f"{event.invited_by} invited you to {group}: accept or decline it.",
            data=data,
        )
        notices.append(dataclasses.replace(in_app, only=("inapp",)))
    return notices


def _reminded(event: MemberReminded, public_url: str) -> list[Notice]:
    owed = " and ".join(format_money(line.amount, line.currency) for line in event.owed)
    return [
        _simple(
            event.to_user_id,
            "splits",
            "MemberReminded",
            f"A reminder from {_line(event.group_name)}",
            f"{event.from_user_id} reminds you that you owe {owed} in {_line(event.group_name)}.",
            data={"group_id": event.group_id},
        )
    ]


# ── chat ───────────────────────────────────────────────────────────────────────────────


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """A message as a notice quotes it: one line, at most `limit` characters (cut at a
    word when one ends near the limit, then "…")."""
    flat = _line(text)
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 3 // 4:  # a word ends close enough: do not cut one in half
        cut = cut[:space]
    return cut.rstrip() + "…"


def conversation_path(conversation_id: str) -> str:
    """The web app's page of a conversation (relative to the public URL)."""
    return f"/messages/{conversation_id}"


def _chat_message(event: ChatMessagePosted, public_url: str) -> list[Notice]:
    """The people a message mentions hear "Ann mentioned you in Trip: …"; the others to
    tell after a quiet spell hear "Ann in Trip: …". In Telegram, answering the notice
    posts the answer to the conversation (`conversation_id`)."""
    author, title = preview(event.author_name, NAME_CHARS), preview(event.title, NAME_CHARS)
    quoted = preview(event.text)
    path = conversation_path(event.conversation_id)
    link = f"{public_url}{path}"
    data = {
        "conversation_id": event.conversation_id,
        "message_id": event.message_id,
        "conversation_kind": event.kind,
        "path": path,
    }
    href = html.escape(link, quote=True)
    notices: list[Notice] = []
    told: set[str] = {event.author_id}
    for kind, people in (("ChatMention", event.mentioned), ("ChatMessage", event.notify)):
        for user_id in people:
            if user_id in told:  # a mention outranks the quiet-spell notice; once each
                continue
            told.add(user_id)
            said = "mentioned you in" if kind == "ChatMention" else "in"
            headline = f"{author} {said} {title}"
            text = f"{headline}: {quoted}"
            notices.append(
                Notice(
                    user_id=user_id,
                    category="chat",
                    kind=kind,
                    title=headline,
                    text=text,
                    html=f"<p>{html.escape(text)}</p>",
                    telegram=(
                        f"<b>{html.escape(author)}</b> {said} <b>{html.escape(title)}</b>:\n"
                        f"{html.escape(quoted)}\n\n"
                        f'<i>Reply to this message to answer.</i> <a href="{href}">Open</a>'
                    ),
                    data=data,
                    quotes=True,
                    link=link,
                    conversation_id=event.conversation_id,
                    conversation_title=title,
                )
            )
    return notices


_BUILDERS: dict[type[Any], Callable[[Any, str], list[Notice]]] = {
    EmailVerificationRequested: _verification,
    PasswordResetRequested: _reset,
    PasswordChanged: _password_changed,
    TelegramLinked: _telegram_linked,
    TransferCompleted: _transfer,
    TopUpSucceeded: _top_up,
    TopUpFailed: _top_up_failed,
    HoldCaptured: _hold_captured,
    ExpenseAdded: _expense_added,
    ExpenseUpdated: _expense_updated,
    ExpenseDeleted: _expense_deleted,
    MemberAdded: _member_added,
    MemberReminded: _reminded,
    MemberInvited: _invited,
    SettlementRecorded: _settlement,
    SettlementFailed: _settlement_failed,
    RideUpdated: _ride_updated,
    ChatMessagePosted: _chat_message,
}
EVENTS: tuple[type[Message], ...] = tuple(_BUILDERS)
# auth's own mails (links with tokens): mailed with their own templates, by type name
AUTH_MAILS = ("EmailVerificationRequested", "PasswordResetRequested", "PasswordChanged")


def notices_for(event: Message, *, public_url: str) -> list[Notice]:
    """Everyone to tell about `event`; TypeError for an event nobody is told about."""
    builder = _BUILDERS.get(type(event))
    if builder is None:
        raise TypeError(f"no notice for {type(event).__name__}")
    return builder(event, public_url)
