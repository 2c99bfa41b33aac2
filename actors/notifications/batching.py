"""How a notifications shard cuts a batch and lays out what an event stores: pure rules.

The shard takes up to `batch_size` waiting messages at once (issue 20). Consecutive
events form one run, recorded in one transaction (`runs`); anything else (a feed read, a
retry timer, a deleted account) is handled alone, in mailbox order, so a read after an
event sees it. A message a transport delivered twice into one batch counts once
(`first_of_each`). Each event's notices split into the in-app feed items stored sent with
it and the deliveries other channels try after the commit (`lay_out`), in notice order,
which is the order each recipient's feed gets them; a run of many notices is written in
pieces of a bounded size (`pieces`). No IO here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from actors.notifications.notices import CHANNELS, Notice
from actors.notifications.store import FeedItem

INAPP = CHANNELS[2]

T = TypeVar("T")


def runs(items: Sequence[T], is_event: Callable[[T], bool]) -> list[tuple[bool, list[T]]]:
    """The batch in order, as (events?, items): consecutive events together, every other
    item alone."""
    cut: list[tuple[bool, list[T]]] = []
    for item in items:
        if is_event(item):
            if cut and cut[-1][0]:
                cut[-1][1].append(item)
            else:
                cut.append((True, [item]))
        else:
            cut.append((False, [item]))
    return cut


def first_of_each(ids: Sequence[str]) -> list[bool]:
    """For each id, whether it is the first with that id in the batch (a later one is a
    copy: it is recorded once, and answered as a duplicate)."""
    seen: set[str] = set()
    first: list[bool] = []
    for message_id in ids:
        first.append(message_id not in seen)
        seen.add(message_id)
    return first


@dataclass(frozen=True, slots=True)
class Target:
    """A delivery to try after the commit: a user over a channel other than in-app."""

    user_id: str
    channel: str
    recipient: str


@dataclass(frozen=True, slots=True)
class Laid:
    """What one event stores: its in-app feed items (sent by the commit) and the
    deliveries of its other channels."""

    feed: list[FeedItem]
    targets: list[Target]


def lay_out(
    notices: Sequence[Notice],
    reach: Sequence[Sequence[tuple[str, str]]],
    new_id: Callable[[], str],
) -> Laid:
    """Each notice's (channel, recipient) pairs as feed items and targets, in order."""
    feed: list[FeedItem] = []
    targets: list[Target] = []
    for notice, pairs in zip(notices, reach, strict=True):
        for channel, recipient in pairs:
            if channel == INAPP:
                feed.append(feed_item(notice, new_id()))
            else:
                targets.append(Target(notice.user_id, channel, recipient))
    return Laid(feed=feed, targets=targets)


def feed_item(notice: Notice, item_id: str) -> FeedItem:
    """An in-app notice as stored with its event (`item_id` is its delivery's too)."""
    return FeedItem(
        id=item_id,
        user_id=notice.user_id,
        category=notice.category,
        kind=notice.kind,
        title=notice.title,
        body=notice.text,
        data=json.dumps(dict(notice.data)),
    )


def pieces(sizes: Sequence[int], limit: int) -> list[range]:
    """Consecutive events cut into pieces of at most `limit` notices each (by each event's
    `sizes`), one transaction each, so a run of big groups' events never becomes one huge
    statement; an event bigger than `limit` is a piece of its own, never cut."""
    cut: list[range] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and total + size > limit:
            cut.append(range(start, index))
            start, total = index, 0
        total += size
    if start < len(sizes):
        cut.append(range(start, len(sizes)))
    return cut
