"""The auth store's second factor (tables mfa_totp, mfa_recovery_codes, mfa_challenges):
TOTP secrets, recovery-code digests and the sign-in challenges; what a code is worth is
decided by `actors.auth.mfa_rules`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from actors.auth.mfa_rules import Strikes
from actors.runtime import Executor, at


@dataclass(frozen=True, slots=True)
class TotpRow:
    """A user's TOTP state: the secret once on (None: off), a pending one, the last
    accepted time step, and the wrong codes in a row. Secrets are as stored: sealed
    (actors/auth/secret_box.py), or plaintext from before sealing."""

    user_id: str
    secret: str | None
    enabled_at: float | None
    pending_secret: str | None
    pending_expires_at: float | None
    last_step: int
    strikes: Strikes


@dataclass(frozen=True, slots=True)
class ChallengeRow:
    """An unspent, unexpired sign-in challenge: whose, and how the first step signed in."""

    user_id: str
    amr: tuple[str, ...]
    ip: str | None
    user_agent: str | None


def _epoch(value: object) -> float | None:
    return value.timestamp() if value is not None else None  # type: ignore[attr-defined]


async def totp_of(db: Executor, user_id: str, *, for_update: bool = False) -> TotpRow | None:
    """The user's TOTP row (locked until the transaction ends with `for_update`)."""
    row = await db.fetchrow(
        "SELECT * FROM mfa_totp WHERE user_id = $1" + (" FOR UPDATE" if for_update else ""),
        user_id,
    )
    if row is None:
        return None
    return TotpRow(
        user_id=row["user_id"],
        secret=row["secret"],
        enabled_at=_epoch(row["enabled_at"]),
        pending_secret=row["pending_secret"],
        pending_expires_at=_epoch(row["pending_expires_at"]),
        last_step=row["last_step"],
        strikes=Strikes(
            failures=row["failures"],
            locked_until=_epoch(row["locked_until"]) or 0.0,
            lockouts=row["lockouts"],
        ),
    )


async def totp_enabled(db: Executor, user_id: str) -> bool:
    """Whether the user signs in with a TOTP code as the second step."""
    found: bool = await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = $1 AND secret IS NOT NULL)",
        user_id,
    )
    return found


async def set_pending_secret(
    db: Executor, user_id: str, secret: str, now: float, expires_at: float
) -> None:
    """Keep `secret` waiting for its first code (replacing one that waited before); a new
    secret has no codes used yet. Nothing changes while TOTP is on."""
    await db.execute(
        """
        INSERT INTO mfa_totp (user_id, pending_secret, pending_expires_at, updated_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (user_id) DO UPDATE
            SET pending_secret = EXCLUDED.pending_secret,
                pending_expires_at = EXCLUDED.pending_expires_at,
                last_step = -1,
                updated_at = EXCLUDED.updated_at
            WHERE mfa_totp.secret IS NULL
        """,
        user_id,
        secret,
        at(expires_at),
        at(now),
    )


async def enable_totp(db: Executor, user_id: str, now: float) -> None:
    """The pending secret becomes the user's (its confirming code's step is spent already)."""
    await db.execute(
        """
        UPDATE mfa_totp SET secret = pending_secret, enabled_at = $2, pending_secret = NULL,
            pending_expires_at = NULL, failures = 0, updated_at = $2
        WHERE user_id = $1
        """,
        user_id,
        at(now),
    )


async def disable_totp(db: Executor, user_id: str) -> None:
    """TOTP off: the secret, the recovery codes and open challenges go; a lockout stays."""
    await db.execute(
        "UPDATE mfa_totp SET secret = NULL, enabled_at = NULL, pending_secret = NULL,"
        " pending_expires_at = NULL WHERE user_id = $1",
        user_id,
    )
    await db.execute("DELETE FROM mfa_recovery_codes WHERE user_id = $1", user_id)
    await db.execute("DELETE FROM mfa_challenges WHERE user_id = $1", user_id)


async def reseal_secret(db: Executor, user_id: str, sealed: str) -> None:
    """The user's TOTP secret, sealed again (under the current key); no other change."""
    await db.execute(
        "UPDATE mfa_totp SET secret = $2 WHERE user_id = $1 AND secret IS NOT NULL",
        user_id,
        sealed,
    )


async def accept_step(db: Executor, user_id: str, step: int, now: float) -> bool:
    """Spend time step `step` for the user unless it (or a later one) was spent: False then."""
    status = await db.execute(
        "UPDATE mfa_totp SET last_step = $2, failures = 0, updated_at = $3"
        " WHERE user_id = $1 AND last_step < $2",
        user_id,
        step,
        at(now),
    )
    return status.endswith(" 1")


async def set_strikes(db: Executor, user_id: str, strikes: Strikes, now: float) -> None:
    await db.execute(
        "UPDATE mfa_totp SET failures = $2, locked_until = $3, lockouts = $4, updated_at = $5"
        " WHERE user_id = $1",
        user_id,
        strikes.failures,
        at(strikes.locked_until) if strikes.locked_until else None,
        strikes.lockouts,
        at(now),
    )


async def replace_recovery_codes(
    db: Executor, user_id: str, digests: Sequence[bytes], now: float
) -> None:
    """The user's recovery codes are these (the old ones, used or not, stop working)."""
    await db.execute("DELETE FROM mfa_recovery_codes WHERE user_id = $1", user_id)
    await db.execute(
        "INSERT INTO mfa_recovery_codes (user_id, hash, created_at)"
        " SELECT $1, hash, $3 FROM unnest($2::bytea[]) AS hash",
        user_id,
        list(digests),
        at(now),
    )


async def spend_recovery_code(db: Executor, user_id: str, digest: bytes, now: float) -> bool:
    """Spend one unused recovery code of the user: False when there is none such."""
    status = await db.execute(
        "UPDATE mfa_recovery_codes SET used_at = $3"
        " WHERE user_id = $1 AND hash = $2 AND used_at IS NULL",
        user_id,
        digest,
        at(now),
    )
    return status.endswith(" 1")


async def recovery_codes_left(db: Executor, user_id: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        user_id,
    )
    return count


async def add_challenge(
    db: Executor,
    *,
    token_hash: bytes,
    user_id: str,
    amr: Sequence[str],
    ip: str | None,
    user_agent: str | None,
    now: float,
    expires_at: float,
) -> None:
    await db.execute(
        """
        INSERT INTO mfa_challenges (hash, user_id, amr, ip, user_agent, created_at, expires_at)
        VALUES ($1, $2, $3::text[], $4, $5, $6, $7)
        """,
        token_hash,
        user_id,
        list(amr),
        ip,
        user_agent,
        at(now),
        at(expires_at),
    )


async def challenge_for_update(db: Executor, token_hash: bytes, now: float) -> ChallengeRow | None:
    """The live challenge of this digest, locked until the transaction ends; None when it
    is unknown, spent or expired."""
    row = await db.fetchrow(
        """
        SELECT user_id, amr, ip, user_agent FROM mfa_challenges
        WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
        FOR UPDATE
        """,
        token_hash,
        at(now),
    )
    if row is None:
        return None
    return ChallengeRow(
        user_id=row["user_id"], amr=tuple(row["amr"]), ip=row["ip"], user_agent=row["user_agent"]
    )


async def spend_challenge(db: Executor, token_hash: bytes, now: float) -> None:
    await db.execute("UPDATE mfa_challenges SET used_at = $2 WHERE hash = $1", token_hash, at(now))


async def spend_user_challenges(db: Executor, user_id: str, now: float) -> None:
    """Every open challenge of the user stops working (a lockout began)."""
    await db.execute(
        "UPDATE mfa_challenges SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
        user_id,
        at(now),
    )


async def add_session_amr(db: Executor, session_id: str, user_id: str, method: str) -> None:
    """The user's session passed one more way of signing in (RFC 8176 `amr`)."""
    await db.execute(
        "UPDATE auth_sessions SET amr = array_append(amr, $3)"
        " WHERE id = $1 AND user_id = $2 AND NOT ($3 = ANY (amr))",
        session_id,
        user_id,
        method,
    )
