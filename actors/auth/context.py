"""What the auth actor's feature parts share: their context, and how a user is shown.

The actor builds one `AuthContext` — the runtime's `Context` (database, clock, the shard's
transactions, messages and timers; see actors/runtime/parts.py) with the signing keys, the
password hasher, the login limits, the notifier and the shard's hot users (`profiles`) —
and hands it to each part, so a part
holds no reference to the actor itself. It commits through `transaction`, the shard's own,
so the inbox and outbox work as for any handler; it is a `SessionsTransaction`, which has
the owner of any session it writes forget the kept copy once it ends.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from actors.auth import store
from actors.auth.limits import LoginLimits
from actors.auth.messages import UserView
from actors.auth.passwords import Passwords, check_password, user_inputs
from actors.auth.profiles import Profile, Profiles, SessionsTransaction
from actors.auth.store import UserRow
from actors.auth.tokens import SigningKeys, new_token, token_digest
from actors.runtime import Context, Message, Transaction, rfc3339


@dataclass(frozen=True, slots=True)
class AuthContext(Context):
    """The shard's `Context`, with the keys and policies every feature part of auth uses."""

    keys: SigningKeys
    passwords: Passwords
    limits: LoginLimits
    # the actor that mails (EmailVerificationRequested, PasswordResetRequested, …); None: nobody
    notifier: str | None
    # the shard's hot users (issue 20): read them through it, and tell it of every write
    profiles: Profiles = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "profiles", Profiles(self))

    def transaction(self, *, dedupe: bool = True) -> SessionsTransaction:
        """The shard's transaction (`Actor.transaction`), noting whose sessions it writes:
        their owners forget them once it has ended (actors/auth/profiles.py)."""
        return SessionsTransaction(self.shard_actor, self.profiles.sessions, dedupe=dedupe)

    async def notify(self, tx: Transaction, event: Message) -> None:
        """Have the notifier send `event` if the transaction commits."""
        if self.notifier is not None:
            await tx.tell(self.notifier, event)

    async def check_password(self, password: str, email: str, name: str | None) -> None:
        """WeakPassword unless `password` meets the policy for this user."""
        # zxcvbn takes up to ~20 ms of CPU: off the loop, like the hashing
        await asyncio.to_thread(check_password, password, user_inputs(email, name))


def new_id() -> str:
    """A new user or session id."""
    return str(uuid.uuid4())


async def issue_token(
    tx: Transaction, purpose: store.Purpose, user: UserRow, now: float, lifetime: float
) -> str:
    """A single-use token for `user`: only its digest is stored; the token is returned
    once, to be mailed. It carries the email it is sent to."""
    token = new_token()
    await store.add_one_time_token(
        tx,
        token_hash=token_digest(token),
        purpose=purpose,
        user_id=user.id,
        data={"email": user.email},
        now=now,
        expires_at=now + lifetime,
    )
    return token


def user_view(user: UserRow | Profile) -> UserView:
    """A stored (or kept) user as the API shows it."""
    return UserView(
        id=user.id,
        email=user.email,
        name=user.name,
        email_verified=user.email_verified,
        roles=list(user.roles),
        telegram_linked=user.telegram_chat_id is not None,
        # auth has always answered to the second
        created_at=rfc3339(user.created_at, timespec="seconds"),
        phone=user.phone,
        phone_verified=user.phone_verified,
    )
