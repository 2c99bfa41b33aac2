"""Hot profiles, a feature part of the auth actor: each shard keeps the users it owns in
memory (shared/DESIGN.md, "State lives with its owner"; actors/runtime/resident.py).

A user's id routes every message about them to one shard (`auth_key`), owned by one node
at a time. That shard answers GetUser and GetContacts from memory after the first read
(and names them in a GetNames from memory, while it keeps them: `kept_names`),
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

The same shard keeps the user's live sessions (`HotSessions`, `profiles.sessions`): what
ListSessions shows, loaded on first use and filtered by expiry at each read. Sessions are
mostly written where the user's id is not the key (a sign-in routes by email; a refresh or
a sign-out by its token; a reset by its link), so every write of a session calls
`sessions_changing` inside its transaction (`Sessions.open`, the rotation of a refresh
token, `publish_revoked`): on the owner it drops the copy at once; elsewhere it tells the
owner ForgetCachedSessions through the outbox. The transaction notes whose sessions it
changed: every auth transaction is a `SessionsTransaction` (`AuthContext.transaction`), so
once it has ended (committed, or failed maybe after COMMIT was sent) the owner is told
again directly, before the handler goes on to reply, and what the owner held is dropped
again. Only a transaction that wrote a session pays for that; a read (GetUser, ListSessions)
opens none and pays nothing. A transaction cancelled midway leaves the telling to the outbox
(what did not commit changed nothing). `sessions_changing` on any other transaction raises
`UntrackedSessionWrite`, rolling the write back: a session write can never leave a stale
copy behind. No refresh token or its hash is kept: a `KeptSession` holds what the list
shows and when it expires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import structlog

from actors.auth import store
from actors.auth.messages import ForgetCachedSessions, ForgetCachedUser
from actors.auth.store import SessionRow, UserRow
from actors.runtime import Actor, Context, Transaction, at
from actors.runtime.resident import Resident, deep_size

log = structlog.get_logger("actors.auth")

# an unused profile leaves memory after this long (the next read loads it again)
PROFILE_IDLE_SECONDS = 900.0
HOLDER = "profiles"
# a user's live sessions leave memory after this long unread
SESSIONS_IDLE_SECONDS = 900.0
SESSIONS_HOLDER = "auth_sessions"


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
        self.sessions = HotSessions(context)

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

    def kept_names(self, user_ids: list[str]) -> dict[str, str]:
        """The names of those of `user_ids` this shard owns and keeps now (none is read;
        a deleted user's is DELETED_NAME, as their row says): GetNames asks the table only
        for the rest."""
        held = self._held()
        if not len(held):
            return {}
        owns = self._context.owns
        found: dict[str, str] = {}
        for user_id in user_ids:
            # `in` first: only a kept user costs the routing hash and a use
            if user_id in held and owns(user_id):
                profile = held.get(user_id)
                if profile is not None:
                    found[user_id] = profile.name
        return found

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


# ── hot sessions ───────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class KeptSession:
    """A live session as the owner keeps it: what the list shows, and when it expires."""

    id: str
    user_agent: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime


def kept_session(row: SessionRow) -> KeptSession:
    assert row.expires_at is not None  # live_sessions reads it
    return KeptSession(
        id=row.id,
        user_agent=row.user_agent,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
    )


class UntrackedSessionWrite(RuntimeError):
    """A session was written in a transaction that does not tell the owner: a bug (every
    auth transaction is a `SessionsTransaction`); raised inside it, so nothing commits."""

    code = "untracked_session_write"


async def sessions_changing(tx: Transaction, user_id: str) -> None:
    """Call inside a transaction that opens, refreshes or ends a session of `user_id`: the
    owner forgets the user's kept sessions (now if this shard owns them; else through the
    outbox, and directly once the transaction has ended)."""
    if not isinstance(tx, SessionsTransaction):
        # raised in the transaction: the write rolls back rather than leave a copy stale
        raise UntrackedSessionWrite(
            "a session was written outside an auth transaction (AuthContext.transaction)"
        )
    await tx.sessions_changing(user_id)


class SessionsTransaction(Transaction):
    """The auth shard's transaction (`AuthContext.transaction`): it notes whose sessions it
    changed (`sessions_changing`), and once it has ended the owners forget them."""

    __slots__ = ("_hot", "_sessions_changed")

    def __init__(self, actor: Actor, hot: HotSessions, *, dedupe: bool = True) -> None:
        super().__init__(actor, dedupe=dedupe)
        self._hot = hot
        # made by the first session write: a transaction that writes none pays nothing more
        self._sessions_changed: set[str] | None = None

    async def sessions_changing(self, user_id: str) -> None:
        """See the module function `sessions_changing`."""
        if self._sessions_changed is None:
            self._sessions_changed = set()
        self._sessions_changed.add(user_id)
        await self._hot.changing(self, user_id)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, traceback)
        except Exception:  # maybe after COMMIT was sent: tell, as if it committed
            await self._settle(tell=True)
            raise
        except BaseException:  # cancelled: the outbox tells whoever a commit changed
            await self._settle(tell=False)
            raise
        await self._settle(tell=exc_type is None or issubclass(exc_type, Exception))

    async def _settle(self, *, tell: bool) -> None:
        changed, self._sessions_changed = self._sessions_changed, None
        if changed:
            await self._hot.settle(changed, tell=tell)


class HotSessions:
    """The live sessions of the users this shard owns, loaded on first use; every write of
    a session drops them (never updated in place: the next read loads the rows)."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def _held(self) -> Resident[str, tuple[KeptSession, ...]]:
        return self._context.resident(SESSIONS_HOLDER, size=deep_size, idle=SESSIONS_IDLE_SECONDS)

    async def live(self, user_id: str, now: float) -> list[KeptSession] | list[SessionRow]:
        """The user's live sessions at `now`, most recently used first: from memory when
        this shard owns the user and keeps them, else read (and kept)."""
        context = self._context
        if not context.owns(user_id):
            return await store.live_sessions(context.pool, user_id, now)
        kept = await self._held().load(user_id, lambda: self._read(user_id, now))
        if kept is None:  # more than a list shows: not kept
            return await store.live_sessions(context.pool, user_id, now)
        moment = at(now)
        return [session for session in kept if session.expires_at > moment]

    async def _read(self, user_id: str, now: float) -> tuple[KeptSession, ...] | None:
        limit = store.LIVE_SESSIONS_MAX
        rows = await store.live_sessions(self._context.pool, user_id, now, limit + 1)
        if len(rows) > limit:
            return None
        return tuple(kept_session(row) for row in rows)

    async def changing(self, tx: Transaction, user_id: str) -> None:
        """Inside a transaction that changes `user_id`'s sessions: see `sessions_changing`."""
        context = self._context
        if context.owns(user_id):
            self._held().drop(user_id)
        else:
            await tx.tell(context.name, ForgetCachedSessions(user_id=user_id), key=user_id)

    async def settle(self, users: set[str], *, tell: bool) -> None:
        """A transaction that changed these users' sessions ended: the owners forget them
        (here at once; elsewhere told directly, unless `tell` is off)."""
        context = self._context
        for user_id in sorted(users):
            if context.owns(user_id):
                self._held().drop(user_id)
            elif tell:
                await context.tell_self(ForgetCachedSessions(user_id=user_id), key=user_id)

    def forget(self, message: ForgetCachedSessions) -> None:
        """Another shard changed this user's sessions: the next read loads them again."""
        if self._context.owns(message.user_id):
            self._held().drop(message.user_id)
        else:  # the shard moved since it was sent: the owner now loads afresh anyway
            log.info("cached_sessions_not_owned", user_id=message.user_id)
