"""The notifications shard's batching rules (actors/notifications/batching.py): how a batch
is cut into runs of events, copies counted once, notices laid out in order, and big runs
written in bounded pieces."""

from __future__ import annotations

import itertools
import json

from actors.notifications.batching import first_of_each, lay_out, pieces, runs
from actors.notifications.notices import Notice


def notice(user_id: str, kind: str = "TransferSent") -> Notice:
    return Notice(
        user_id=user_id,
        category="money",
        kind=kind,
        title="Money sent",
        text="You sent 1.00 EUR.",
        html="<p>You sent 1.00 EUR.</p>",
        telegram="<b>Money sent</b>",
        data={"transfer_id": "t1"},
    )


def test_consecutive_events_form_one_run_and_others_stand_alone() -> None:
    """Events next to each other share a run; a read between them cuts it, in order."""
    batch = ["e1", "e2", "read", "e3", "read2", "read3", "e4", "e5", "e6"]
    cut = runs(batch, lambda item: item.startswith("e"))
    assert cut == [
        (True, ["e1", "e2"]),
        (False, ["read"]),
        (True, ["e3"]),
        (False, ["read2"]),
        (False, ["read3"]),
        (True, ["e4", "e5", "e6"]),
    ]
    assert [item for _, run in cut for item in run] == batch


def test_a_batch_of_no_events_is_all_singles_and_an_empty_one_nothing() -> None:
    """Without events every message is its own run; an empty batch has no runs."""
    assert runs(["a", "b"], lambda item: False) == [(False, ["a"]), (False, ["b"])]
    assert runs([], lambda item: True) == []


def test_only_the_first_of_an_id_counts() -> None:
    """A copy of an envelope later in the batch is marked as not first."""
    assert first_of_each(["a", "b", "a", "c", "b"]) == [True, True, False, True, False]
    assert first_of_each([]) == []


def test_notices_lay_out_as_feed_items_and_targets_in_order() -> None:
    """In-app pairs become feed items (with fresh ids, JSON data), others delivery targets,
    each in the notices' order."""
    ids = (f"id-{n}" for n in itertools.count())
    laid = lay_out(
        [notice("amy"), notice("bob", "TransferReceived")],
        [[("inapp", "amy"), ("telegram", "1001")], [("inapp", "bob"), ("email", "b@x.org")]],
        lambda: next(ids),
    )
    assert [(item.id, item.user_id, item.kind) for item in laid.feed] == [
        ("id-0", "amy", "TransferSent"),
        ("id-1", "bob", "TransferReceived"),
    ]
    assert json.loads(laid.feed[0].data) == {"transfer_id": "t1"}
    assert [(t.user_id, t.channel, t.recipient) for t in laid.targets] == [
        ("amy", "telegram", "1001"),
        ("bob", "email", "b@x.org"),
    ]


def test_a_notice_reaching_nobody_lays_out_nothing() -> None:
    """A notice with no channel left (all switched off) stores nothing."""
    laid = lay_out([notice("amy")], [[]], lambda: "never")
    assert laid.feed == []
    assert laid.targets == []


def test_pieces_keep_order_and_stay_under_the_limit() -> None:
    """Consecutive events go together while their notices fit the limit; every event is
    in exactly one piece, in order."""
    assert pieces([2, 2, 2, 2], 5) == [range(0, 2), range(2, 4)]
    assert pieces([1, 1, 1], 5) == [range(0, 3)]
    assert pieces([], 5) == []
    for sizes in ([3, 9, 1, 1, 4, 0, 5], [5, 5, 5], [0, 0, 0]):
        cut = pieces(sizes, 5)
        assert [i for piece in cut for i in piece] == list(range(len(sizes)))
        for piece in cut:
            assert len(piece) == 1 or sum(sizes[i] for i in piece) <= 5


def test_an_event_bigger_than_the_limit_is_a_piece_of_its_own() -> None:
    """A 1,000-member group's event is never cut in two, nor joined to its neighbours."""
    assert pieces([1, 1_000, 1], 500) == [range(0, 1), range(1, 2), range(2, 3)]
