"""The auth store's side of deleting an account: the user row anonymised in place (ledger
lines, expenses and messages elsewhere keep pointing to its id), and every row that could
sign it in or reach it removed (social identities, single-use tokens, and the other
features' factors and grants: TOTP, recovery codes, passkeys, OpenID Connect consents)."""

from __future__ import annotations

from typing import Any

from actors.auth.messages import DELETED_NAME
from actors.runtime import Executor, at

# The tables of the account's sign-in factors and links, in an order their foreign keys
# allow; one a node's schema does not have yet is skipped (to_regclass).
_PERSONAL_TABLES = (
    "oauth_identities",
    "one_time_tokens",
    "oidc_codes",
    "oidc_grants",
    "oidc_consents",
    "mfa_challenges",
    "mfa_recovery_codes",
    "mfa_totp",
    "passkey_challenges",
    "passkeys",
    "passkey_users",
)


def anonymous_email(user_id: str) -> str:
    """The address a deleted account is left with: unique, undeliverable (RFC 2606's
    `.invalid`), and never one a person can register."""
    return f"deleted-{user_id}@deleted.invalid"


async def anonymise_user(db: Executor, user_id: str, now: float) -> bool:
    """Strip the account of what names or reaches its owner and of its password; False
    when there is no such account or it was deleted before."""
    return (
        await db.fetchval(
            """
            UPDATE users SET
                email = $3, name = $4, password_hash = NULL, email_verified = false,
                phone = NULL, phone_verified = false, roles = ARRAY['user']::text[],
                telegram_chat_id = NULL, deleted_at = $2, updated_at = $2
            WHERE id = $1 AND deleted_at IS NULL
            RETURNING true
            """,
            user_id,
            at(now),
            anonymous_email(user_id),
            DELETED_NAME,
        )
        is not None
    )


async def forget_factors(db: Executor, user_id: str) -> dict[str, int]:
    """Remove the account's rows from every table of `_PERSONAL_TABLES` this database has;
    how many went, by table."""
    present: list[Any] = await db.fetch(
        "SELECT name FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n)"
        " WHERE to_regclass(name) IS NOT NULL ORDER BY n",
        list(_PERSONAL_TABLES),
    )
    removed: dict[str, int] = {}
    for row in present:
        table = row["name"]  # one of _PERSONAL_TABLES: never text from outside
        status = await db.execute(f"DELETE FROM {table} WHERE user_id = $1", user_id)
        removed[table] = int(status.rsplit(" ", 1)[-1])
    return removed


async def linked_providers(db: Executor, user_id: str) -> list[Any]:
    """(provider, email, created_at) of the social logins linked to the account."""
    return await db.fetch(
        "SELECT provider, email, created_at FROM oauth_identities WHERE user_id = $1"
        " ORDER BY created_at, provider",
        user_id,
    )


async def session_factors(db: Executor, user_id: str, session_id: str) -> tuple[str, ...]:
    """How the user's live session `session_id` signed in (its amr); () if none is live."""
    amr = await db.fetchval(
        "SELECT amr FROM auth_sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        session_id,
        user_id,
    )
    return tuple(amr or ())


async def session_started(db: Executor, user_id: str, session_id: str) -> float | None:
    """When the user's live session `session_id` was signed in (epoch seconds), or None."""
    started = await db.fetchval(
        "SELECT created_at FROM auth_sessions"
        " WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        session_id,
        user_id,
    )
    return None if started is None else float(started.timestamp())
