"""The chat actor's names: asked of auth in one batch for a conversation, kept a minute."""

from __future__ import annotations

from typing import Any, cast

from actors.auth.messages import GetNames, Names, Person
from actors.chat.people import NAME_SECONDS, UNKNOWN, People
from actors.runtime import Context


class FakeContext:
    """Stands in for a shard's Context: a clock the test moves, and auth's answers."""

    def __init__(self) -> None:
        self.now = 100.0
        self.asked: list[list[str]] = []

    def clock(self) -> float:
        return self.now

    async def ask(self, actor: str, message: Any, **_: Any) -> Names:
        assert actor == "auth"
        assert isinstance(message, GetNames)
        self.asked.append(list(message.user_ids))
        return Names(
            people=[Person(user_id=u, name=u.upper()) for u in message.user_ids if u != "gone"]
        )


def people() -> tuple[People, FakeContext]:
    context = FakeContext()
    return People(cast(Context, context)), context


async def test_a_miss_asks_for_the_whole_conversation_once() -> None:
    """The first author's name is asked for with everyone else's in one ask; the others'
    first messages then ask nothing."""
    book, context = people()
    assert await book.names(["a"], along=["a", "b", "c"]) == {"a": "A"}
    assert await book.names(["b"], along=["a", "b", "c"]) == {"b": "B"}
    assert await book.name("c") == "C"
    assert context.asked == [["a", "b", "c"]]


async def test_names_are_asked_again_after_a_minute_and_unknown_ones_say_someone() -> None:
    """A kept name is asked for again once NAME_SECONDS have passed; a user auth does not
    name is "Someone"."""
    book, context = people()
    await book.names(["a"])
    context.now += NAME_SECONDS + 1
    assert await book.names(["a", "gone"]) == {"a": "A", "gone": UNKNOWN}
    assert await book.name("gone") == UNKNOWN
    assert context.asked == [["a"], ["a", "gone"]]
