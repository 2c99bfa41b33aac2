"""The plain Redis connections' seed list: the address that worked last comes first, and a
new connection asks the cluster for its nodes only when an address failed since the last
time or a minute has passed (no server needed)."""

from __future__ import annotations

from transport.redis_seeds import LEARN_EVERY, Seeds, addresses


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_connection_asks_and_the_next_ones_do_not() -> None:
    """Once the cluster listed its nodes, connections made soon after do not ask again."""
    clock = Clock()
    seeds = Seeds([("a", 1)], clock=clock)

    assert seeds.learn_now()
    seeds.add([("a", 1), ("b", 2)])
    clock.now += LEARN_EVERY - 1

    assert not seeds.learn_now()
    assert seeds.in_turn() == [("a", 1), ("b", 2)]


def test_a_minute_later_the_cluster_is_asked_again() -> None:
    """A connection made a minute after the last listing asks again."""
    clock = Clock()
    seeds = Seeds([("a", 1)], clock=clock)
    seeds.add([("b", 2)])
    clock.now += LEARN_EVERY

    assert seeds.learn_now()


def test_an_address_that_failed_makes_the_next_connection_ask() -> None:
    """After an address did not answer, the next connection asks at once, and the answer
    settles it until the next failure."""
    clock = Clock()
    seeds = Seeds([("a", 1), ("b", 2)], clock=clock)
    seeds.add([])

    seeds.failed()
    assert seeds.learn_now()
    seeds.add([("c", 3)])
    assert not seeds.learn_now()


def test_a_server_that_is_no_cluster_is_never_asked() -> None:
    """Once a server said it is no cluster, even a failure does not make connections ask."""
    seeds = Seeds([("a", 1)], clock=Clock())
    seeds.learning = False
    seeds.failed()

    assert not seeds.learn_now()


def test_the_address_that_worked_is_tried_first() -> None:
    """A connection tries the address that answered last before the others."""
    seeds = Seeds([("a", 1), ("b", 2), ("c", 3)])
    seeds.worked(("c", 3))

    assert seeds.in_turn() == [("c", 3), ("a", 1), ("b", 2)]


def test_every_named_address_once_in_order() -> None:
    """The setting's URLs give their hosts and ports in order, a repeat and a socket left out."""
    named = addresses("redis://:pw@h1:7000/0,redis://h2,unix:///tmp/r.sock,redis://h1:7000")

    assert named == [("h1", 7000), ("h2", 6379)]
