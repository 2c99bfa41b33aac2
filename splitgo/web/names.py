"""People, not UUIDs: every JSON reply names the users it mentions, beside their ids.

Auth owns profiles. The edge keeps a `NameBook` per node — display names by user id,
looked up from auth in one batched `GetNames` for whatever a reply mentions that it does not
know yet — and updates an entry when auth says a name changed (`ProfileChanged`, heard on
the node broadcast, so a rename shows on every node at once). Pub/sub can drop messages, so
the book is emptied whenever the broadcast reconnects, and no entry is older than `ttl`.

The book has an `epoch` that moves whenever what it says may have changed (a rename heard,
a name asked again that came back different, the book emptied), and keeps the replies
named with it that are worth keeping whole (`replies`, splitgo/web/reply_cache.py: a
group's balances); a kept reply names the epoch it was made in, so a move retires it.

The `named` middleware walks every JSON reply (`problems.JsonReply`): beside each id under a
key of `USER_KEYS` (`user_id`, `from_user_id`, `rider_id`, ...) it adds the matching name key
(`name`, `from_user_name`, `rider_name`, ...) unless the view gave one already; an activity
`summary` written with ids says the names instead. A driver sees the rider's first
name only. Names only: never an email.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiohttp import web

from actors.auth.messages import NAMES_MAX, GetNames, Names, ProfileChanged
from actors.runtime import Clock, DomainError, Message
from splitgo.web.problems import JsonReply, encode_json
from splitgo.web.reply_cache import REPLY_CACHE_BYTES, ReplyCache

log = structlog.get_logger("splitgo.names")

AskNames = Callable[[GetNames], Awaitable[Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# an id's key -> the key of the name beside it
USER_KEYS = {
    "user_id": "name",
    "uploaded_by": "uploaded_by_name",
    "author_id": "author_name",
    "from_user_id": "from_user_name",
    "to_user_id": "to_user_name",
    "member_user_id": "member_user_name",
    "rider_id": "rider_name",
    "driver_id": "driver_name",
    "created_by": "created_by_name",
    "actor_id": "actor_name",
    "actor_user_id": "actor_user_name",
    "invited_by": "invited_by_name",
    "counterpart_id": "counterpart_name",
    "counterparty_user_id": "counterparty_name",
}
TEXT_KEYS = ("summary",)  # texts written with ids (the activity feed), shown with names
FIRST_NAME_ONLY = ("rider_name",)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class NameBook:
    """Display names by user id, kept on this node (bounded, each at most `ttl` old), and
    the replies named with them that the edge keeps whole (`replies`, at most
    `reply_bytes`)."""

    def __init__(
        self,
        ask: AskNames,
        *,
        size: int = 100_000,
        ttl: float = 300.0,
        clock: Clock = time.monotonic,
        reply_bytes: int = REPLY_CACHE_BYTES,
    ) -> None:
        self._ask = ask
        self._size = size
        self.ttl = ttl
        self._clock = clock
        self._names: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.epoch = 0  # moves whenever a name kept may have changed (see the module)
        self.replies = ReplyCache(reply_bytes, clock=clock)

    def __len__(self) -> int:
        return len(self._names)

    def now(self) -> float:
        return self._clock()

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """The names of these users that exist (asked of auth for the ones not kept)."""
        return (await self.names_since(user_ids))[0]

    async def names_since(self, user_ids: Iterable[str]) -> tuple[dict[str, str], float]:
        """`names`, and when the oldest of them was kept: what is named with them is as
        fresh as the book until that time plus `ttl`."""
        now = self._clock()
        oldest = now
        found: dict[str, str] = {}
        missing: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            kept = self._names.get(user_id)
            if kept is not None and now - kept[1] < self.ttl:
                found[user_id] = kept[0]
                if kept[1] < oldest:
                    oldest = kept[1]
            else:
                missing.append(user_id)
        for start in range(0, len(missing), NAMES_MAX):
            reply: Names = await self._ask(GetNames(user_ids=missing[start : start + NAMES_MAX]))
            for person in reply.people:
                found[person.user_id] = person.name
                self._keep(person.user_id, person.name, now)
        return found, oldest

    def heard(self, event: Message) -> None:
        """Auth says this user's name changed: keep the new one."""
        if isinstance(event, ProfileChanged):
            # even when not kept here (dropped for room): a kept reply may still name them
            self._changed()
            self._keep(event.user_id, event.name, self._clock())

    def forget_all(self) -> None:
        """The broadcast (re)connected: what changed while it was down is unknown."""
        self._names.clear()
        self._changed()

    def _keep(self, user_id: str, name: str, now: float) -> None:
        kept = self._names.get(user_id)
        if kept is not None and kept[0] != name:
            self._changed()  # asked again after its ttl: renamed meanwhile, unheard
        self._names[user_id] = (name, now)
        self._names.move_to_end(user_id)
        while len(self._names) > self._size:
            self._names.popitem(last=False)

    def _changed(self) -> None:
        self.epoch += 1
        self.replies.clear()  # none of them can be sent any more


NAMES = web.AppKey("names", NameBook)


def renamed(app: web.Application, user_id: str, name: str) -> None:
    """This node's edge renamed the user (PATCH /me, the account page): its book says the
    new name at once. Other nodes hear auth's ProfileChanged broadcast; this one may hear it
    only after the next read, which would still name the old name."""
    book = app.get(NAMES)
    if book is not None:
        book.heard(ProfileChanged(user_id=user_id, name=name))


@web.middleware
async def named(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Name the people a JSON reply mentions (see the module's docstring)."""
    response = await handler(request)
    book = request.app.get(NAMES)
    if (
        book is not None
        and isinstance(response, JsonReply)
        and response.status < 300
        and await name_people(response.data, book)
    ):
        response.body = encode_json(response.data)
    return response


async def name_people(data: Any, book: NameBook) -> bool:
    """Add the names beside the ids in `data` (in place); whether anything was added."""
    return (await _name(data, book))[0]


async def name_people_since(data: Any, book: NameBook) -> float | None:
    """`name_people`, saying when the oldest name it used was kept (`names_since`; now when
    `data` names nobody), or None when the names could not be had (the ids went alone)."""
    return (await _name(data, book))[1]


async def _name(data: Any, book: NameBook) -> tuple[bool, float | None]:
    people, texts = _scan(data)
    if not people:
        return False, book.now()
    try:
        names, oldest = await book.names_since({user_id for _, _, user_id in people})
    except DomainError as error:  # auth unreachable: the reply still goes, with ids only
        log.warning("names_unavailable", code=error.code)
        return False, None
    for holder, key, user_id in people:
        name_key = USER_KEYS[key]
        if holder.get(name_key) is None:
            name = names.get(user_id)
            if name is not None and name_key in FIRST_NAME_ONLY:
                name = name.split(" ", 1)[0]
            holder[name_key] = name
    if texts:
        _say_names(texts, names)
    return True, oldest


def _scan(data: Any) -> tuple[list[tuple[dict[str, Any], str, str]], list[dict[str, Any]]]:
    """One walk over `data`: (the dict, the key, the id) of every user id in it, and the
    dicts holding a text written with ids."""
    people: list[tuple[dict[str, Any], str, str]] = []
    texts: list[dict[str, Any]] = []
    stack = [data]
    while stack:
        value = stack.pop()
        if type(value) is dict:
            for key, item in value.items():
                if key in USER_KEYS:
                    if type(item) is str and item:
                        people.append((value, key, item))
                elif key in TEXT_KEYS:
                    if type(item) is str:
                        texts.append(value)
                elif type(item) is dict or type(item) is list:
                    stack.append(item)
        elif type(value) is list:
            stack.extend(item for item in value if type(item) is dict or type(item) is list)
    return people, texts


def _say_names(holders: list[dict[str, Any]], names: dict[str, str]) -> None:
    """Texts that were written with ids (the activity feed) say the names instead."""

    def name_of(found: re.Match[str]) -> str:
        return names.get(found[0], found[0])

    for holder in holders:
        for key in TEXT_KEYS:
            text = holder.get(key)
            if isinstance(text, str):
                holder[key] = _UUID.sub(name_of, text)
