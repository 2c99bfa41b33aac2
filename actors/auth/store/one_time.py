"""The auth store's single-use tokens (table one_time_tokens): email verification,
password reset, Telegram link and OAuth state, stored as digests and spent by one
conditional UPDATE, so two shards racing for the same token cannot both win."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from actors.runtime import Executor, at

Purpose = Literal["verify_email", "reset_password", "telegram_link", "oauth_state"]


@dataclass(frozen=True, slots=True)
class OneTimeRow:
    """A single-use token that was spent or peeked at: whose it is and what it carries."""

    user_id: str | None
    data: dict[str, Any]
    expires_at: float


_json_encode = msgspec.json.Encoder().encode


async def add_one_time_token(
    db: Executor,
    *,
    token_hash: bytes,
    purpose: Purpose,
    user_id: str | None,
    data: dict[str, Any] | None = None,
    now: float,
    expires_at: float,
) -> None:
    await db.execute(
        """
        INSERT INTO one_time_tokens (hash, purpose, user_id, data, created_at, expires_at)
        VALUES ($1, $2, $3, $4::jsonb, $5, $6)
        """,
        token_hash,
        purpose,
        user_id,
        _json_encode(data or {}).decode(),
        at(now),
        at(expires_at),
    )


def _one_time(row: Any) -> OneTimeRow | None:
    if row is None:
        return None
    data = msgspec.json.decode(row["data"]) if isinstance(row["data"], str) else row["data"]
    return OneTimeRow(
        user_id=row["user_id"], data=dict(data), expires_at=row["expires_at"].timestamp()
    )


async def consume_one_time_token(
    db: Executor, token_hash: bytes, purpose: Purpose, now: float
) -> OneTimeRow | None:
    """Spend the token if it is of this purpose, unused and unexpired; None otherwise."""
    return _one_time(
        await db.fetchrow(
            """
            UPDATE one_time_tokens SET used_at = $3
            WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
            RETURNING user_id, data, expires_at
            """,
            token_hash,
            purpose,
            at(now),
        )
    )


async def peek_one_time_token(
    db: Executor, token_hash: bytes, purpose: Purpose, now: float
) -> OneTimeRow | None:
    """The token if it would be accepted now, without spending it."""
    return _one_time(
        await db.fetchrow(
            """
            SELECT user_id, data, expires_at FROM one_time_tokens
            WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
            """,
            token_hash,
            purpose,
            at(now),
        )
    )


async def tokens_issued_since(db: Executor, user_id: str, purpose: Purpose, since: float) -> int:
    """How many tokens of this purpose the user was sent since then (used or not)."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM one_time_tokens"
        " WHERE user_id = $1 AND purpose = $2 AND created_at > $3",
        user_id,
        purpose,
        at(since),
    )
    return count


async def spend_user_tokens(db: Executor, user_id: str, purpose: Purpose, now: float) -> None:
    """Spend every outstanding token of this purpose for the user (one reset ends all)."""
    await db.execute(
        "UPDATE one_time_tokens SET used_at = $3"
        " WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        user_id,
        purpose,
        at(now),
    )
