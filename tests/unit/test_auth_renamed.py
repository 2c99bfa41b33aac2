"""`splitgo.web.names.renamed`: what PATCH /api/v1/me and the account page both call after a
rename, so the node's NameBook says the new name at once."""

from __future__ import annotations

from aiohttp import web

from actors.auth.messages import GetNames, Names, Person
from splitgo.web.names import NAMES, NameBook, renamed


class Auth:
    """Stands in for auth's GetNames: the names it knows, and the asks it was sent."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[list[str]] = []

    async def __call__(self, message: GetNames) -> Names:
        self.asked.append(list(message.user_ids))
        return Names(
            people=[
                Person(user_id=u, name=self.names[u]) for u in message.user_ids if u in self.names
            ]
        )


async def test_a_rename_is_named_at_once_without_asking_auth() -> None:
    """After `renamed`, the book names the new name (kept before or not) and asks nobody."""
    auth = Auth({"u1": "Alice"})
    book = NameBook(auth)
    app = web.Application()
    app[NAMES] = book
    assert await book.names(["u1"]) == {"u1": "Alice"}
    epoch = book.epoch
    renamed(app, "u1", "Alice Liddell")
    renamed(app, "u2", "Bob")
    assert await book.names(["u1", "u2"]) == {"u1": "Alice Liddell", "u2": "Bob"}
    assert auth.asked == [["u1"]]
    assert book.epoch > epoch  # replies named with the old name are retired


def test_a_node_without_a_book_ignores_a_rename() -> None:
    """An app with no NameBook (no names middleware) takes `renamed` as a no-op."""
    renamed(web.Application(), "u1", "Alice")
