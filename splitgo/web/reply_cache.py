"""Replies the edge keeps ready to send: final, named, encoded bytes, bounded in bytes.

A read whose owner can say "still the version you hold" (Splits' `BalancesUnchanged`) need
not be built again at the edge: converting the view, naming everyone in it and encoding it
cost ~2 ms for a 1,000-member group's balances, sending kept bytes almost nothing. A kept
reply is only sent when it is still right on every count: the owner's version (asked
afresh on every request, with the member check), the name book's epoch (it changes when a
name it holds changes or it is emptied) and an expiry (the oldest name it used reaching
the book's ttl, when the book itself would ask again). One reply is kept per key (a
newer version replaces the older), least recently used dropped first once the kept bytes
pass `max_bytes`.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from actors.runtime import Clock

REPLY_CACHE_BYTES = 32 * 1024 * 1024  # ~400 replies of a 1,000-member group (78 KB)
ENTRY_OVERHEAD = 400  # bytes a kept reply takes beside its body (key, entry, ETag)


@dataclass(frozen=True, slots=True)
class KeptReply:
    """One reply as sent: its body and ETag, and what it is valid for."""

    version: str  # the owner's version of what it shows
    names_epoch: int  # the name book's epoch when it was named
    expires: float  # clock time past which its names may be older than the book's ttl
    body: bytes
    etag: str

    @property
    def size(self) -> int:
        return len(self.body) + ENTRY_OVERHEAD


def etag_of(body: bytes) -> str:
    """A strong ETag for these bytes (the same bytes give the same tag on every node)."""
    return '"' + hashlib.sha1(body, usedforsecurity=False).hexdigest() + '"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` header names `etag` (weak or strong) or is `*`."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


class ReplyCache:
    """Kept replies by key, at most `max_bytes` in all (bodies and overhead), least
    recently used dropped first. One event loop uses it: no locks."""

    def __init__(self, max_bytes: int = REPLY_CACHE_BYTES, *, clock: Clock = time.monotonic):
        self.max_bytes = max_bytes
        self._clock = clock
        self._replies: OrderedDict[Hashable, KeptReply] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._replies)

    def get(self, key: Hashable, version: str, names_epoch: int) -> KeptReply | None:
        """The reply kept for `key` if it is of this version and names epoch and not
        expired; None otherwise (one that can no longer be sent is dropped)."""
        kept = self._sendable(key, names_epoch)
        if kept is None or kept.version != version:
            return None  # another version: the caller's newer reply replaces it
        self._replies.move_to_end(key)
        return kept

    def held_version(self, key: Hashable, names_epoch: int) -> str | None:
        """The version of the reply kept for `key` that could still be sent (to ask the
        owner whether it is still the one), or None."""
        kept = self._sendable(key, names_epoch)
        return None if kept is None else kept.version

    def _sendable(self, key: Hashable, names_epoch: int) -> KeptReply | None:
        kept = self._replies.get(key)
        if kept is not None and (kept.names_epoch != names_epoch or self._clock() >= kept.expires):
            self.drop(key)
            return None
        return kept

    def put(self, key: Hashable, reply: KeptReply) -> None:
        """Keep `reply` for `key` (replacing what was kept), then drop the least recently
        used until the bound holds; a reply larger than the bound is not kept."""
        self.drop(key)
        if reply.size > self.max_bytes:
            return
        self._replies[key] = reply
        self.bytes += reply.size
        while self.bytes > self.max_bytes:
            _, dropped = self._replies.popitem(last=False)
            self.bytes -= dropped.size

    def drop(self, key: Hashable) -> None:
        kept = self._replies.pop(key, None)
        if kept is not None:
            self.bytes -= kept.size

    def clear(self) -> None:
        self._replies.clear()
        self.bytes = 0
