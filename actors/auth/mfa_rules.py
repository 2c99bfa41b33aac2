"""Multi-factor rules, with no IO: TOTP codes, their reuse, recovery codes, lockouts.

TOTP (RFC 6238) as every authenticator app speaks it: SHA-1, six digits, 30-second time
steps. A code is accepted for the step it was made in or one step either side (phone clocks
drift, people type slowly), and only for a step later than the last one accepted for the
user: the same code, or any older one, is refused as reused, so a code seen over a shoulder
is worth nothing once it was used.

Recovery codes are 12 letters and digits (60 random bits), shown as three groups of four
(`k7mq-2xcf-9tdh`); typed in any case, with or without the dashes or spaces. Only a
SHA-256 over the user's id and the normalised code is stored: the id salts it, so one
table of digests serves no other account, and 60 bits leave nothing to brute-force.

Wrong codes in a row lock the user's second factor: MFA_THRESHOLD of them, then a lockout of
five minutes that doubles with each further lockout in a row (up to a day), as the login
limits do (`limits.py`). Times are epoch seconds, passed in (`now`), so each rule is tested
without waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from typing import Literal

import pyotp

from actors.auth.messages import TOTP_DIGITS, TOTP_PERIOD

TOTP_WINDOW = 1  # steps either side of now a code is still accepted for
RECOVERY_CODES = 10
RECOVERY_LENGTH = 12
RECOVERY_GROUP = 4
# lower-case letters and digits without the look-alikes 0/o, 1/l/i
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
MFA_THRESHOLD = 5  # wrong codes in a row before a lockout
MFA_LOCKOUT = 5 * 60.0  # the first lockout
MFA_LOCKOUT_MAX = 24 * 3600.0
MFA_FORGET_AFTER = 24 * 3600.0  # a lockout this long ago no longer lengthens the next one

CodeKind = Literal["totp", "recovery"]

_SEPARATORS = re.compile(r"[\s\-]")
_TOTP = re.compile(rf"^[0-9]{{{TOTP_DIGITS}}}$")
_RECOVERY = re.compile(rf"^[{RECOVERY_ALPHABET}]{{{RECOVERY_LENGTH}}}$")


def new_secret() -> str:
    """A fresh TOTP secret: 160 random bits in base32 (32 characters), as RFC 4226 advises."""
    return pyotp.random_base32(32)


def time_step(now: float) -> int:
    """The 30-second time step `now` falls in."""
    return int(now // TOTP_PERIOD)


def code_at(secret: str, step: int) -> str:
    """The code the app shows during time step `step`."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).at(step * TOTP_PERIOD)


def matching_step(secret: str, code: str, now: float, window: int = TOTP_WINDOW) -> int | None:
    """The time step within `window` steps of now that `code` was made for, or None.

    The newest matching step wins, and each comparison is constant-time."""
    current = time_step(now)
    found: int | None = None
    for step in range(current - window, current + window + 1):
        if step >= 0 and hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


def is_reuse(step: int, last_step: int) -> bool:
    """Whether a code of `step` comes too late: that step, or a later one, was accepted."""
    return step <= last_step


def code_kind(raw: str) -> tuple[CodeKind, str] | None:
    """What a typed code is (a TOTP code or a recovery code) and its normalised form;
    None when it is neither."""
    code = _SEPARATORS.sub("", raw).lower()
    if _TOTP.match(code):
        return "totp", code
    if _RECOVERY.match(code):
        return "recovery", code
    return None


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Fresh recovery codes, normalised (no dashes), all different."""
    codes: set[str] = set()
    while len(codes) < count:
        codes.add("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH)))
    return sorted(codes)


def shown_recovery_code(code: str) -> str:
    """A normalised recovery code as people read it: groups of four joined by dashes."""
    return "-".join(code[i : i + RECOVERY_GROUP] for i in range(0, len(code), RECOVERY_GROUP))


def recovery_digest(user_id: str, code: str) -> bytes:
    """What is stored of a normalised recovery code: SHA-256 over the user id and the code."""
    return hashlib.sha256(f"{user_id}\x00{code}".encode()).digest()


@dataclass(frozen=True, slots=True)
class Strikes:
    """A user's wrong codes in a row, and the lockout they led to (until 0: none)."""

    failures: int = 0
    locked_until: float = 0.0
    lockouts: int = 0

    def retry_after(self, now: float) -> int | None:
        """Whole seconds until the lockout is over; None when none holds."""
        left = self.locked_until - now
        return math.ceil(left) if left > 0 else None

    def failed(self, now: float) -> Strikes:
        """One more wrong code: the MFA_THRESHOLD-th in a row starts a lockout (longer
        when the previous one was recent), and counting starts again."""
        failures = self.failures + 1
        if failures < MFA_THRESHOLD:
            return Strikes(failures, self.locked_until, self.lockouts)
        recent = self.lockouts > 0 and now - self.locked_until < MFA_FORGET_AFTER
        lockouts = self.lockouts + 1 if recent else 1
        return Strikes(0, now + lockout_seconds(lockouts), lockouts)

    def succeeded(self) -> Strikes:
        """A right code: the count of wrong ones starts again (past lockouts still count)."""
        return Strikes(0, self.locked_until, self.lockouts)


def lockout_seconds(count: int) -> float:
    """How long the `count`-th lockout in a row lasts (count >= 1): 5 min, 10, 20, ... a day."""
    steps = max(count, 1) - 1
    if steps > 20:  # 5 min * 2**9 is already past a day; no float overflow either way
        return MFA_LOCKOUT_MAX
    return float(min(MFA_LOCKOUT * 2**steps, MFA_LOCKOUT_MAX))
