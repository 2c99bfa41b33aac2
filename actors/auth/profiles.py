"""Hot profiles, a feature part of the auth actor: each shard keeps the users it owns in
memory (shared/DESIGN.md, "State lives with its owner"; actors/runtime/resident.py).

A user's id routes every message about them to one shard (`auth_key`), owned by one node
at a time. That shard answers GetUser and GetContacts from memory after the first read,
and writes through: a handler that changed the user puts the row it committed right after
the commit (`wrote`), or drops the entry when the write failed (`write_failed`), so nothing
stale is ever answered from it.

Some writes happen before the id is known, on the shard their token or email routes to (a
verification link, a Telegram link, a sign-in by a provider, an admin made by email). Such
a shard tells the owner to forget the user (ForgetCachedUser) twice: directly, before its
handler replies, so whatever is asked about the user after the reply queues behind it on
the owner's shard; and through the outbox in the writing transaction (`changing`), so a
node that dies between its commit and the direct tell still has the owner forget. An owner
that crashes mid-write is restarted with its memory emptied; a write that raised is
dropped from it (`writing`).

Password hashes are never kept: a `Profile` holds what a view and contacts show, nothing
that signs anyone in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import structlog

from actors.auth import store
from actors.auth.messages import ForgetCachedUser
from actors.auth.store import UserRow
from actors.runtime import Context, Transaction
from actors.runtime.resident import Resident, deep_size

log = structlog.get_logger("actors.auth")

# an unused profile leaves memory after this long (the next read loads it again)
PROFILE_IDLE_SECONDS = 900.0
HOLDER = "profiles"


@dataclass(frozen=True, slots=True)
class Profile:
    """What a shard keeps of a user: their row without the password hash."""

    id: str
    email: str
    name: str
    email_verified: bool
    phone: str | None
    phone_verified: bool
    roles: tuple[str, ...]
    telegram_chat_id: int | None
    created_at: datetime
    deleted_at: datetime | None


def profile_of(row: UserRow) -> Profile:
    """The row as kept in memory (no password hash)."""
    return Profile(
        id=row.id,
        email=row.email,
        name=row.name,
        email_verified=row.email_verified,
        phone=row.phone,
        phone_verified=row.phone_verified,
        roles=row.roles,
        telegram_chat_id=row.telegram_chat_id,
        created_at=row.created_at,
        deleted_at=row.deleted_at,
    )


class Profiles:
    """The shard's hot users: read through on a miss, written through by their owner."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def _held(self) -> Resident[str, Profile]:
        # made on first use (the shard is running then), the same one after
        return self._context.resident(HOLDER, size=deep_size, idle=PROFILE_IDLE_SECONDS)

    async def get(self, user_id: str) -> Profile | None:
        """The user, from memory when this shard owns them and holds them; else read."""
        context = self._context
        if not context.owns(user_id):  # asked on a shard that cannot know of writes
            row = await store.user_by_id(context.pool, user_id)
            return profile_of(row) if row is not None else None
        return await self._held().load(user_id, lambda: self._read(user_id))

    async def _read(self, user_id: str) -> Profile | None:
        row = await store.user_by_id(self._context.pool, user_id)
        return profile_of(row) if row is not None else None

    async def wrote(self, user_id: str, row: UserRow | None = None) -> None:
        """Call right after a transaction that changed `user_id` committed: the owner keeps
        `row` (the committed row; None: forgets them), any other shard tells the owner."""
        if self._context.owns(user_id):
            if row is not None and row.id == user_id:
                self._held().put(user_id, profile_of(row))
            else:
                self._held().drop(user_id)
            return
        await self._context.tell_self(ForgetCachedUser(user_id=user_id), key=user_id)

    async def changing(self, tx: Transaction, user_id: str) -> None:
        """Inside a transaction that changes `user_id` on a shard that may not own them: the
        owner hears ForgetCachedUser through the outbox too, so even a node that dies
        between the commit and `wrote` leaves nothing stale behind."""
        if not self._context.owns(user_id):
            await tx.tell(self._context.name, ForgetCachedUser(user_id=user_id), key=user_id)

    @asynccontextmanager
    async def writing(self, user_id: str) -> AsyncIterator[None]:
        """Around a write of `user_id`: if it raises, the user is forgotten here (the write
        may have committed or not); call `wrote` after it."""
        try:
            yield
        except BaseException:
            self.write_failed(user_id)
            raise

    def write_failed(self, user_id: str) -> None:
        """A write about `user_id` raised (maybe after COMMIT was sent): forget them here."""
        if self._context.owns(user_id):
            self._held().drop(user_id)

    def forget(self, message: ForgetCachedUser) -> None:
        """Another shard changed this user: the next read loads them again."""
        if self._context.owns(message.user_id):
            self._held().drop(message.user_id)
        else:  # the shard moved since it was sent: the owner now loads afresh anyway
            log.info("cached_user_not_owned", user_id=message.user_id)
