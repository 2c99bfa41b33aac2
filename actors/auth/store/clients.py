"""The auth store's OpenID Connect clients and what people consented to (tables
oidc_clients, oidc_consents)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.runtime import Executor, at


@dataclass(frozen=True, slots=True)
class ClientRow:
    """A registered app; `secret_hash` None: a public client."""

    id: str
    name: str
    secret_hash: bytes | None
    redirect_uris: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentRow:
    """An app a user allowed, with the scopes and since when."""

    client_id: str
    name: str
    scopes: list[str]
    created_at: datetime


_COLUMNS = "id, name, secret_hash, redirect_uris, created_at"
_CLIENT = f"SELECT {_COLUMNS} FROM oidc_clients"


def _client(row: Any) -> ClientRow:
    secret = row["secret_hash"]
    return ClientRow(
        id=row["id"],
        name=row["name"],
        secret_hash=bytes(secret) if secret is not None else None,
        redirect_uris=list(row["redirect_uris"]),
        created_at=row["created_at"],
    )


async def add_client(
    db: Executor,
    *,
    client_id: str,
    name: str,
    secret_hash: bytes | None,
    redirect_uris: Sequence[str],
    created_by: str,
    now: float,
) -> ClientRow:
    row = await db.fetchrow(
        f"""
        INSERT INTO oidc_clients (id, name, secret_hash, redirect_uris, created_by, created_at)
        VALUES ($1, $2, $3, $4, (SELECT id FROM users WHERE id = $5), $6)
        RETURNING {_COLUMNS}
        """,
        client_id,
        name,
        secret_hash,
        list(redirect_uris),
        created_by,
        at(now),
    )
    return _client(row)


async def client_by_id(db: Executor, client_id: str) -> ClientRow | None:
    row = await db.fetchrow(f"{_CLIENT} WHERE id = $1", client_id)
    return None if row is None else _client(row)


async def clients(db: Executor, limit: int = 500) -> list[ClientRow]:
    """Every registered app, newest first."""
    rows = await db.fetch(f"{_CLIENT} ORDER BY created_at DESC, id LIMIT $1", limit)
    return [_client(row) for row in rows]


async def delete_client(db: Executor, client_id: str) -> bool:
    """True when it was there (its consents, codes, grants and tokens cascade)."""
    status = await db.execute("DELETE FROM oidc_clients WHERE id = $1", client_id)
    return status.endswith(" 1")


async def consented_scopes(db: Executor, user_id: str, client_id: str) -> list[str]:
    """What this user allowed this app (empty: nothing yet)."""
    scopes = await db.fetchval(
        "SELECT scopes FROM oidc_consents WHERE user_id = $1 AND client_id = $2",
        user_id,
        client_id,
    )
    return list(scopes or [])


async def remember_consent(
    db: Executor, user_id: str, client_id: str, scopes: Sequence[str], now: float
) -> None:
    """Add these scopes to what the user allowed the app (first consent: a new row)."""
    await db.execute(
        """
        INSERT INTO oidc_consents (user_id, client_id, scopes, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $4)
        ON CONFLICT (user_id, client_id) DO UPDATE SET
            scopes = ARRAY(SELECT DISTINCT unnest(oidc_consents.scopes || excluded.scopes)),
            updated_at = excluded.updated_at
        """,
        user_id,
        client_id,
        list(scopes),
        at(now),
    )


async def consents(db: Executor, user_id: str) -> list[ConsentRow]:
    """The apps the user allowed, most recently allowed first."""
    rows = await db.fetch(
        """
        SELECT c.client_id, k.name, c.scopes, c.created_at
        FROM oidc_consents c JOIN oidc_clients k ON k.id = c.client_id
        WHERE c.user_id = $1
        ORDER BY c.updated_at DESC, c.client_id
        LIMIT 200
        """,
        user_id,
    )
    return [
        ConsentRow(
            client_id=row["client_id"],
            name=row["name"],
            scopes=list(row["scopes"]),
            created_at=row["created_at"],
        )
        for row in rows
    ]


async def forget_consent(db: Executor, user_id: str, client_id: str) -> bool:
    """True when the user had consented to the app."""
    status = await db.execute(
        "DELETE FROM oidc_consents WHERE user_id = $1 AND client_id = $2", user_id, client_id
    )
    return status.endswith(" 1")
