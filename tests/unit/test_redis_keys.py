"""The Redis transport's keys on a Redis Cluster: one hash slot per shard, and the setting
that turns cluster mode on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from splitgo.config import ConfigError, load, refuse_unsafe
from transport.redis_keys import Keys

prefixes = st.from_regex(r"[A-Za-z0-9_.-]{1,16}", fullmatch=True)
actors = st.from_regex(r"[a-z][a-z0-9_]{0,23}", fullmatch=True)
shards = st.integers(min_value=0, max_value=4095)


@given(prefixes, actors, shards)
def test_every_key_of_a_shard_hashes_to_one_slot(prefix: str, actor: str, shard: int) -> None:
    """Stream, counter, mailbox size, lease and timers of one shard share one cluster slot."""
    keys = Keys(prefix)
    shard_keys = keys.of_shard(actor, shard)
    slots = {key_slot(key.encode()) for key in shard_keys}
    assert slots == {key_slot(f"{actor}:{shard}".encode())}
    # the counter is built from the stream's name, as the send and ack scripts get it
    assert keys.counter(keys.stream(actor, shard)) in shard_keys


@given(prefixes, actors, shards)
def test_a_stream_names_its_actor_and_shard(prefix: str, actor: str, shard: int) -> None:
    """The flush reads the actor type and shard back from a stream key."""
    keys = Keys(prefix)
    assert keys.shard_of(keys.stream(actor, shard)) == (actor, shard)


def test_the_shards_of_one_actor_spread_over_the_slots() -> None:
    """Each shard has a tag of its own, so an actor type's shards land on different nodes."""
    keys = Keys("splitgo")
    slots = {key_slot(keys.stream("splits", shard).encode()) for shard in range(16)}
    assert len(slots) == 16


@pytest.mark.parametrize("prefix", ["a:b", "a{b", "b}", "{}"])
def test_a_prefix_that_would_split_the_hash_tag_is_refused(prefix: str) -> None:
    """A prefix with ':' or a brace is refused, by the transport and by the setting."""
    with pytest.raises(ValueError, match="prefix"):
        Keys(prefix)
    with pytest.raises(ConfigError, match="SPLITGO_REDIS_PREFIX"):
        load({"SPLITGO_REDIS_PREFIX": prefix})


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("unix:///run/redis.sock", "unix socket"),
        ("redis://:hunter2@cache.example:7000/3", "database 0 only"),
    ],
)
def test_cluster_mode_refuses_a_url_a_cluster_cannot_serve(url: str, words: str) -> None:
    """SPLITGO_REDIS_CLUSTER=1 with a unix socket or a database other than 0 does not start;
    the message names both settings and never repeats the URL (it may hold a password)."""
    settings = load({"SPLITGO_REDIS_CLUSTER": "1", "SPLITGO_REDIS_URL": url})
    with pytest.raises(ConfigError, match=words) as refused:
        refuse_unsafe(settings)
    assert "SPLITGO_REDIS_CLUSTER" in str(refused.value)
    assert "SPLITGO_REDIS_URL" in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "url", ["redis://10.0.0.5:7000", "redis://10.0.0.5:7000/0", "rediss://u:p@cache:7000/"]
)
def test_cluster_mode_takes_a_node_url(url: str) -> None:
    """A redis:// or rediss:// URL of one node, database 0 or none, is accepted."""
    settings = load({"SPLITGO_REDIS_CLUSTER": "true", "SPLITGO_REDIS_URL": url})
    assert settings.redis_cluster
    refuse_unsafe(settings)


def test_cluster_mode_is_off_by_default() -> None:
    """Without the setting, the URL names one Redis (any database, or a unix socket)."""
    settings = load({"SPLITGO_REDIS_URL": "unix:///run/redis.sock"})
    assert not settings.redis_cluster
    refuse_unsafe(settings)
