"""The auth store's users and their social identities (tables users, oauth_identities)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.runtime import Executor, at


@dataclass(frozen=True, slots=True)
class UserRow:
    """A user as stored."""

    id: str
    email: str
    name: str
    password_hash: str | None
    email_verified: bool
    phone: str | None
    phone_verified: bool
    roles: tuple[str, ...]
    telegram_chat_id: int | None
    created_at: datetime
    deleted_at: datetime | None = None  # the account was deleted (issue 19): anonymised


_USER = (
    "id, email, name, password_hash, email_verified, phone, phone_verified, roles,"
    " telegram_chat_id, created_at, deleted_at"
)


def _user(row: Any) -> UserRow | None:
    if row is None:
        return None
    return UserRow(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        password_hash=row["password_hash"],
        email_verified=row["email_verified"],
        phone=row["phone"],
        phone_verified=row["phone_verified"],
        roles=tuple(row["roles"]),
        telegram_chat_id=row["telegram_chat_id"],
        created_at=row["created_at"],
        deleted_at=row["deleted_at"],
    )


async def user_by_id(db: Executor, user_id: str, *, lock: bool = False) -> UserRow | None:
    lock_clause = " FOR UPDATE" if lock else ""
    return _user(
        await db.fetchrow(f"SELECT {_USER} FROM users WHERE id = $1{lock_clause}", user_id)
    )


async def names(db: Executor, user_ids: list[str]) -> list[tuple[str, str]]:
    """(id, name) of the users (and the placeholders, people with no account kept by
    splits) among `user_ids` that exist."""
    rows = await db.fetch(
        "SELECT id, name FROM users WHERE id = ANY($1::text[])"
        " UNION ALL SELECT id, name FROM auth_placeholders WHERE id = ANY($1::text[])",
        user_ids,
    )
    return [(row["id"], row["name"]) for row in rows]


async def add_placeholder(db: Executor, placeholder_id: str, name: str, now: datetime) -> None:
    """Name a person with no account (splits' placeholder member)."""
    await db.execute(
        "INSERT INTO auth_placeholders (id, name, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (id) DO NOTHING",
        placeholder_id,
        name,
        now,
    )


async def user_by_email(db: Executor, email: str) -> UserRow | None:
    return _user(await db.fetchrow(f"SELECT {_USER} FROM users WHERE email = $1", email))


async def user_by_chat(db: Executor, chat_id: int) -> UserRow | None:
    return _user(
        await db.fetchrow(f"SELECT {_USER} FROM users WHERE telegram_chat_id = $1", chat_id)
    )


async def insert_user(
    db: Executor,
    *,
    user_id: str,
    email: str,
    name: str,
    password_hash: str | None,
    email_verified: bool,
    roles: Sequence[str],
    now: float,
) -> UserRow | None:
    """The new user, or None when the email is taken."""
    return _user(
        await db.fetchrow(
            f"""
            INSERT INTO users (id, email, name, password_hash, email_verified, roles,
                               created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
            ON CONFLICT (email) DO NOTHING
            RETURNING {_USER}
            """,
            user_id,
            email,
            name,
            password_hash,
            email_verified,
            list(roles),
            at(now),
        )
    )


async def set_password(
    db: Executor, user_id: str, password_hash: str | None, now: float, *, replacing: str | None
) -> bool:
    """Store a new hash; with `replacing`, only if the stored one is still that (a rehash
    must not undo a reset that happened meanwhile)."""
    status = await db.execute(
        "UPDATE users SET password_hash = $2, updated_at = $3"
        " WHERE id = $1 AND ($4::text IS NULL OR password_hash = $4)",
        user_id,
        password_hash,
        at(now),
        replacing,
    )
    return status.endswith(" 1")


async def update_profile(
    db: Executor,
    user_id: str,
    now: float,
    *,
    name: str | None,
    phone: str | None,
    set_phone: bool,
) -> UserRow | None:
    """Change the name (when given) and the phone (when `set_phone`; None clears it). A new
    phone number is unverified."""
    return _user(
        await db.fetchrow(
            f"""
            UPDATE users SET
                name = coalesce($2, name),
                phone_verified = CASE WHEN $4 AND phone IS DISTINCT FROM $3 THEN false
                                      ELSE phone_verified END,
                phone = CASE WHEN $4 THEN $3 ELSE phone END,
                updated_at = $5
            WHERE id = $1
            RETURNING {_USER}
            """,
            user_id,
            name,
            phone,
            set_phone,
            at(now),
        )
    )


async def add_role(db: Executor, user_id: str, role: str, now: float) -> UserRow | None:
    return _user(
        await db.fetchrow(
            f"""
            UPDATE users SET
                roles = CASE WHEN $2 = ANY(roles) THEN roles ELSE array_append(roles, $2) END,
                updated_at = $3
            WHERE id = $1
            RETURNING {_USER}
            """,
            user_id,
            role,
            at(now),
        )
    )


async def mark_email_verified(db: Executor, user_id: str, email: str, now: float) -> bool:
    """True when this changed the user (verified now, not before)."""
    status = await db.execute(
        "UPDATE users SET email_verified = true, updated_at = $3"
        " WHERE id = $1 AND email = $2 AND NOT email_verified",
        user_id,
        email,
        at(now),
    )
    return status.endswith(" 1")


async def confirm_phone(db: Executor, user_id: str, phone: str, now: float) -> None:
    """Set the phone number as verified (its owner proved it, e.g. Telegram's own contact)."""
    await db.execute(
        "UPDATE users SET phone = $2, phone_verified = true, updated_at = $3 WHERE id = $1",
        user_id,
        phone,
        at(now),
    )


async def bind_telegram(
    db: Executor, user_id: str, chat_id: int, now: float
) -> tuple[UserRow | None, list[str]]:
    """Link the chat to this user, taking it from any other account it was linked to: the
    user now linked (None: no such user), and the ids of the accounts it was taken from."""
    taken = await db.fetch(
        "UPDATE users SET telegram_chat_id = NULL, updated_at = $3"
        " WHERE telegram_chat_id = $2 AND id <> $1 RETURNING id",
        user_id,
        chat_id,
        at(now),
    )
    linked = _user(
        await db.fetchrow(
            f"UPDATE users SET telegram_chat_id = $2, updated_at = $3 WHERE id = $1"
            f" RETURNING {_USER}",
            user_id,
            chat_id,
            at(now),
        )
    )
    return linked, [row["id"] for row in taken]


async def secure_takeover(db: Executor, user_id: str, now: float) -> None:
    """The email's owner proved it through a provider on an account whose email was never
    verified: whoever registered it may not be them, so their password stops working."""
    await db.execute(
        "UPDATE users SET password_hash = NULL, email_verified = true, updated_at = $2"
        " WHERE id = $1",
        user_id,
        at(now),
    )


# ── social identities ──────────────────────────────────────────────────────────────────


async def identity_user(db: Executor, provider: str, subject: str) -> str | None:
    user_id: str | None = await db.fetchval(
        "SELECT user_id FROM oauth_identities WHERE provider = $1 AND subject = $2",
        provider,
        subject,
    )
    return user_id


async def link_identity(
    db: Executor, *, provider: str, subject: str, user_id: str, email: str | None, now: float
) -> None:
    await db.execute(
        """
        INSERT INTO oauth_identities (provider, subject, user_id, email, created_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (provider, subject) DO UPDATE SET email = EXCLUDED.email
        """,
        provider,
        subject,
        user_id,
        email,
        at(now),
    )
