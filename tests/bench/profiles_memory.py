"""Memory per cached user: what the auth actor's hot profiles cost, measured and as budgeted.

`N` users shaped like real ones (an email, a name, the `user` role, a creation time, half
with a phone number) are put into a `Resident` the way a shard keeps them
(actors/auth/profiles.py). Two figures per user:

* measured: the bytes Python allocated for them (tracemalloc, traced from before the rows
  are made until they are held; the store's row objects are dropped, as in the actor);
* budgeted: what the node's `MemoryBudget` counts for them (the `deep_size` estimate plus
  the fixed per-entry overhead) — the figure the budget bounds.

With the default budget (SPLITGO_STATE_BUDGET_MB) that bounds how many users one node
keeps hot; past it the least recently used go first and are read again on their next use.

`measure_session_memory` does the same for the live sessions the owner shard keeps of each
user (hot sessions), per session and per user.
"""

from __future__ import annotations

import gc
import tracemalloc
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from actors.auth.profiles import KeptSession, Profile, kept_session, profile_of
from actors.auth.store import SessionRow, UserRow
from actors.runtime.resident import DEFAULT_BUDGET_BYTES, MemoryBudget, Resident, deep_size


@dataclass(frozen=True)
class ProfileMemory:
    """What `users` cached users cost, and how many the budget holds."""

    users: int
    measured_bytes: int
    budgeted_bytes: int
    budget_bytes: int

    @property
    def measured_per_user(self) -> float:
        return self.measured_bytes / self.users

    @property
    def budgeted_per_user(self) -> float:
        return self.budgeted_bytes / self.users

    @property
    def users_in_budget(self) -> int:
        return int(self.budget_bytes // self.budgeted_per_user)

    def format(self) -> str:
        mb = self.budget_bytes / (1024 * 1024)
        return (
            f"memory per cached user ({self.users:,} users in one shard's holder): "
            f"{self.measured_per_user:,.0f} bytes measured (tracemalloc), "
            f"{self.budgeted_per_user:,.0f} bytes as the budget counts them\n"
            f"  budget SPLITGO_STATE_BUDGET_MB={mb:g}: at most {self.users_in_budget:,} "
            "cached users per node (least recently used dropped past it)"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "measured_bytes_per_user": round(self.measured_per_user, 1),
            "budgeted_bytes_per_user": round(self.budgeted_per_user, 1),
            "budget_bytes": self.budget_bytes,
            "users_in_budget": self.users_in_budget,
        }


def _row(n: int, created: datetime) -> UserRow:
    return UserRow(
        id=str(uuid.uuid4()),
        email=f"person.{n:06d}@example.com",
        name=f"Person {n}",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$" + "x" * 66,
        email_verified=n % 3 != 0,
        phone=f"+4477009{n:05d}" if n % 2 else None,
        phone_verified=n % 4 == 1,
        roles=("user",),
        telegram_chat_id=100_000 + n if n % 5 == 0 else None,
        created_at=created + timedelta(seconds=n),
    )


def measure_profile_memory(
    users: int = 10_000, budget_bytes: int = DEFAULT_BUDGET_BYTES
) -> ProfileMemory:
    """Hold `users` profiles in one holder and measure what they take."""
    created = datetime(2026, 1, 1, tzinfo=UTC)
    budget = MemoryBudget(budget_bytes)
    holder: Resident[str, Profile] = Resident("profiles", budget=budget, size=deep_size)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for n in range(users):
            row = _row(n, created)
            holder.put(row.id, profile_of(row))
        del row
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return ProfileMemory(
        users=len(holder),
        measured_bytes=after - before,
        budgeted_bytes=budget.used,
        budget_bytes=budget_bytes,
    )


# ── hot sessions ───────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class SessionMemory:
    """What the live sessions of `users` users (`sessions_per_user` each) cost when kept."""

    users: int
    sessions_per_user: int
    measured_bytes: int
    budgeted_bytes: int

    @property
    def sessions(self) -> int:
        return self.users * self.sessions_per_user

    def as_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "sessions_per_user": self.sessions_per_user,
            "measured_bytes_per_session": round(self.measured_bytes / self.sessions, 1),
            "budgeted_bytes_per_session": round(self.budgeted_bytes / self.sessions, 1),
            "measured_bytes_per_user": round(self.measured_bytes / self.users, 1),
            "budgeted_bytes_per_user": round(self.budgeted_bytes / self.users, 1),
        }


def measure_session_memory(users: int = 5_000, sessions_per_user: int = 3) -> SessionMemory:
    """Hold `users` users' live sessions in one holder, as auth's owner shard keeps them
    (actors/auth/profiles.py, `HotSessions`), and measure what they take."""
    created = datetime(2026, 1, 1, tzinfo=UTC)
    budget = MemoryBudget(DEFAULT_BUDGET_BYTES)
    holder: Resident[str, tuple[KeptSession, ...]] = Resident(
        "auth_sessions", budget=budget, size=deep_size
    )
    agents = ("Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0", "splitgo-ios/2.4", None)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for n in range(users):
            user_id = str(uuid.uuid4())
            rows = [
                SessionRow(
                    id=str(uuid.uuid4()),
                    user_id=user_id,
                    user_agent=agents[(n + s) % len(agents)],
                    created_at=created + timedelta(seconds=n),
                    last_used_at=created + timedelta(seconds=n + s),
                    expires_at=created + timedelta(days=30, seconds=n),
                )
                for s in range(sessions_per_user)
            ]
            holder.put(user_id, tuple(kept_session(row) for row in rows))
        del rows
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return SessionMemory(
        users=len(holder),
        sessions_per_user=sessions_per_user,
        measured_bytes=after - before,
        budgeted_bytes=budget.used,
    )
