"""Notifications: the in-app feed, its unread badge and the preferences matrix.

The feed is the notifications actor's `ListNotifications` (GET /api/v1/notifications),
newest first, a page at a time; each item links to what it is about (the expense, the
group, the ride, the wallet). "Mark read" and "Mark all read" send the JSON routes'
`MarkRead` and `MarkAllRead`. `/notifications/badge` is the unread badge as a fragment
the server renders, for static/badge.js to swap into the navigation. The preferences
form sends the PUT route's `SetPreferences`, its changes checked by the route's own
`preference_changes`: one checkbox per category and channel, an unticked box switching
its channel off.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.notifications.messages import (
    GetPreferences,
    ListNotifications,
    MarkAllRead,
    MarkRead,
    NotificationPage,
    Preferences,
    SetPreferences,
)
from splitgo.pages import cookies
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.guards import local_target, signed_in
from splitgo.pages.render import named, redirect, render, render_with_form
from splitgo.pages.sessions import Viewer, viewer_of
from splitgo.web.actors import ask
from splitgo.web.notifications import preference_changes
from splitgo.web.problems import FieldError, ProblemError

routes = web.RouteTableDef()

FEED = "/notifications"
PREFERENCES = "/notifications/preferences"
PAGE_SIZE = 20
# the columns of the matrix, in their order, with their words
CHANNELS: tuple[tuple[str, str], ...] = (
    ("inapp", "In the app"),
    ("email", "Email"),
    ("telegram", "Telegram"),
    ("webpush", "Push"),
    ("sms", "Text message"),
)
# the rows: what each category is about (an unknown category shows by its own name)
CATEGORIES: dict[str, tuple[str, str]] = {
    "account": ("Your account", "Sign-ins, password and linked apps"),
    "money": ("Money", "Top-ups, transfers and payments from your wallet"),
    "splits": ("Groups and expenses", "Expenses, settlements and invitations"),
    "rides": ("Rides", "Offers, drivers on the way and finished trips"),
    "chat": ("Chat", "Mentions, and messages in conversations that had gone quiet"),
}

cookies.FLASHES.update(
    {
        "notifications_read": "Every notification is marked read.",
        "notification_read": "Marked read.",
        "preferences_saved": "Your choices are saved.",
    }
)


def about(kind: str, data: dict[str, Any]) -> tuple[str, str] | None:
    """Where a notification's subject is (path, words), from its kind and the ids its data
    carries: the conversation, the expense, the group, the ride (a driver's offer: the
    driver's page), the wallet."""
    conversation = data.get("conversation_id")
    if conversation:
        return f"/messages/{conversation}", "Open the conversation"
    group, expense, ride = data.get("group_id"), data.get("expense_id"), data.get("ride_id")
    if group and expense and kind != "ExpenseDeleted":
        return f"/groups/{group}/expenses/{expense}", "Open the expense"
    if group:
        return f"/groups/{group}", "Open the group"
    if ride:
        if kind == "RideOffered":
            return "/driver", "See the offer"
        return f"/rides/{ride}", "Open the ride"
    if any(data.get(key) for key in ("transfer_id", "top_up_id", "hold_id")):
        return "/wallet", "Open your wallet"
    return None


async def unread_count(request: web.Request, viewer: Viewer) -> int:
    """How many of the viewer's notifications are unread (the feed's own count)."""
    found: NotificationPage = await ask(
        request,
        "notifications",
        ListNotifications(user_id=viewer.user_id, unread_only=True, limit=1),
    )
    return found.unread


@routes.get(FEED)
@signed_in
async def feed(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    cursor = request.query.get("cursor") or None
    if cursor is not None and not cursor.isdigit():
        raise ProblemError(400, "invalid_cursor", "This page of notifications does not exist.")
    found: NotificationPage = await ask(
        request,
        "notifications",
        ListNotifications(user_id=viewer.user_id, limit=PAGE_SIZE, cursor=cursor),
    )
    page = await named(request, found)
    for item in page["items"]:
        item["about"] = about(item.get("kind", ""), item.get("data") or {})
    return await render(
        request,
        "notifications.html",
        {
            "title": "Notifications",
            "section": "notifications",
            "feed": page,
            "cursor": cursor,
            "here": request.path_qs,
            "unread_count": found.unread,
        },
    )


@routes.get("/notifications/badge")
async def badge(request: web.Request) -> web.StreamResponse:
    """The unread badge alone, for the navigation's script (nothing when signed out)."""
    viewer = await viewer_of(request)
    if viewer is None:
        return web.Response(status=204)
    count = await unread_count(request, viewer)
    return await render(request, "notifications_badge.html", {"unread_count": count})


@routes.post("/notifications/read-all")
@signed_in
async def read_all(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    await ask(request, "notifications", MarkAllRead(user_id=viewer.user_id))
    cookies.flash(request, "notifications_read")
    return redirect(FEED)


@routes.post("/notifications/{id}/read")
@signed_in
async def read_one(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    message = MarkRead(user_id=viewer.user_id, notification_id=request.match_info["id"])
    await ask(request, "notifications", message)
    cookies.flash(request, "notification_read")
    return redirect(local_target(form.value("next"), FEED))


@routes.get(PREFERENCES)
@signed_in
async def preferences_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    chosen: Preferences = await ask(
        request, "notifications", GetPreferences(user_id=viewer.user_id)
    )
    return await _preferences_form(request, chosen, Form.blank())


@routes.post(PREFERENCES)
@signed_in
async def save_preferences(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        changes = preference_changes(switches_of(form))
        await ask(request, "notifications", SetPreferences(user_id=viewer.user_id, changes=changes))
    except REFUSALS as error:
        form.refuse(error)
        chosen: Preferences = await ask(
            request, "notifications", GetPreferences(user_id=viewer.user_id)
        )
        return await _preferences_form(request, chosen, form)
    cookies.flash(request, "preferences_saved")
    return redirect(PREFERENCES)


def switches_of(form: Form) -> dict[str, Any]:
    """The PUT route's body made of the matrix: every cell the form showed (its hidden
    `cell` inputs name them, `category.channel`) on when ticked, off when not."""
    body: dict[str, dict[str, bool]] = {}
    for cell in form.all("cell"):
        category, _, channel = cell.partition(".")
        if not category or not channel:
            raise ProblemError(
                422,
                "validation_error",
                "This form is damaged. Reload the page and try again.",
                errors=[FieldError("$", "This form is damaged. Reload the page and try again.")],
            )
        body.setdefault(category, {})[channel] = form.value(cell) == "on"
    return body


async def _preferences_form(request: web.Request, chosen: Preferences, form: Form) -> web.Response:
    rows = [
        {
            "category": category,
            "label": CATEGORIES.get(category, (category.title(), ""))[0],
            "hint": CATEGORIES.get(category, ("", ""))[1],
            "switches": switches,
        }
        for category, switches in chosen.categories.items()
    ]
    return await render_with_form(
        request,
        "notifications_preferences.html",
        {
            "title": "Notification settings",
            "section": "notifications",
            "form": form,
            "rows": rows,
            "channels": [(key, words) for key, words in CHANNELS],
        },
        form,
    )
