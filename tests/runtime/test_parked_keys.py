"""ParkedKeys, the bookkeeping of keys set aside after a crash (pure, no transport)."""

from __future__ import annotations

import msgspec

from actors.runtime.backoff import Backoff
from actors.runtime.parked import ParkedKeys
from transport import Envelope


def envelope(n: int, attempt: int = 0) -> Envelope:
    return Envelope(id=f"m{n}", target="t", shard=0, kind="tell", body=n, attempt=attempt)


def parked(limit: int = 10) -> ParkedKeys:
    return ParkedKeys(Backoff(1.0, 8.0), limit=limit)


def test_a_parked_key_holds_its_later_messages_in_order_until_released() -> None:
    """Messages for a parked key wait behind its failed one; release hands them back in
    arrival order and unparks the key; other keys are never held."""
    keys = parked()
    keys.park("a", envelope(0, attempt=1), now=100.0)
    assert keys.hold("a", envelope(1))
    assert keys.hold("a", envelope(2))
    assert not keys.hold("b", envelope(3))
    assert keys.count == 3
    head = keys.take_head("a")
    assert [e.id for e in keys.release("a", head) or []] == ["m1", "m2"]
    assert keys.queues == {}
    assert keys.count == 0


def test_retries_fall_due_after_the_backoff_of_their_attempt() -> None:
    """The head is due after Backoff(attempt); a second failure waits twice as long, and the
    longest overdue key comes first."""
    keys = parked()
    keys.park("a", envelope(0, attempt=1), now=100.0)
    keys.park("b", envelope(1, attempt=1), now=100.5)
    assert keys.due(now=100.9) is None
    assert keys.next_due() == 101.0
    assert keys.due(now=102.0) == "a"
    failed_again = msgspec.structs.replace(keys.take_head("a"), attempt=2)
    keys.park("a", failed_again, now=102.0)
    assert keys.queues["a"].due == 104.0
    assert keys.due(now=102.0) == "b"


def test_a_key_is_not_released_while_its_head_waits_for_a_retry() -> None:
    """release refuses a message that is not the head in hand (its retry still pending)."""
    keys = parked()
    failed = envelope(0, attempt=1)
    keys.park("a", failed, now=0.0)
    keys.hold("a", envelope(1))
    assert keys.release("a", failed) is None  # not taken in hand: a retry is pending
    assert keys.release("a", envelope(1)) is None  # not the head
    assert keys.count == 2


def test_a_head_taken_but_never_finished_is_due_again_after_wake_idle() -> None:
    """A retry cut off by a stop (head in hand, no due time) is due at once after wake_idle."""
    keys = parked()
    keys.park("a", envelope(0, attempt=1), now=0.0)
    keys.take_head("a")
    assert keys.due(now=50.0) is None
    keys.wake_idle(now=50.0)
    assert keys.due(now=50.0) == "a"


def test_the_limit_says_when_no_more_should_be_taken() -> None:
    """`full` once as many messages are held as the limit allows."""
    keys = parked(limit=2)
    keys.park("a", envelope(0, attempt=1), now=0.0)
    before = keys.full
    keys.hold("a", envelope(1))
    assert (before, keys.full) == (False, True)
    assert [e.id for e in keys.envelopes()] == ["m0", "m1"]
    keys.clear()
    assert (keys.count, keys.queues) == (0, {})


def test_a_second_failure_for_a_parked_key_waits_behind_its_head() -> None:
    """A failed message whose key is parked behind another message joins the queue's end
    (counted, never ahead of the head)."""
    keys = parked()
    keys.park("a", envelope(0, attempt=1), now=0.0)
    keys.park("a", envelope(5, attempt=1), now=0.0)
    assert [e.id for e in keys.envelopes()] == ["m0", "m5"]
    assert keys.count == 2
