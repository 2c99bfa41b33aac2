"""Every SQL statement of the notifications actor, over its own tables (the schema's
notifications section): deliveries and their attempts, the in-app feed, the preferences.

One module per feature — `deliveries` (deliveries, attempts, notices stored with their
event), `feed` (the in-app feed and the preferences), `devices` (Web Push subscriptions,
Telegram answers), `forgetting` (a deleted account) — all re-exported here, so callers
write `store.claim(...)`.

A delivery is one notification to one user over one channel, keyed by the event's
envelope id. It is `pending` until a try succeeds (`sent`) or the tries run out
(`failed`: the notifications' dead letter, which an admin reads with its attempts).

A try is claimed before it starts: the claim bumps `attempts` and pushes `next_attempt_at`
a lease ahead, in one row-locked statement, so two timers (or two nodes) never make the
same try, and a try whose outcome was never recorded (a crash mid-send) is retried when
its lease ends instead of being lost. An in-app delivery skips all that: it is stored
sent, with its feed item, in the transaction that records its event (`add_sent_items`,
one statement for a whole run of events).

Each function takes what runs the statement (`actors.runtime.Executor`): the pool, a
connection or a handler's `Transaction`.
"""

from __future__ import annotations

from actors.notifications.store.deliveries import (
    Attempt,
    Claimed,
    Delivery,
    FeedItem,
    NewDelivery,
    NotDue,
    Outcome,
    add_deliveries,
    add_sent_items,
    attempts,
    claim,
    find_deliveries,
    finish_attempt,
    get,
    list_deliveries,
    pending,
)
from actors.notifications.store.devices import (
    ChatReplyRow,
    PushSubscriptionRow,
    add_chat_reply,
    add_push_subscription,
    chat_reply,
    has_push_subscription,
    push_subscriptions,
    remove_push_subscription,
)
from actors.notifications.store.feed import (
    add_item,
    mark_all_read,
    mark_read,
    page,
    preferences,
    preferences_and_devices,
    set_preferences,
    unread_count,
)
from actors.notifications.store.forgetting import (
    forget_user,
)

__all__ = [
    "Attempt",
    "ChatReplyRow",
    "Claimed",
    "Delivery",
    "FeedItem",
    "NewDelivery",
    "NotDue",
    "Outcome",
    "PushSubscriptionRow",
    "add_chat_reply",
    "add_deliveries",
    "add_item",
    "add_push_subscription",
    "add_sent_items",
    "attempts",
    "chat_reply",
    "claim",
    "find_deliveries",
    "finish_attempt",
    "forget_user",
    "get",
    "has_push_subscription",
    "list_deliveries",
    "mark_all_read",
    "mark_read",
    "page",
    "pending",
    "preferences",
    "preferences_and_devices",
    "push_subscriptions",
    "remove_push_subscription",
    "set_preferences",
    "unread_count",
]
