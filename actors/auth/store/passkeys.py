"""The auth store's passkeys (tables passkey_users, passkeys, passkey_challenges): each
user's WebAuthn user handle, their credentials, and the single-use challenges handed out,
kept as digests and spent by one conditional UPDATE, so two shards racing for the same
challenge cannot both win."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from actors.runtime import Executor, at

ChallengePurpose = Literal["register", "sign_in"]
# what spending a challenge found: spent now, spent before, past its time, or never ours
Spent = Literal["spent", "used", "expired", "unknown"]
# spent challenges are kept this long past their expiry (a replay says so), then pruned
KEEP_SPENT_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class PasskeyRow:
    """A stored passkey: whose, its credential and public key, and what the list shows."""

    id: str
    user_id: str
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: list[str]
    name: str
    backed_up: bool
    created_at: datetime
    last_used_at: datetime | None


_COLUMNS = (
    "id, user_id, credential_id, public_key, sign_count, transports, name, backed_up,"
    " created_at, last_used_at"
)


def _passkey(row: Any) -> PasskeyRow | None:
    if row is None:
        return None
    return PasskeyRow(
        id=row["id"],
        user_id=row["user_id"],
        credential_id=bytes(row["credential_id"]),
        public_key=bytes(row["public_key"]),
        sign_count=row["sign_count"],
        transports=list(row["transports"]),
        name=row["name"],
        backed_up=row["backed_up"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )


async def user_handle(db: Executor, user_id: str, fresh: bytes, now: float) -> bytes:
    """The user's WebAuthn handle: the stored one, else `fresh`, stored now."""
    await db.execute(
        "INSERT INTO passkey_users (user_id, handle, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id) DO NOTHING",
        user_id,
        fresh,
        at(now),
    )
    handle: bytes = await db.fetchval(
        "SELECT handle FROM passkey_users WHERE user_id = $1", user_id
    )
    return bytes(handle)


async def handle_of(db: Executor, user_id: str) -> bytes | None:
    handle = await db.fetchval("SELECT handle FROM passkey_users WHERE user_id = $1", user_id)
    return None if handle is None else bytes(handle)


async def add_challenge(
    db: Executor,
    *,
    digest: bytes,
    purpose: ChallengePurpose,
    user_id: str | None,
    now: float,
    expires_at: float,
) -> None:
    """Keep a challenge handed out (its digest); long-dead ones go in passing."""
    await db.execute(
        "DELETE FROM passkey_challenges WHERE expires_at < $1", at(now - KEEP_SPENT_SECONDS)
    )
    await db.execute(
        "INSERT INTO passkey_challenges (hash, purpose, user_id, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        digest,
        purpose,
        user_id,
        at(now),
        at(expires_at),
    )


async def spend_challenge(
    db: Executor, digest: bytes, purpose: ChallengePurpose, user_id: str | None, now: float
) -> Spent:
    """Spend the challenge if it is of this purpose (and user), unused and unexpired; else
    say why not."""
    spent = await db.fetchval(
        """
        UPDATE passkey_challenges SET used_at = $4
        WHERE hash = $1 AND purpose = $2 AND user_id IS NOT DISTINCT FROM $3
          AND used_at IS NULL AND expires_at > $4
        RETURNING true
        """,
        digest,
        purpose,
        user_id,
        at(now),
    )
    if spent:
        return "spent"
    row = await db.fetchrow(
        "SELECT used_at IS NOT NULL AS used FROM passkey_challenges"
        " WHERE hash = $1 AND purpose = $2 AND user_id IS NOT DISTINCT FROM $3",
        digest,
        purpose,
        user_id,
    )
    if row is None:
        return "unknown"
    return "used" if row["used"] else "expired"


async def passkeys_of(db: Executor, user_id: str) -> list[PasskeyRow]:
    """The user's passkeys, oldest first."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id",
        user_id,
    )
    return [row for row in map(_passkey, rows) if row is not None]


async def passkey_by_credential(
    db: Executor, credential_id: bytes, *, lock: bool = False
) -> PasskeyRow | None:
    """The passkey of this credential id; with `lock`, locked until the transaction ends
    (one sign-in at a time moves its counter)."""
    suffix = " FOR UPDATE" if lock else ""
    return _passkey(
        await db.fetchrow(
            f"SELECT {_COLUMNS} FROM passkeys WHERE credential_id = $1{suffix}", credential_id
        )
    )


async def add_passkey(
    db: Executor,
    *,
    passkey_id: str,
    user_id: str,
    credential_id: bytes,
    public_key: bytes,
    sign_count: int,
    transports: list[str],
    name: str,
    backed_up: bool,
    now: float,
) -> PasskeyRow | None:
    """Store a new passkey; None when its credential id is already registered (a user
    that is gone meanwhile is asyncpg's ForeignKeyViolationError)."""
    row = await db.fetchrow(
        f"""
        INSERT INTO passkeys (id, user_id, credential_id, public_key, sign_count,
                              transports, name, backed_up, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (credential_id) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        passkey_id,
        user_id,
        credential_id,
        public_key,
        sign_count,
        transports,
        name,
        backed_up,
        at(now),
    )
    return _passkey(row)


async def record_use(
    db: Executor, passkey_id: str, sign_count: int, backed_up: bool, now: float
) -> None:
    """A sign-in with the passkey: its new counter, backup state and when."""
    await db.execute(
        "UPDATE passkeys SET sign_count = $2, backed_up = $3, last_used_at = $4 WHERE id = $1",
        passkey_id,
        sign_count,
        backed_up,
        at(now),
    )


async def rename_passkey(
    db: Executor, user_id: str, passkey_id: str, name: str
) -> PasskeyRow | None:
    """The renamed passkey; None unless the user has one of this id."""
    return _passkey(
        await db.fetchrow(
            f"UPDATE passkeys SET name = $3 WHERE id = $2 AND user_id = $1 RETURNING {_COLUMNS}",
            user_id,
            passkey_id,
            name,
        )
    )


async def delete_passkey(db: Executor, user_id: str, passkey_id: str) -> bool:
    """Whether the user had a passkey of this id (it is gone now)."""
    deleted = await db.fetchval(
        "DELETE FROM passkeys WHERE id = $2 AND user_id = $1 RETURNING true",
        user_id,
        passkey_id,
    )
    return bool(deleted)
