"""People, not UUIDs: the edge's name book asks auth once per unknown id, keeps what it
heard and follows renames; the walker puts names beside every id a reply mentions; notices
and the CSV say names instead of ids."""

from __future__ import annotations

from datetime import date
from typing import Any

from actors.auth.messages import GetNames, Names, Person, ProfileChanged
from actors.notifications.notices import Notice, with_names
from actors.splits.export import ExportRow, export_csv
from splitgo.web.names import NameBook, name_people

AMY = "0b7f3a1c-1111-4a5b-9c0d-000000000001"
BOB = "0b7f3a1c-2222-4a5b-9c0d-000000000002"
PEOPLE = {AMY: "Amy Pond", BOB: "Bob"}


class Auth:
    """Answers GetNames from a dict and counts the asks."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.people = dict(PEOPLE)

    async def __call__(self, message: GetNames) -> Names:
        self.asked.append(list(message.user_ids))
        return Names(
            people=[
                Person(user_id=u, name=self.people[u]) for u in message.user_ids if u in self.people
            ]
        )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_names_are_asked_once_and_kept() -> None:
    """A second reply mentioning the same people asks auth nothing."""
    auth = Auth()
    book = NameBook(auth)
    assert await book.names([AMY, BOB, AMY]) == PEOPLE
    assert await book.names([BOB]) == {BOB: "Bob"}
    assert auth.asked == [[AMY, BOB]]


async def test_unknown_ids_stay_unnamed() -> None:
    """An id auth does not know gets no name (and is asked again next time)."""
    book = NameBook(Auth())
    assert await book.names(["nobody"]) == {}


async def test_a_rename_heard_on_the_broadcast_shows_at_once() -> None:
    """ProfileChanged replaces the kept name without asking auth."""
    auth = Auth()
    book = NameBook(auth)
    await book.names([AMY])
    book.heard(ProfileChanged(user_id=AMY, name="Amelia"))
    assert await book.names([AMY]) == {AMY: "Amelia"}
    assert len(auth.asked) == 1


async def test_entries_expire_and_a_reconnection_forgets_everything() -> None:
    """Past the ttl, or after the broadcast reconnected, names are asked again."""
    auth, clock = Auth(), Clock()
    book = NameBook(auth, ttl=60.0, clock=clock)
    await book.names([AMY])
    clock.now = 61.0
    auth.people[AMY] = "Amelia"
    assert await book.names([AMY]) == {AMY: "Amelia"}
    book.forget_all()
    assert len(book) == 0
    await book.names([AMY])
    assert len(auth.asked) == 3


async def test_the_book_stays_bounded() -> None:
    """No more than `size` names are kept; the oldest go first."""
    auth = Auth()
    auth.people = {f"u{i}": f"N{i}" for i in range(10)}
    book = NameBook(auth, size=3)
    await book.names(auth.people)
    assert len(book) == 3


async def test_every_mentioned_user_gets_a_name_beside_the_id() -> None:
    """Members, payers, shares and roles are named; a driver sees the rider's first name;
    an activity summary written with ids says names; emails never appear."""
    reply: dict[str, Any] = {
        "members": [{"user_id": AMY}, {"user_id": BOB}],
        "paid_by": [{"user_id": BOB, "amount": 100}],
        "from_user_id": AMY,
        "to_user_id": BOB,
        "rider_id": AMY,
        "items": [{"actor_user_id": BOB, "summary": f"{BOB} paid {AMY} 2.50 EUR"}],
    }
    assert await name_people(reply, NameBook(Auth()))
    assert [m["name"] for m in reply["members"]] == ["Amy Pond", "Bob"]
    assert reply["paid_by"][0]["name"] == "Bob"
    assert (reply["from_user_name"], reply["to_user_name"]) == ("Amy Pond", "Bob")
    assert reply["rider_name"] == "Amy"
    assert reply["items"][0]["actor_user_name"] == "Bob"
    assert reply["items"][0]["summary"] == "Bob paid Amy Pond 2.50 EUR"
    assert "@" not in str(reply)


async def test_a_name_the_view_gave_is_kept_and_nothing_to_name_asks_nothing() -> None:
    """The walker never overwrites a name a view set, and a reply with no ids costs no ask."""
    auth = Auth()
    book = NameBook(auth)
    given = {"user_id": AMY, "name": "Given"}
    await name_people(given, book)
    assert given["name"] == "Given"
    assert not await name_people({"amount": 1, "items": []}, book)
    assert auth.asked == [[AMY]]


def test_a_notice_says_names_instead_of_ids_escaped_for_html() -> None:
    """Every channel's text of a notice names people; HTML channels escape the name."""
    notice = Notice(
        user_id=BOB,
        category="money",
        kind="TransferCompleted",
        title="Money received",
        text=f"You received 2.50 EUR from {AMY}.",
        html=f"<p>You received 2.50 EUR from {AMY}.</p>",
        telegram=f"<b>Money</b> from {AMY}",
    )
    named = with_names(notice, {AMY: "Amy <3"})
    assert named.text == "You received 2.50 EUR from Amy <3."
    assert named.html == "<p>You received 2.50 EUR from Amy &lt;3.</p>"
    assert named.telegram == "<b>Money</b> from Amy &lt;3"


def test_the_csv_names_its_columns_and_payers() -> None:
    """Share columns and payers are names; two people of one name are told apart."""
    row = ExportRow(
        id="e1",
        day=date(2026, 1, 2),
        description="Dinner",
        category="food",
        amount=300,
        currency="EUR",
        payers=[(AMY, 300)],
        shares=[(AMY, 100), (BOB, 100), ("c-3", 100)],
    )
    text = export_csv([row], [AMY, BOB, "c-3"], {AMY: "Amy", BOB: "Bob", "c-3": "Bob"})
    header, line = text.splitlines()
    assert header.endswith(f"share:Amy,share:Bob ({BOB[:8]}),share:Bob (c-3)")
    assert ",Amy=3.00," in line
