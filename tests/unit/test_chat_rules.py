"""The chat actor's pure rules: a message's text, mentions, who hears of a message in a
quiet conversation, the edit window, the token bucket, conversation ids and shard keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.chat.messages import (
    EDIT_SECONDS,
    QUIET_SECONDS,
    RATE_BURST,
    RATE_PER_SECOND,
    TEXT_MAX,
    InvalidChatMessage,
    PostMessage,
    chat_key,
    conversation_id_for,
)
from actors.chat.rules import (
    Bucket,
    mentioned,
    message_text,
    still_editable,
    take_token,
    to_notify,
)

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def test_a_text_is_trimmed_and_cleaned() -> None:
    """Spaces around go, CRLF becomes LF, control and format characters go, and more than
    one blank line in a row becomes one."""
    assert message_text("  hi\r\nthere\u200b\x07 \n\n\n\nbye  ") == "hi\nthere \n\nbye"


@pytest.mark.parametrize("raw", ["", "   ", "\n\t\n", "\u200b\u200d"])
def test_an_empty_text_is_refused_naming_the_field(raw: str) -> None:
    """A text of nothing but space or invisible characters is refused at `$.text`."""
    with pytest.raises(InvalidChatMessage) as refused:
        message_text(raw)
    assert refused.value.details["field"] == "$.text"


def test_an_empty_text_is_allowed_beside_files() -> None:
    """A message of files alone needs no text."""
    assert message_text("  ", has_attachments=True) == ""


def test_an_oversized_text_is_refused_and_the_limit_is_taken() -> None:
    """TEXT_MAX characters are taken; one more is refused naming the limit."""
    assert len(message_text("é" * TEXT_MAX)) == TEXT_MAX
    with pytest.raises(InvalidChatMessage) as refused:
        message_text("x" * (TEXT_MAX + 1))
    assert refused.value.details == {"field": "$.text", "limit": TEXT_MAX}


@given(st.text(max_size=300))
def test_cleaning_a_text_twice_changes_nothing(raw: str) -> None:
    """The stored text is a fixed point: cleaning it again gives it back."""
    try:
        once = message_text(raw)
    except InvalidChatMessage:
        return
    assert message_text(once) == once
    assert once == once.strip()
    assert once


NAMES = {"u1": "Ann Lee", "u2": "Ann Marsh", "u3": "Bob", "u4": "Zoë Kim"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@Ann Lee please", ["u1"]),
        ("@ann marsh and @BOB", ["u2", "u3"]),
        ("@Ann alone is two people", []),  # not unique as a first name
        ("@zoë, @Zoë Kim", ["u4"]),  # a unique first name, and the full one
        ("email bob@example.com", []),
        ("@Bobby is not Bob", []),
        ("@Bob_ is not Bob", []),
        ("@Bob's turn", ["u3"]),
        ("no at sign", []),
    ],
)
def test_mentions_name_participants(text: str, expected: list[str]) -> None:
    """`@Name` (any case, ended by a non-word character) mentions a participant by full
    name or unique first name; a longer word or an address does not."""
    assert mentioned(text, NAMES, author_id="nobody") == expected


def test_an_author_never_mentions_themselves() -> None:
    """Ann Lee mentioning herself and Bob notifies Bob alone."""
    assert mentioned("@Ann Lee @Bob", NAMES, author_id="u1") == ["u3"]


def test_a_longer_name_wins_over_a_shorter_one() -> None:
    """With "Bob" and "Bob Ray" both present, `@Bob Ray` is Bob Ray only."""
    names = {"a": "Bob", "b": "Bob Ray"}
    assert mentioned("@Bob Ray", names, author_id="x") == ["b"]
    assert mentioned("@Bob and @Bob Ray", names, author_id="x") == ["a", "b"]


@given(st.text(max_size=200), st.dictionaries(st.text(max_size=8), st.text(max_size=20)))
def test_mentions_are_participants_and_never_the_author(text: str, names: dict[str, str]) -> None:
    """Whatever the text and names, only participants other than the author come out,
    each once."""
    author = next(iter(names), "author")
    found = mentioned(text, names, author_id=author)
    assert set(found) <= set(names) - {author}
    assert len(found) == len(set(found))


def test_a_quiet_conversation_tells_everyone_but_the_author_and_the_mentioned() -> None:
    """No message before, or the last one QUIET_SECONDS ago: everyone else is told;
    a second earlier nobody is."""
    people = ["a", "b", "c", "d"]
    assert to_notify(people, author_id="a", mentioned=["c"], previous_at=None, now=NOW) == [
        "b",
        "d",
    ]
    quiet = NOW - timedelta(seconds=QUIET_SECONDS)
    assert to_notify(people, author_id="a", mentioned=[], previous_at=quiet, now=NOW) == [
        "b",
        "c",
        "d",
    ]
    lively = quiet + timedelta(seconds=1)
    assert to_notify(people, author_id="a", mentioned=[], previous_at=lively, now=NOW) == []


def test_the_edit_window_is_fifteen_minutes_inclusive() -> None:
    """A message can change until EDIT_SECONDS after it was posted, not a second more."""
    assert still_editable(NOW, NOW + timedelta(seconds=EDIT_SECONDS))
    assert not still_editable(NOW, NOW + timedelta(seconds=EDIT_SECONDS + 1))


def test_a_bucket_takes_a_burst_then_one_a_second() -> None:
    """A new person posts RATE_BURST at once; the next waits a second; a second later
    one more is taken."""
    bucket = None
    for _ in range(RATE_BURST):
        bucket, wait = take_token(bucket, 100.0)
        assert wait == 0.0
    assert bucket is not None
    refused, wait = take_token(bucket, 100.0)
    assert refused == bucket
    assert wait == pytest.approx(1 / RATE_PER_SECOND)
    _taken, wait = take_token(bucket, 100.0 + 1 / RATE_PER_SECOND)
    assert wait == 0.0


def test_a_clock_going_back_refills_nothing() -> None:
    """An earlier time than the bucket's adds no tokens."""
    bucket = Bucket(tokens=0.0, at=100.0)
    _same, wait = take_token(bucket, 50.0)
    assert wait > 0


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=200))
def test_no_window_takes_more_than_the_burst_and_the_refill(gaps: list[float]) -> None:
    """Over any run of tries, the tokens taken never exceed RATE_BURST plus what the
    elapsed time refilled."""
    bucket: Bucket | None = None
    now, start, taken = 0.0, 0.0, 0
    for gap in gaps:
        now += gap
        after, wait = take_token(bucket, now)
        if wait == 0.0:
            taken += 1
            bucket = after
    assert taken <= RATE_BURST + (now - start) * RATE_PER_SECOND + 1e-9


def test_conversation_ids_are_the_same_from_either_side() -> None:
    """A direct conversation's id does not depend on who opens it; kinds never collide."""
    assert conversation_id_for("direct", "b", "a") == conversation_id_for("direct", "a", "b")
    assert conversation_id_for("group", "x") != conversation_id_for("expense", "x")
    with pytest.raises(ValueError, match="both people"):
        conversation_id_for("direct", "b")


def test_commands_are_keyed_by_conversation() -> None:
    """A message about a conversation is routed by it, whoever sends it."""
    message = PostMessage(conversation_id="c1", user_id="u", message_id="m", text="t")
    assert chat_key(message) == "c1"
