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
    """A password under 10 characters is refused with a message giving the minimum and its
    length."""
    error = refusal("Xk9!qZ")
    assert "at least 10 characters" in error.message
    assert "has 6" in error.message


def test_ten_characters_is_not_enough_when_they_are_guessable() -> None:
    """A long enough but common password is refused as too easy to guess, with zxcvbn's warning and
    advice in the message."""
    error = refusal("Password123!")
    assert "too easy to guess" in error.message
    # zxcvbn's own explanation and advice come along
    assert "commonly used password" in error.message
    assert "Add another word" in error.message


def test_a_keyboard_pattern_is_refused() -> None:
    """A keyboard run such as qwertyuiop is refused as too easy to guess."""
    assert "too easy to guess" in refusal("qwertyuiop").message


def test_the_users_own_name_and_email_are_no_strength() -> None:
    """A password made of the user's own name is refused, saying so, when their name and email are
    passed as inputs."""
    check_password("alicesmith2024x!Q")  # fine for someone else? at least not refused here
    error = refusal("alicesmith2024", ALICE)
    assert "your name or email address" in error.message


def test_an_absurdly_long_password_is_refused() -> None:
    """A password over the length cap is refused, while a long one within the cap is accepted."""
    assert "at most" in refusal("correct horse battery staple " * 10).message
    check_password("correct horse battery staple " * 2)  # long but within the cap


def test_a_long_unusual_passphrase_passes() -> None:
    """Strong passphrases that do not lean on the user's name or email are accepted."""
    check_password("correct horse battery staple", ALICE)
    check_password("Tr0ub4dor&3xyz", ALICE)


def test_user_inputs_cover_the_address_its_parts_and_the_name() -> None:
    """user_inputs yields the email, its local and domain parts and the name, and nothing for a
    blank email."""
    assert {"alice.smith@example.com", "alicesmith", "alice", "smith", "example"} <= set(ALICE)
    assert user_inputs("") == []


def test_default_parameters_are_real_ones() -> None:
    """The default argon2id parameters are production-strength (t=3, m=64 MiB, p=1)."""
    expected = HashParameters(
        time_cost=3, memory_cost=65536, parallelism=1, hash_len=32, salt_len=16
    )
    assert expected == DEFAULT_PARAMETERS


async def test_hash_and_verify_round_trip() -> None:
    """A hash is argon2id with a fresh salt each time, verifies its own password, and rejects
    another password or a non-hash."""
    passwords = Passwords(TEST_PARAMETERS)
    stored = await passwords.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert await passwords.verify(stored, "correct horse battery staple")
    assert not await passwords.verify(stored, "correct horse battery stapler")
    assert not await passwords.verify("not a hash", "whatever")
    # a different salt every time
    assert stored != await passwords.hash("correct horse battery staple")


async def test_no_stored_hash_never_verifies() -> None:
    """Verifying against no stored hash fails for any password, even an empty one."""
    passwords = Passwords(TEST_PARAMETERS)
    assert not await passwords.verify(None, "")
    assert not await passwords.verify(None, "anything at all")


async def test_a_hash_with_other_parameters_needs_a_rehash() -> None:
    """A hash made with other parameters, or one that cannot be parsed, is flagged for rehashing."""
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
    """Hashing runs in a worker thread rather than on the event loop's thread."""
    passwords = Passwords(TEST_PARAMETERS)
    spy = SpyHasher(passwords._hasher)
    passwords._hasher = spy  # type: ignore[assignment]
    await passwords.hash("correct horse battery staple")
    assert spy.threads
    assert spy.threads[0] != threading.get_ident()


async def test_concurrent_hashes_are_capped() -> None:
    """No more than max_concurrent hashes run at the same time."""
    passwords = Passwords(TEST_PARAMETERS, max_concurrent=2)
    spy = SpyHasher(passwords._hasher, delay=0.02)
    passwords._hasher = spy  # type: ignore[assignment]
    await asyncio.gather(*(passwords.hash(f"password number {n}") for n in range(8)))
    assert spy.peak == 2


def test_the_cap_must_be_positive() -> None:
    """A max_concurrent of zero is refused with a ValueError."""
    with pytest.raises(ValueError, match="max_concurrent"):
        Passwords(max_concurrent=0)


def test_the_cap_on_length_is_documented() -> None:
    """The maximum password length is 256 characters."""
    assert MAX_LENGTH == 256
