"""The soak's verdicts (tests/soak/checks.py, tests/soak/verify.py) on crafted histories:
a lost, doubled, mismatched or phantom effect is named, a clean history passes, and the
takeover windows' p99 is told apart from the steady state's."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.soak.__main__ import broken
from tests.soak.checks import (
    is_final,
    kill_times,
    latency_verdict,
    percentile,
    reads_off,
    reconcile,
)
from tests.soak.load import Client, Person, Request
from tests.soak.mix import went_through
from tests.soak.verify import reconcile_all

ANN = Person("u-ann", "ann@example.com", "token")


def test_a_clean_history_has_no_problem() -> None:
    """Every success stored once under the id it answered: clean."""
    found = reconcile("transfer", {"k1": "t1", "k2": "t2"}, [("k1", "t1"), ("k2", "t2")])
    assert found.clean
    assert (found.confirmed, found.rows) == (2, 2)


def test_lost_doubled_mismatched_and_phantom_effects_are_named() -> None:
    """A success with no row is lost, a key with two rows doubled (and, when it was sent
    more than once, doubled after a retry), a row under another id mismatched, and a row
    for a refused key phantom; a key never answered may or may not have a row."""
    found = reconcile(
        "expense",
        {"lost": "e1", "twice": "e2", "other": "e3", "fine": "e4"},
        [
            ("twice", "e2"),
            ("twice", "e9"),
            ("other", "e7"),
            ("fine", "e4"),
            ("refused", "e5"),
            ("unanswered", "e6"),
        ],
        unsettled={"unanswered"},
        retried={"twice"},
    )
    assert not found.clean
    assert found.lost == ["lost"]
    assert found.doubled == ["twice"]
    assert found.doubled_after_retry == ["twice"]
    assert found.mismatched == ["other", "twice"]
    assert found.phantom == ["refused"]
    assert found.summary()["lost"] == 1


def test_a_success_answered_without_an_id_is_only_checked_for_existence() -> None:
    """A retried sign-up answered `email_taken` names no id: its one row is enough."""
    assert reconcile("signup", {"a@example.com": None}, [("a@example.com", "u1")]).clean
    assert reconcile("signup", {"a@example.com": None}, []).lost == ["a@example.com"]


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)))
def test_stored_exactly_as_answered_is_clean_and_any_copy_is_doubled(
    confirmed: dict[str, str],
) -> None:
    """Rows made from the answers are clean; one row more under a key doubles that key."""
    rows = list(confirmed.items())
    assert reconcile("chat", confirmed, rows).clean
    for key, row_id in rows:
        assert reconcile("chat", confirmed, [*rows, (key, row_id)]).doubled == [key]


def test_a_node_serving_other_than_the_database_is_named() -> None:
    """A balance a node serves differently, or misses, or invents, is named with both
    amounts; nodes serving what the database holds pass."""
    stored = {"g:ann:EUR": 300, "g:bob:EUR": -300}
    assert reads_off({"n1": dict(stored), "n2": dict(stored)}, stored) == []
    served = {"n1": {"g:ann:EUR": 299, "g:bob:EUR": -300, "wallet:ann:EUR": 5}, "n2": {}}
    assert reads_off(served, stored) == [
        "n1 g:ann:EUR 299/300",
        "n1 wallet:ann:EUR 5/0",
        "n2 g:ann:EUR 0/300",
        "n2 g:bob:EUR 0/-300",
    ]


@pytest.mark.parametrize(
    ("status", "code", "final"),
    [
        (201, None, True),
        (303, None, True),
        (422, "insufficient_funds", True),
        (409, "email_taken", True),
        (0, "ClientConnectorError", False),
        (503, "unavailable", False),
        (202, None, False),
        (409, "idempotency_in_flight", False),
    ],
)
def test_which_answers_are_final(status: int, code: str | None, final: bool) -> None:
    """No answer, a 5xx, a 202 and an in-flight 409 are retried; the rest are final."""
    assert is_final(status, code) is final


def test_percentile_by_nearest_rank() -> None:
    """p99 of 1..100 is 99, p50 is 50; nothing gives None."""
    values = [float(n) for n in range(100, 0, -1)]
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile([], 99) is None


def test_requests_begun_after_a_kill_count_as_takeover() -> None:
    """Slow requests in the 20 s after a kill make the takeover p99; the bound compares."""
    steady = [(float(t), 0.1) for t in range(0, 100)]
    takeover = [(100.0 + t / 10, 0.5) for t in range(200)]
    verdict = latency_verdict(steady + takeover, [100.0], window=20.0, factor=3.0)
    assert (verdict.steady_count, verdict.takeover_count) == (100, 200)
    assert (verdict.steady_p99, verdict.takeover_p99) == (0.1, 0.5)
    assert verdict.held is False
    assert latency_verdict(steady, [], window=20.0).held is None


def test_kills_every_interval_but_not_at_the_end() -> None:
    """600 s with a kill every 120 s: four kills, none at the very end."""
    assert kill_times(600, 120) == [120, 240, 360, 480]
    assert kill_times(100, 120) == []


async def test_a_retried_transfer_stored_twice_is_found_doubled() -> None:
    """From the client's own records: a transfer that needed a retry and left two rows is
    doubled after a retry; a refused one with no row is neither lost nor phantom."""
    async with aiohttp.ClientSession() as http:
        client = Client(http, list)
    retried = Request("transfer", "POST", "/api/v1/transfers", {"note": "k1"}, "k1", ANN)
    retried.answers = [(0, "ServerDisconnectedError"), (201, None)]
    retried.reply = {"id": "t1"}
    refused = Request("transfer", "POST", "/api/v1/transfers", {"note": "k2"}, "k2", ANN)
    refused.answers = [(422, "insufficient_funds")]
    client.sent = [retried, refused]
    rows = {"transfer": [("k1", "t1"), ("k1", "t8")], "expense": [], "chat": []}
    rows |= {"top_up": [], "signup": []}
    [transfers, *others] = reconcile_all(client, rows)
    assert transfers.doubled_after_retry == ["k1"]
    assert transfers.lost == []
    assert transfers.phantom == []
    assert all(other.clean for other in others)


def test_the_soak_fails_on_a_lost_transfer_and_passes_a_clean_run() -> None:
    """The run's verdict: a lost transfer or a ledger off zero is a problem (exit 1); a
    clean result has none."""
    money: dict[str, Any] = {
        "ledger_nonzero": {},
        "accounts_off_their_entries": [],
        "groups_not_summing_to_zero": [],
        "group_balances_off_recount": [],
    }
    clean = reconcile("transfer", {"k1": "t1"}, [("k1", "t1")]).summary()
    checked: dict[str, Any] = {
        "reconciled": [clean],
        "replay_differs": [],
        "money": money,
        "reads_off_database": [],
        "wallets_off_answers": {},
    }
    result: dict[str, Any] = {"checks": checked, "kills": [{"node": "n1", "ready_after_s": 12.0}]}
    assert broken(result) == []
    lost = reconcile("transfer", {"k1": "t1", "k2": "t2"}, [("k1", "t1")]).summary()
    result["checks"] = {
        **checked,
        "reconciled": [lost],
        "money": {**money, "ledger_nonzero": {"EUR": 5}},
    }
    problems = broken(result)
    assert len(problems) == 2
    assert "'lost': 1" in problems[0]
    assert problems[1] == "ledger_nonzero: {'EUR': 5}"


@pytest.mark.parametrize(
    ("answers", "paid"),
    [
        ([(303, None)], True),
        ([(0, "ServerDisconnectedError"), (409, "checkout_decided")], True),
        ([(409, "checkout_decided")], False),
        ([(0, "ServerDisconnectedError"), (404, "top_up_not_found")], False),
    ],
)
def test_a_press_of_pay_went_through(answers: list[tuple[int, str | None]], paid: bool) -> None:
    """A 303 paid; "already decided" after an unanswered press means that press paid."""
    pay = Request("pay", "POST", "/sandbox/checkout/c1/pay", None, None, None)
    pay.answers = answers
    assert went_through(pay) is paid
