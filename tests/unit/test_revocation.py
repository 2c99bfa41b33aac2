"""The edge's revoked sessions (splitgo/web/revocation.py), the broadcast that feeds them,
and the verifier's refusals: a revocation set with expiry and a bound, loads through a
stand-in for auth, and tokens issued in the future."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from actors.auth.messages import (
    ACCESS_TOKEN_SECONDS,
    IAT_LEEWAY_SECONDS,
    REVOCATION_SECONDS,
    AccessClaims,
    InvalidToken,
    ListRevokedSessions,
    RevokedSession,
    RevokedSessions,
    SessionRevoked,
    SessionsRevoked,
)
from actors.auth.tokens import SigningKeys
from actors.runtime import ActorSystem, Backoff, MemoryDeadLetterStore
from actors.runtime.broadcast import BROADCAST, spawn_relay
from splitgo.web.revocation import (
    RevocationAwareVerifier,
    Revocations,
    RevocationSet,
    RevocationsLoading,
)
from transport import Codec, MemoryTransport, Message
from transport.broadcast import LocalBroadcast

NOW = 1_900_000_000.0
KEYS = SigningKeys(keys={"k1": b"k" * 32}, current="k1")


def claims(sid: str, iat: float = NOW) -> AccessClaims:
    return AccessClaims(
        sub="u1", roles=["user"], sid=sid, iat=int(iat), exp=int(iat) + ACCESS_TOKEN_SECONDS
    )


def revoked_event(*sids: str, at: float = NOW) -> SessionsRevoked:
    return SessionsRevoked(
        user_id="u1", session_ids=list(sids), reason="logout", expires_at=at + REVOCATION_SECONDS
    )


# ── the set ────────────────────────────────────────────────────────────────────────────


def test_a_revoked_session_is_refused_until_its_tokens_expire_then_forgotten() -> None:
    """An entry refuses its session until its expiry and is pruned after it."""
    revoked = RevocationSet()
    revoked.add("s1", NOW + REVOCATION_SECONDS, NOW)
    assert revoked.refusal("s1", NOW, NOW) == "revoked"
    assert revoked.refusal("s2", NOW, NOW) is None
    assert revoked.refusal("s1", NOW, NOW + REVOCATION_SECONDS - 1) == "revoked"
    assert revoked.refusal("s1", NOW, NOW + REVOCATION_SECONDS) is None
    assert len(revoked) == 0


def test_prune_drops_only_expired_entries_and_an_expired_add_is_ignored() -> None:
    """Pruning removes exactly the entries past their expiry; adding one already past it
    stores nothing; a second add keeps the later expiry."""
    revoked = RevocationSet()
    for n in range(10):
        revoked.add(f"s{n}", NOW + n + 1, NOW)
    revoked.add("late", NOW + 5, NOW)
    revoked.add("late", NOW + 100, NOW)
    revoked.add("late", NOW + 50, NOW)  # earlier than known: kept at +100
    revoked.add("gone", NOW - 1, NOW)
    assert "gone" not in revoked
    assert revoked.prune(NOW + 5) == 5
    assert len(revoked) == 6
    assert "late" in revoked
    assert revoked.prune(NOW + 99) == 5
    assert revoked.refusal("late", NOW, NOW + 99) == "revoked"


def test_the_set_is_bounded_and_a_dropped_session_stays_refused_by_the_floor() -> None:
    """Past its capacity the set drops the session expiring soonest and refuses every
    token issued by that revocation instead: the dropped session's tokens stay refused,
    tokens issued after it pass."""
    revoked = RevocationSet(capacity=3)
    for n in range(5):  # revoked at NOW + n
        revoked.add(f"s{n}", NOW + n + REVOCATION_SECONDS, NOW)
    assert len(revoked) == 3
    assert revoked.dropped == 2
    assert {"s2", "s3", "s4"} == {s for s in ("s0", "s1", "s2", "s3", "s4") if s in revoked}
    # s1 was revoked at NOW + 1: none of its tokens was issued later than that (+ leeway)
    assert revoked.floor == NOW + 1 + IAT_LEEWAY_SECONDS
    assert revoked.refusal("s1", NOW + 1, NOW + 2) == "too_old"
    assert revoked.refusal("s0", NOW - 100, NOW + 2) == "too_old"
    assert revoked.refusal("fresh", NOW + 2 + IAT_LEEWAY_SECONDS, NOW + 2) is None


def test_many_re_adds_keep_memory_bounded() -> None:
    """Re-adding the same sessions with later expiries over and over keeps the set at
    its sessions, never growing past its capacity."""
    revoked = RevocationSet(capacity=10)
    for round_ in range(1_000):
        for n in range(10):
            revoked.add(f"s{n}", NOW + 1_000 + round_, NOW)
    assert len(revoked) == 10
    assert revoked.dropped == 0
    assert len(revoked._heap) <= 2 * revoked.capacity


# ── loading and hearing ───────────────────────────────────────────────────────────────


class FakeAuth:
    """Answers ListRevokedSessions like auth would, failing the first `failures` times."""

    def __init__(self, items: list[RevokedSession], *, failures: int = 0) -> None:
        self.items = items
        self.failures = failures
        self.asked: list[ListRevokedSessions] = []
        self.truncated = False
        # when set: the first load reads the record, then waits for it (a slow answer)
        self.hold: asyncio.Event | None = None

    async def __call__(self, message: ListRevokedSessions) -> Any:
        self.asked.append(message)
        if self.failures:
            self.failures -= 1
            raise TimeoutError("auth is not there yet")
        read = list(self.items)
        hold, self.hold = self.hold, None
        if hold is not None:
            await hold.wait()
        return RevokedSessions(items=read, truncated=self.truncated)


async def poll(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


def revocations(auth: FakeAuth) -> Revocations:
    return Revocations(auth, clock=lambda: NOW, retry=Backoff(0.001, 0.01))


async def test_tokens_are_refused_with_503_until_the_first_load() -> None:
    """Before it has loaded the record the edge cannot tell a revoked session from a good
    one: it refuses every token (503 revocations_loading) and /readyz's probe says not
    ready; after, only revoked ones are refused and the probe says ready."""
    auth = FakeAuth([RevokedSession(session_id="old", expires_at=NOW + 100)], failures=2)
    edge = revocations(auth)
    with pytest.raises(RevocationsLoading) as loading:
        edge.check(claims("s1"), NOW)
    assert loading.value.category == "unavailable"
    assert await edge.ready() is False
    edge.resync()
    assert await edge.wait_loaded(5.0)
    assert await edge.ready() is True
    assert len(auth.asked) == 3  # two failures, retried
    assert auth.asked[-1].since == NOW - REVOCATION_SECONDS
    edge.check(claims("s1"), NOW)
    with pytest.raises(SessionRevoked) as refused:
        edge.check(claims("old"), NOW)
    assert refused.value.code == "session_revoked"
    await edge.close()


async def test_a_resync_asked_during_a_load_loads_once_more() -> None:
    """A reconnection while a load runs is followed by one more load, so a revocation that
    landed after the first load's read is not missed."""
    auth = FakeAuth([])
    auth.hold = release = asyncio.Event()
    edge = revocations(auth)
    edge.resync()
    await poll(lambda: len(auth.asked) == 1)  # the first load has read the record
    auth.items.append(RevokedSession(session_id="late", expires_at=NOW + 100))
    edge.resync()  # a reconnection now: "late" may have been missed on the broadcast
    release.set()
    await poll(lambda: edge.loads == 2)
    with pytest.raises(SessionRevoked):
        edge.check(claims("late"), NOW)
    await edge.close()


async def test_a_truncated_load_refuses_tokens_older_than_what_it_gave() -> None:
    """When auth leaves older revocations out, tokens issued before the oldest one given
    are refused (they may belong to a session left out)."""
    auth = FakeAuth([RevokedSession(session_id="s9", expires_at=NOW + REVOCATION_SECONDS)])
    auth.truncated = True
    edge = revocations(auth)
    edge.resync()
    assert await edge.wait_loaded(5.0)
    with pytest.raises(InvalidToken, match="refresh it"):
        edge.check(claims("left-out", iat=NOW - 10), NOW)
    edge.check(claims("new", iat=NOW + IAT_LEEWAY_SECONDS + 1), NOW)
    await edge.close()


async def test_an_event_on_the_broadcast_is_refused_at_once() -> None:
    """SessionsRevoked heard on the broadcast is refused on the next check."""
    broadcast = LocalBroadcast()
    edge = revocations(FakeAuth([]))
    broadcast.listen(SessionsRevoked, edge.heard)
    broadcast.on_connected(edge.resync)
    await broadcast.start()
    assert await edge.wait_loaded(5.0)
    edge.check(claims("s1"), NOW)
    await broadcast.publish(revoked_event("s1", "s2"))
    for sid in ("s1", "s2"):
        with pytest.raises(SessionRevoked):
            edge.check(claims(sid), NOW)
    await edge.close()


# ── the verifier ───────────────────────────────────────────────────────────────────────


def test_a_token_issued_in_the_future_is_refused_beyond_the_leeway() -> None:
    """A token whose `iat` lies an hour ahead is refused; within the leeway it passes."""
    verifier = KEYS.verifier()
    ahead = KEYS.issue_access_token(user_id="u1", roles=["user"], session_id="s", now=NOW + 3600)
    with pytest.raises(InvalidToken, match="issued in the future"):
        verifier.verify(ahead, now=NOW)
    near = KEYS.issue_access_token(
        user_id="u1", roles=["user"], session_id="s", now=NOW + IAT_LEEWAY_SECONDS
    )
    assert verifier.verify(near, now=NOW).sid == "s"


async def test_the_edge_verifier_refuses_a_revoked_sessions_token() -> None:
    """The node's verifier checks the signature, then the revoked sessions."""
    edge = revocations(FakeAuth([RevokedSession(session_id="gone", expires_at=NOW + 60)]))
    edge.resync()
    assert await edge.wait_loaded(5.0)
    verifier = RevocationAwareVerifier(KEYS.public_jwks(), edge)
    good = KEYS.issue_access_token(user_id="u1", roles=["user"], session_id="ok", now=NOW)
    gone = KEYS.issue_access_token(user_id="u1", roles=["user"], session_id="gone", now=NOW)
    assert verifier.verify(good, now=NOW).sid == "ok"
    with pytest.raises(SessionRevoked):
        verifier.verify(gone, now=NOW)
    await edge.close()


# ── the broadcast ──────────────────────────────────────────────────────────────────────


async def test_a_failing_listener_does_not_keep_the_others_from_hearing() -> None:
    """One listener raising is logged; the next listener still hears the message."""
    broadcast = LocalBroadcast()
    heard: list[Message] = []

    def broken(message: Message) -> None:
        raise RuntimeError("broken listener")

    broadcast.listen(SessionsRevoked, broken)
    broadcast.listen(SessionsRevoked, heard.append)
    await broadcast.publish(revoked_event("s1"))
    assert heard == [revoked_event("s1")]


async def test_the_broadcast_actor_hands_what_it_is_told_to_every_listener() -> None:
    """An event told (or published through the outbox) to the `broadcast` actor reaches
    the node broadcast's listeners."""
    codec = Codec()
    system = ActorSystem(
        MemoryTransport(node_id="n1", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
    )
    await system.start()
    broadcast = LocalBroadcast()
    heard: list[Message] = []
    broadcast.listen(SessionsRevoked, heard.append)
    spawn_relay(system, broadcast, [SessionsRevoked])
    try:
        await system.ref(BROADCAST).ask(revoked_event("s1"))
        assert heard == [revoked_event("s1")]
    finally:
        await system.stop(1.0)
