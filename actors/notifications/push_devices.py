"""Web Push devices: a feature part of the Notifications actor.

A user's browsers each keep a push subscription here (one per device, made with the
node's VAPID public key). A notice for the Web Push channel goes to every one of them at
once, encrypted for each: the delivery is sent when at least one push service accepted
it; a subscription its push service calls gone (404, 410) is forgotten on the spot; when
none accepted and some may later, the delivery is retried like any other channel's (the
browsers that got it then may show it twice: a push service keeps no message ids).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog

from actors.notifications import store
from actors.notifications.channels import DeliveryFailed
from actors.notifications.channels.webpush import (
    MAX_PLAINTEXT,
    PushTarget,
    WebPushChannel,
    WebPushGone,
    browser_key,
    unb64u,
)
from actors.notifications.messages import (
    Acknowledged,
    AddPushSubscription,
    GetPushKey,
    InvalidPushSubscription,
    ListPushSubscriptions,
    PushKey,
    PushSubscriptionList,
    PushSubscriptionNotFound,
    PushSubscriptionView,
    RemovePushSubscription,
    WebPushNotConfigured,
)
from actors.notifications.notices import Notice, conversation_path
from actors.runtime import Context, rfc3339

log = structlog.get_logger("actors.notifications.webpush")

MAX_DEVICES = 20  # subscriptions a user keeps; a new one past it replaces the oldest
# of a notice's title and text in a push message (the rest is in the app): even at four
# octets a character, what a message holds (MAX_PLAINTEXT)
TITLE_CHARS, TEXT_CHARS = 150, 600
assert (TITLE_CHARS + TEXT_CHARS) * 4 + 900 < MAX_PLAINTEXT  # the url, kind and tag: < 900
URGENT_CATEGORIES = frozenset({"rides"})  # a driver at the door cannot wait for a doze


def page_of(notice: Notice) -> str:
    """The page a notification opens (a path on this node), from what it is about."""
    data = notice.data
    group, expense = data.get("group_id"), data.get("expense_id")
    if notice.conversation_id is not None:
        return conversation_path(notice.conversation_id)
    if notice.kind == "RideOffered":
        return "/driver"
    if data.get("ride_id"):
        return f"/rides/{data['ride_id']}"
    if data.get("invite_id"):
        return f"/invites/{data['invite_id']}"
    if group and expense:
        return f"/groups/{group}/expenses/{expense}"
    if group:
        return f"/groups/{group}"
    if any(key in data for key in ("top_up_id", "transfer_id", "hold_id")):
        return "/wallet"
    return "/notifications"


def payload_of(notice: Notice, delivery_id: str) -> dict[str, Any]:
    """What the service worker shows: title, body, the page to open; `tag` folds a
    retried delivery's copies into one notification."""
    text = notice.text if len(notice.text) <= TEXT_CHARS else notice.text[: TEXT_CHARS - 1] + "…"
    return {
        "title": notice.title[:TITLE_CHARS],
        "body": text,
        "url": page_of(notice),
        "kind": notice.kind,
        "tag": delivery_id,
    }


class PushDevices:
    """Keeps users' push subscriptions and sends a notice to all of a user's devices.

    `context` is the Notifications shard's (the subscriptions table, its clock); `channel`
    posts to push services (None: this node sends no Web Push).
    """

    def __init__(self, context: Context, *, channel: WebPushChannel | None) -> None:
        self._context = context
        self._pool = context.pool
        self._channel = channel

    @property
    def available(self) -> bool:
        return self._channel is not None

    def key(self, message: GetPushKey) -> PushKey:
        return PushKey(public_key=self._configured().public_key)

    async def add(self, message: AddPushSubscription) -> PushSubscriptionView:
        channel = self._configured()
        problem = channel.refuses(message.endpoint)
        if problem is not None:
            raise InvalidPushSubscription(
                f"endpoint: expected {problem}", details={"field": "$.endpoint"}
            )
        try:
            browser_key(unb64u(message.p256dh))
        except ValueError:
            raise InvalidPushSubscription(
                "keys.p256dh: expected the browser's P-256 public key (65 octets, base64url)",
                details={"field": "$.keys.p256dh"},
            ) from None
        if len(unb64u(message.auth)) != 16:
            raise InvalidPushSubscription(
                "keys.auth: expected the browser's 16-octet auth secret (base64url)",
                details={"field": "$.keys.auth"},
            )
        row = await store.add_push_subscription(
            self._pool,
            subscription_id=uuid.uuid4().hex,
            user_id=message.user_id,
            endpoint=message.endpoint,
            p256dh=message.p256dh,
            auth=message.auth,
            label=" ".join(message.label.split()) or "A browser",
            now=self._context.now(),
        )
        kept = await store.push_subscriptions(self._pool, message.user_id)
        for old in kept[: max(0, len(kept) - MAX_DEVICES)]:
            await store.remove_push_subscription(self._pool, old.id)
        return _view(row)

    async def listing(self, message: ListPushSubscriptions) -> PushSubscriptionList:
        rows = await store.push_subscriptions(self._pool, message.user_id)
        return PushSubscriptionList(items=[_view(row) for row in rows])

    async def remove(self, message: RemovePushSubscription) -> Acknowledged:
        removed = await store.remove_push_subscription(
            self._pool, message.subscription_id, user_id=message.user_id
        )
        if not removed:
            raise PushSubscriptionNotFound("no such push subscription of yours")
        return Acknowledged()

    async def reachable(self, user_id: str) -> bool:
        """Whether a notice for this user can go out by Web Push at all."""
        return self._channel is not None and await store.has_push_subscription(self._pool, user_id)

    async def send(self, delivery_id: str, notice: Notice) -> str:
        """One try to every device of the notice's user; the push services' answers."""
        channel = self._channel
        if channel is None:
            raise DeliveryFailed("no Web Push on this node", permanent=True)
        rows = await store.push_subscriptions(self._pool, notice.user_id)
        if not rows:
            raise DeliveryFailed("no push subscriptions left", permanent=True)
        payload = payload_of(notice, delivery_id)
        urgency = "high" if notice.category in URGENT_CATEGORIES else "normal"
        targets = [PushTarget(row.id, row.endpoint, row.p256dh, row.auth) for row in rows]
        results = await asyncio.gather(
            *(channel.send(target, payload, urgency=urgency) for target in targets),
            return_exceptions=True,
        )
        accepted: list[str] = []
        failed: list[DeliveryFailed] = []
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, WebPushGone):
                await store.remove_push_subscription(self._pool, target.id)
                log.info("push_subscription_gone", subscription_id=target.id, answer=result.answer)
                failed.append(result)
            elif isinstance(result, DeliveryFailed):
                failed.append(result)
            elif isinstance(result, BaseException):
                failed.append(DeliveryFailed(f"{type(result).__name__}: {result}"))
            else:
                accepted.append(result)
        summary = "; ".join([*accepted, *(f.answer for f in failed)])
        if accepted:
            return f"{len(accepted)} of {len(targets)} accepted: {summary}"
        retryable = [f for f in failed if not f.permanent]
        if not retryable:
            raise DeliveryFailed(summary, permanent=True)
        waits = [f.retry_after for f in retryable if f.retry_after is not None]
        raise DeliveryFailed(summary, retry_after=max(waits) if waits else None)

    def _configured(self) -> WebPushChannel:
        if self._channel is None:
            raise WebPushNotConfigured("this node sends no Web Push notifications")
        return self._channel


def _view(row: store.PushSubscriptionRow) -> PushSubscriptionView:
    return PushSubscriptionView(
        id=row.id, endpoint=row.endpoint, label=row.label, created_at=rfc3339(row.created_at)
    )
