"""The password policy (length, zxcvbn, telling why) and argon2id hashing off the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from actors.auth.messages import WeakPassword
from actors.auth.passwords import (
    DEFAULT_PARAMETERS,
    MAX_LENGTH,
    TEST_PARAMETERS,
    HashParameters,
    Passwords,
    check_password,
    user_inputs,
)

ALICE = user_inputs("alice.smith@example.com", "Alice Smith")


def refusal(password: str, inputs: list[str] | None = None) -> WeakPassword:
    with pytest.raises(WeakPassword) as caught:
        check_password(password, inputs or [])
    error = caught.value
    assert error.code == "weak_password"
    assert error.category == "invalid"
    assert error.details == {"field": "$.password"}
    return error


def test_a_short_password_is_refused_and_the_message_says_how_long() -> None:
    error = refusal("Xk9!qZ")
    assert "at least 10 characters" in error.message
    assert "has 6" in error.message


def test_ten_characters_is_not_enough_when_they_are_guessable() -> None:
    error = refusal("Password123!")
    assert "too easy to guess" in error.message
    # zxcvbn's own explanation and advice come along
    assert "commonly used password" in error.message
    assert "Add another word" in error.message


def test_a_keyboard_pattern_is_refused() -> None:
    assert "too easy to guess" in refusal("qwertyuiop").message


def test_the_users_own_name_and_email_are_no_strength() -> None:
    check_password("alicesmith2024x!Q")  # fine for someone else? at least not refused here
    error = refusal("alicesmith2024", ALICE)
    assert "your name or email address" in error.message


def test_an_absurdly_long_password_is_refused() -> None:
    assert "at most" in refusal("correct horse battery staple " * 10).message
    check_password("correct horse battery staple " * 2)  # long but within the cap


def test_a_long_unusual_passphrase_passes() -> None:
    check_password("correct horse battery staple", ALICE)
    check_password("Tr0ub4dor&3xyz", ALICE)


def test_user_inputs_cover_the_address_its_parts_and_the_name() -> None:
    assert {"alice.smith@example.com", "alicesmith", "alice", "smith", "example"} <= set(ALICE)
    assert user_inputs("") == []


def test_default_parameters_are_real_ones() -> None:
    expected = HashParameters(
        time_cost=3, memory_cost=65536, parallelism=1, hash_len=32, salt_len=16
    )
    assert expected == DEFAULT_PARAMETERS


async def test_hash_and_verify_round_trip() -> None:
    passwords = Passwords(TEST_PARAMETERS)
    stored = await passwords.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert await passwords.verify(stored, "correct horse battery staple")
    assert not await passwords.verify(stored, "correct horse battery stapler")
    assert not await passwords.verify("not a hash", "whatever")
    # a different salt every time
    assert stored != await passwords.hash("correct horse battery staple")


async def test_no_stored_hash_never_verifies() -> None:
    passwords = Passwords(TEST_PARAMETERS)
    assert not await passwords.verify(None, "")
    assert not await passwords.verify(None, "anything at all")


async def test_a_hash_with_other_parameters_needs_a_rehash() -> None:
    old = await Passwords(TEST_PARAMETERS).hash("correct horse battery staple")
    stronger = Passwords(HashParameters(time_cost=2, memory_cost=16, parallelism=1))
    assert stronger.needs_rehash(old)
    assert not Passwords(TEST_PARAMETERS).needs_rehash(old)
    assert stronger.needs_rehash("garbage")


class SpyHasher:
    """Wraps the real hasher: notes the thread of each hash, and how many run at once."""

    def __init__(self, real: PasswordHasher, delay: float = 0.0) -> None:
        self.real = real
        self.delay = delay
        self.threads: list[int] = []
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self.lock:
            self.threads.append(threading.get_ident())
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if self.delay:
                threading.Event().wait(self.delay)
            return self.real.hash(password)
        finally:
            with self.lock:
                self.running -= 1


async def test_hashing_runs_off_the_event_loop() -> None:
    passwords = Passwords(TEST_PARAMETERS)
    spy = SpyHasher(passwords._hasher)
    passwords._hasher = spy  # type: ignore[assignment]
    await passwords.hash("correct horse battery staple")
    assert spy.threads
    assert spy.threads[0] != threading.get_ident()


async def test_concurrent_hashes_are_capped() -> None:
    passwords = Passwords(TEST_PARAMETERS, max_concurrent=2)
    spy = SpyHasher(passwords._hasher, delay=0.02)
    passwords._hasher = spy  # type: ignore[assignment]
    await asyncio.gather(*(passwords.hash(f"password number {n}") for n in range(8)))
    assert spy.peak == 2


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        Passwords(max_concurrent=0)


def test_the_cap_on_length_is_documented() -> None:
    assert MAX_LENGTH == 256
