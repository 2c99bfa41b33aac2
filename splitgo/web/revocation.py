"""Revoked sessions, refused at the edge from memory: no database round trip per request.

An access token lives 15 minutes and names its session (`sid`). When a session ends (logout,
DELETE /auth/sessions/{id}, a password reset, refresh-token reuse), auth publishes
SessionsRevoked to the `broadcast` actor, which hands it to every node (memory: this
process; Redis: a pub/sub channel). Each node keeps the revoked sessions in a
`RevocationSet` — session id to the moment its last access token has expired, after which
the entry goes — and the verifier consults it after the signature check.

Pub/sub can drop what is published while a node's subscription is down, and a node that
starts has heard nothing: so at start and after every (re)connection of the subscription
the set is reloaded from PostgreSQL by asking auth (`ListRevokedSessions`); until the first
load succeeds, bearer requests are refused (503 `revocations_loading`), never let through.

The set is bounded. When it is full, the session whose tokens expire soonest is dropped
and the set's floor rises to its revocation: tokens issued before the floor are refused
(401 `invalid_token`, "refresh it"), so a dropped session stays refused and live sessions
only need a refresh. The same holds when a reload comes back truncated.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import structlog

from actors.auth.messages import (
    ACCESS_TOKEN_SECONDS,
    REVOCATION_SECONDS,
    REVOKED_SESSIONS_MAX,
    AccessClaims,
    AccessTokenVerifier,
    InvalidToken,
    ListRevokedSessions,
    RevokedSessions,
    SessionRevoked,
    SessionsRevoked,
)
from actors.runtime import Backoff, Clock, DomainError, Message, wall_clock

log = structlog.get_logger("splitgo.revocation")

Refusal = Literal["revoked", "too_old"]
AskRevoked = Callable[[ListRevokedSessions], Awaitable[Any]]

# between failed loads (auth not reachable yet, say)
LOAD_RETRY = Backoff(0.2, 10.0, jitter=0.2)


class RevocationsLoading(DomainError):
    """This node has not yet loaded the revoked sessions: it cannot tell a revoked access
    token from a good one, so it refuses them all for now."""

    code = "revocations_loading"
    category = "unavailable"


class RevocationSet:
    """Revoked session ids, each until its last access token has expired; at most
    `capacity` of them (past it, the floor of issue times rises instead)."""

    def __init__(
        self,
        *,
        capacity: int = REVOKED_SESSIONS_MAX,
        token_lifetime: float = ACCESS_TOKEN_SECONDS,
    ) -> None:
        if capacity < 1:
            raise ValueError("a revocation set holds at least one session")
        self.capacity = capacity
        self.token_lifetime = token_lifetime
        self._until: dict[str, float] = {}
        # (until, session id) soonest first; an entry whose until is no longer the
        # session's is stale and skipped when it surfaces
        self._heap: list[tuple[float, str]] = []
        # tokens issued at or before this (epoch seconds) are refused: dropped sessions
        self.floor = -math.inf
        self.dropped = 0  # sessions dropped because the set was full

    def __len__(self) -> int:
        return len(self._until)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._until

    def add(self, session_id: str, until: float, now: float) -> None:
        """Refuse `session_id`'s tokens until `until` (a second add keeps the later)."""
        known = self._until.get(session_id)
        if until <= now or (known is not None and known >= until):
            return
        self.prune(now)
        if known is None and len(self._until) >= self.capacity:
            self._drop_soonest()
        self._until[session_id] = until
        heapq.heappush(self._heap, (until, session_id))
        if len(self._heap) > 2 * self.capacity:
            # re-adds left stale entries behind: rebuild from the live ones
            self._heap = [(u, s) for s, u in self._until.items()]
            heapq.heapify(self._heap)

    def raise_floor(self, until: float) -> None:
        """Sessions whose tokens expire by `until` may be unknown here: refuse every token
        issued by the revocation that `until` stands for."""
        self.floor = max(self.floor, until - self.token_lifetime)

    def prune(self, now: float) -> int:
        """Forget sessions whose tokens have all expired; how many went."""
        removed = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            until, session_id = heapq.heappop(heap)
            if self._until.get(session_id) == until:
                del self._until[session_id]
                removed += 1
        return removed

    def refusal(self, session_id: str, issued_at: float, now: float) -> Refusal | None:
        """Why a token of this session, issued then, is refused now (None: it is not)."""
        self.prune(now)
        if session_id in self._until:
            return "revoked"
        if issued_at <= self.floor:
            return "too_old"
        return None

    def _drop_soonest(self) -> None:
        while self._heap:
            until, session_id = heapq.heappop(self._heap)
            if self._until.get(session_id) == until:
                del self._until[session_id]
                self.raise_floor(until)
                self.dropped += 1
                return


class Revocations:
    """This node's revoked sessions: fed by the broadcast (`heard`), reloaded from the
    record through auth (`resync`, at start and on every reconnection)."""

    def __init__(
        self,
        ask: AskRevoked,
        *,
        clock: Clock = wall_clock,
        revoked: RevocationSet | None = None,
        retry: Backoff = LOAD_RETRY,
    ) -> None:
        self.revoked = revoked if revoked is not None else RevocationSet()
        self._ask = ask
        self._clock = clock
        self._retry = retry
        self._loaded = asyncio.Event()
        self._stale = False
        self._task: asyncio.Task[None] | None = None
        self.loads = 0  # successful loads

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    async def ready(self) -> bool:
        """/readyz's probe: bearer requests are refused (503) until the first load."""
        return self._loaded.is_set()

    def heard(self, message: Message) -> None:
        """A broadcast listener: SessionsRevoked somewhere in the cluster."""
        if not isinstance(message, SessionsRevoked):
            return
        now = self._clock()
        for session_id in message.session_ids:
            self.revoked.add(session_id, message.expires_at, now)
        log.info(
            "sessions_revoked_heard",
            user_id=message.user_id,
            sessions=len(message.session_ids),
            reason=message.reason,
        )

    def resync(self) -> None:
        """Reload from the record, now (in the background) and once more if asked again
        while a load runs: whatever was published before this call is then in."""
        self._stale = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._reload(), name="revocations-reload"
            )

    async def wait_loaded(self, timeout: float) -> bool:
        """True once a load succeeded, False if none did within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._loaded.wait()
        except TimeoutError:
            return False
        return True

    def check(self, claims: AccessClaims, now: float) -> None:
        """Raise unless the token's session may still be used (signature checked before)."""
        if not self._loaded.is_set():
            raise RevocationsLoading(
                "This node is still loading which sessions were signed out; try again shortly.",
                details={"retry_after": 1},
            )
        refusal = self.revoked.refusal(claims.sid, claims.iat, now)
        if refusal == "revoked":
            raise SessionRevoked("This session was signed out or revoked; sign in again.")
        if refusal == "too_old":
            raise InvalidToken("This access token is too old to check here; refresh it.")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _reload(self) -> None:
        failures = 0
        while self._stale:
            self._stale = False
            try:
                await self._load_once()
            except Exception as error:
                failures += 1
                self._stale = True
                delay = self._retry.delay(failures)
                log.warning(
                    "revocations_load_failed",
                    error=f"{type(error).__name__}: {error}",
                    failures=failures,
                    retry_in_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _load_once(self) -> None:
        since = self._clock() - REVOCATION_SECONDS
        reply = await self._ask(ListRevokedSessions(since=since, limit=self.revoked.capacity))
        if not isinstance(reply, RevokedSessions):
            raise TypeError(f"ListRevokedSessions answered {type(reply).__name__}")
        now = self._clock()
        for item in reply.items:
            self.revoked.add(item.session_id, item.expires_at, now)
        if reply.truncated and reply.items:
            # the older ones were left out: refuse every token from before the oldest given
            self.revoked.raise_floor(min(item.expires_at for item in reply.items))
        self.loads += 1
        self._loaded.set()
        log.info(
            "revocations_loaded",
            sessions=len(reply.items),
            held=len(self.revoked),
            loads=self.loads,
        )


class RevocationAwareVerifier(AccessTokenVerifier):
    """The access-token verifier of an edge that refuses revoked sessions from memory."""

    def __init__(self, jwks: Mapping[str, Any], revocations: Revocations) -> None:
        super().__init__(jwks)
        self.revocations = revocations

    def verify(self, token: str, *, now: float | None = None) -> AccessClaims:
        now = time.time() if now is None else now
        claims = super().verify(token, now=now)
        self.revocations.check(claims, now)
        return claims
