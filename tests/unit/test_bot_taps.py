"""Double taps in the bot: an identical send from one chat within the window shares the
first send's idempotency key; anything else gets its own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from splitgo.bot.taps import DoubleTaps


def test_an_identical_send_within_the_window_reuses_the_first_key() -> None:
    """Two taps 2 s apart are one request; after the window the same text is new."""
    taps = DoubleTaps(window=10.0)
    assert taps.key(1, "10 Taxi", 100, at=0.0) == "1:100"
    assert taps.key(1, "10 Taxi", 101, at=2.0) == "1:100"
    assert taps.key(1, "10 Taxi", 102, at=30.0) == "1:102"


def test_other_texts_and_other_chats_have_their_own_keys() -> None:
    """A different text, or the same text from another chat, is another request."""
    taps = DoubleTaps(window=10.0)
    assert taps.key(1, "10 Taxi", 100, at=0.0) == "1:100"
    assert taps.key(1, "11 Taxi", 101, at=1.0) == "1:101"
    assert taps.key(2, "10 Taxi", 7, at=1.0) == "2:7"


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["a", "b"])), max_size=200))
def test_memory_stays_bounded(sends: list[tuple[int, str]]) -> None:
    """However many sends arrive, no more than `size` are remembered."""
    taps = DoubleTaps(window=10.0, size=3)
    for number, (chat, text) in enumerate(sends):
        taps.key(chat, text, number, at=float(number))
    assert len(taps) <= 3
