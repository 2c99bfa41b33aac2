"""Passwords: argon2id hashing off the event loop, and the policy a new password must meet.

Hashing parameters
------------------
The defaults are argon2id with time_cost=3, memory_cost=64 MiB, parallelism=1, a 16-byte
salt and a 32-byte tag. That is RFC 9106's second recommended option (t=3, m=64 MiB) with
one lane instead of four: a lane is one thread, and an actor node hashes many passwords at
once rather than one with every core. On a current x86 core it costs about 150 ms and 64 MiB
per hash, well above OWASP's floor (m=19 MiB, t=2, p=1). Every stored hash carries its own
parameters, so raising them later upgrades old hashes on the next login (`needs_rehash`).

Hashing is CPU- and memory-bound, so it runs in a worker thread (`asyncio.to_thread`): the
event loop keeps serving other messages meanwhile. A semaphore caps how many hashes run at
once, so a burst of logins cannot claim `threads x 64 MiB` of memory.

The policy
----------
At least 10 characters (at most 256, so nobody can make us hash a megabyte), and a zxcvbn
score of 3 or more ("safely unguessable: moderate protection from offline attacks"), with
the user's email and name as inputs zxcvbn must not accept as strength. A refusal says why,
using zxcvbn's own warning and suggestions.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from actors.auth.messages import WeakPassword

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_SCORE = 3
# zxcvbn refuses longer input (and its matching grows costly); the rest only adds strength
_ZXCVBN_MAX = 72
PASSWORD_FIELD = "$.password"


@dataclass(frozen=True, slots=True)
class HashParameters:
    """argon2id cost parameters (memory in KiB)."""

    time_cost: int = 3
    memory_cost: int = 64 * 1024
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16


# What production uses: see the module docstring for the reasoning.
DEFAULT_PARAMETERS = HashParameters()
# Tests only: argon2's minimum cost, so a test suite hashes in microseconds.
TEST_PARAMETERS = HashParameters(time_cost=1, memory_cost=8, parallelism=1)


class Passwords:
    """Hashes and verifies passwords with argon2id, in worker threads.

    One instance can serve every shard of the auth actor (and should: its semaphore then
    caps concurrent hashes for the whole node).
    """

    def __init__(
        self, parameters: HashParameters = DEFAULT_PARAMETERS, *, max_concurrent: int = 4
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.parameters = parameters
        self._hasher = PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost,
            parallelism=parameters.parallelism,
            hash_len=parameters.hash_len,
            salt_len=parameters.salt_len,
            type=Type.ID,
        )
        self._max_concurrent = max_concurrent
        self._slots: asyncio.Semaphore | None = None
        # A hash of a random secret, verified against when there is no real hash (unknown
        # email, social-only account) so that such a login takes as long as a wrong password.
        self._dummy: str | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        # made lazily: it belongs to the loop that first uses it
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_concurrent)
        return self._slots

    async def hash(self, password: str) -> str:
        """The argon2id hash (PHC string, with salt and parameters) of `password`."""
        async with self._semaphore():
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when `password` matches `stored`; a missing hash takes as long and is False."""
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(32))
            await self._verify(self._dummy, password)
            return False
        return await self._verify(stored, password)

    async def _verify(self, stored: str, password: str) -> bool:
        async with self._semaphore():
            return await asyncio.to_thread(self._check, stored, password)

    def _check(self, stored: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` was made with other parameters than ours (upgrade it)."""
        try:
            return bool(self._hasher.check_needs_rehash(stored))
        except (InvalidHashError, ValueError):
            return True


def user_inputs(email: str, name: str | None = None) -> list[str]:
    """What zxcvbn must not count as strength: the address, its parts, the name's words."""
    found: list[str] = []
    email = email.strip().lower()
    if email:
        local, _, domain = email.partition("@")
        parts = re.split(r"[._+\-]", local)
        found += [email, local, "".join(parts), *parts, *domain.split(".")[:1]]
    if name:
        words = name.lower().split()
        found += [" ".join(words), "".join(words), *words]
    return [word for word in dict.fromkeys(found) if word]


def check_password(password: str, inputs: Iterable[str] = ()) -> None:
    """Raise WeakPassword (naming `$.password`, saying why) unless the policy is met.

    CPU-bound for up to ~20 ms (zxcvbn): call it through `asyncio.to_thread`.
    """
    if len(password) < MIN_LENGTH:
        raise _weak(f"Use at least {MIN_LENGTH} characters (this one has {len(password)}).")
    if len(password) > MAX_LENGTH:
        raise _weak(f"Use at most {MAX_LENGTH} characters.")
    result = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=list(inputs))
    score = int(result["score"])
    if score >= MIN_SCORE:
        return
    feedback = result.get("feedback") or {}
    warning = str(feedback.get("warning") or "").strip()
    suggestions = [str(s).strip() for s in feedback.get("suggestions") or () if str(s).strip()]
    personal = any(
        match.get("dictionary_name") == "user_inputs" for match in result.get("sequence") or ()
    )
    if personal:
        reason = "It contains your name or email address."
    else:
        reason = warning or "It would be easy to guess."
    advice = " ".join(suggestions) or "Add more words or characters that are hard to guess."
    raise _weak(f"This password is too easy to guess. {_sentence(reason)} {advice}")


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _weak(message: str) -> WeakPassword:
    return WeakPassword(message, details={"field": PASSWORD_FIELD})
