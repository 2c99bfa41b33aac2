"""The auth store's login failures and lockouts (tables login_failures, lockouts); when
they lock a key out is decided by `actors.auth.limits`."""

from __future__ import annotations

from collections.abc import Sequence

from actors.auth.limits import Lockout
from actors.runtime import Executor, at


async def lockouts(db: Executor, keys: Sequence[str]) -> dict[str, Lockout]:
    rows = await db.fetch(
        "SELECT key, until, count FROM lockouts WHERE key = ANY($1::text[])", list(keys)
    )
    return {row["key"]: Lockout(until=row["until"].timestamp(), count=row["count"]) for row in rows}


async def record_failure(db: Executor, email: str, ip: str | None, now: float) -> None:
    await db.execute(
        "INSERT INTO login_failures (email, ip, at) VALUES ($1, $2, $3)", email, ip, at(now)
    )


async def failures_for_email(db: Executor, email: str, since: float) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM login_failures WHERE email = $1 AND at > $2", email, at(since)
    )
    return count


async def failures_for_ip(db: Executor, ip: str, since: float) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM login_failures WHERE ip = $1 AND at > $2", ip, at(since)
    )
    return count


async def set_lockout(db: Executor, key: str, lockout: Lockout, now: float) -> None:
    await db.execute(
        """
        INSERT INTO lockouts (key, until, count, updated_at) VALUES ($1, $2, $3, $4)
        ON CONFLICT (key) DO UPDATE
            SET until = EXCLUDED.until, count = EXCLUDED.count, updated_at = EXCLUDED.updated_at
        """,
        key,
        at(lockout.until),
        lockout.count,
        at(now),
    )


async def forget_email_failures(db: Executor, email: str, lockout_key: str) -> None:
    """The owner signed in (or reset the password): their failures and lockouts are history."""
    await db.execute("DELETE FROM login_failures WHERE email = $1", email)
    await db.execute("DELETE FROM lockouts WHERE key = $1", lockout_key)
