"""The edge's reply cache (issue 20): bounded by bytes, least recently used dropped first,
a reply sent only for its version, its name book epoch and before it expires; the name
book's epoch moves (and its kept replies go) whenever a name may have changed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.auth.messages import GetNames, Names, Person, ProfileChanged
from actors.runtime.errors import AskTimeout
from splitgo.web.names import NameBook, name_people_since
from splitgo.web.reply_cache import ENTRY_OVERHEAD, KeptReply, ReplyCache, etag_of, not_modified

AMY = "0b7f3a1c-1111-4a5b-9c0d-000000000001"
BOB = "0b7f3a1c-2222-4a5b-9c0d-000000000002"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Auth:
    """Answers GetNames from a dict it may be told to change."""

    def __init__(self) -> None:
        self.people = {AMY: "Amy", BOB: "Bob"}

    async def __call__(self, message: GetNames) -> Names:
        return Names(people=[Person(user_id=u, name=self.people[u]) for u in message.user_ids])


def reply(body: bytes = b"{}", *, version: str = "v1", epoch: int = 0) -> KeptReply:
    return KeptReply(
        version=version, names_epoch=epoch, expires=1_000.0, body=body, etag=etag_of(body)
    )


def test_a_reply_is_sent_only_for_its_version_epoch_and_before_it_expires() -> None:
    """The kept reply comes back for its own version and epoch; another version leaves it
    kept (a newer one replaces it), another epoch or its expiry drops it (and its version
    is no longer offered to the owner)."""
    clock = Clock()
    cache = ReplyCache(1 << 20, clock=clock)
    cache.put("g", reply(version="v1"))
    assert cache.held_version("g", 0) == "v1"
    assert cache.get("g", "v1", 0) == reply(version="v1")
    assert cache.get("g", "v2", 0) is None
    assert cache.held_version("g", 0) == "v1"
    cache.put("g", reply(version="v2"))
    assert len(cache) == 1
    assert cache.get("g", "v1", 0) is None
    assert cache.get("g", "v2", 1) is None
    assert cache.held_version("g", 0) is None
    cache.put("g", reply(version="v3"))
    clock.now = 1_000.0
    assert cache.get("g", "v3", 0) is None
    assert len(cache) == 0
    assert cache.bytes == 0
    cache.put("g", reply(version="v4", epoch=0))
    assert cache.held_version("g", 1) is None  # named before a rename: not to be asked for
    assert len(cache) == 0


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 3_000)), max_size=100))
def test_the_kept_bytes_never_pass_the_bound(puts: list[tuple[int, int]]) -> None:
    """However replies are kept, their bytes stay within the bound, and the one kept last
    is there whenever it fits at all."""
    bound = 8_000
    cache = ReplyCache(bound, clock=Clock())
    for key, size in puts:
        kept = reply(b"x" * size)
        cache.put(key, kept)
        assert cache.bytes <= bound
        assert cache.bytes == sum(ENTRY_OVERHEAD + len(r.body) for r in cache._replies.values())
        if kept.size <= bound:
            assert cache.get(key, "v1", 0) == kept
        else:
            assert cache.get(key, "v1", 0) is None


def test_the_least_recently_used_goes_first() -> None:
    """Room for two: the one not read since goes when a third comes."""
    one = reply(b"x" * 100)
    cache = ReplyCache(2 * one.size, clock=Clock())
    cache.put("a", one)
    cache.put("b", one)
    assert cache.get("a", "v1", 0) is not None
    cache.put("c", one)
    assert [cache.held_version(k, 0) for k in "abc"] == ["v1", None, "v1"]


def test_a_bound_of_zero_keeps_nothing() -> None:
    """SPLITGO_REPLY_CACHE_MB=0: every reply is made afresh, none is kept."""
    cache = ReplyCache(0, clock=Clock())
    cache.put("a", reply(b""))
    assert (len(cache), cache.bytes, cache.held_version("a", 0)) == (0, 0, None)


def test_if_none_match_names_the_etag() -> None:
    """A list, a weak tag or `*` match; another tag or no header do not."""
    tag = etag_of(b"body")
    assert tag == etag_of(b"body") != etag_of(b"other")
    assert not_modified(tag, tag)
    assert not_modified(f'"x", W/{tag}', tag)
    assert not_modified("*", tag)
    assert not not_modified('"x"', tag)
    assert not not_modified(None, tag)


async def test_the_epoch_moves_when_a_name_may_have_changed() -> None:
    """A rename heard, a name asked again that came back different and the book emptied
    each move the epoch and drop the kept replies; asking a name again unchanged does not."""
    auth, clock = Auth(), Clock()
    book = NameBook(auth, ttl=60.0, clock=clock)
    await book.names([AMY, BOB])
    start = book.epoch
    book.replies.put("g", reply(epoch=start))
    clock.now += 61.0
    await book.names([AMY])  # asked again, the same name
    assert book.epoch == start
    assert len(book.replies) == 1
    auth.people[AMY] = "Amelia"
    clock.now += 61.0
    await book.names([AMY])  # asked again, renamed unheard
    assert book.epoch == start + 1
    assert len(book.replies) == 0
    book.heard(ProfileChanged(user_id="someone-not-kept", name="Zed"))
    assert book.epoch == start + 2
    book.forget_all()
    assert book.epoch == start + 3


@pytest.mark.parametrize("unreachable", [False, True])
async def test_a_named_reply_says_how_fresh_its_names_are(unreachable: bool) -> None:
    """Naming says when the oldest name it used was kept, or None when auth could not be
    asked (such a reply is never kept)."""
    auth, clock = Auth(), Clock()

    async def ask(message: GetNames) -> Names:
        if unreachable:
            raise AskTimeout("auth is away")
        return await auth(message)

    book = NameBook(ask, ttl=60.0, clock=clock)
    if not unreachable:
        await book.names([AMY])
    clock.now += 10.0
    data = {"balances": [{"user_id": AMY}, {"user_id": BOB}]}
    since = await name_people_since(data, book)
    if unreachable:
        assert since is None
    else:
        assert since == 100.0  # Amy's, kept 10 s before Bob's
        assert [line["name"] for line in data["balances"]] == ["Amy", "Bob"]
