"""Email verification, a feature part of the auth actor: the link a new account is mailed,
and spending it."""

from __future__ import annotations

import structlog

from actors.auth import store
from actors.auth.context import AuthContext, issue_token
from actors.auth.messages import (
    EmailVerificationRequested,
    EmailVerified,
    InvalidToken,
    VerifyEmail,
)
from actors.auth.store import UserRow
from actors.auth.tokens import token_digest
from actors.runtime import Transaction

log = structlog.get_logger("actors.auth")

VERIFY_EMAIL_SECONDS = 48 * 3600


class Verification:
    """Mails verification links and spends them (publishing EmailVerified)."""

    def __init__(self, context: AuthContext) -> None:
        self._context = context

    async def send(self, tx: Transaction, user: UserRow, now: float) -> None:
        """Have the notifier mail `user` a verification link, if the transaction commits."""
        token = await issue_token(tx, "verify_email", user, now, VERIFY_EMAIL_SECONDS)
        await self._context.notify(
            tx,
            EmailVerificationRequested(
                user_id=user.id, email=user.email, name=user.name, token=token
            ),
        )

    async def verify(self, message: VerifyEmail) -> None:
        """Spend the link and mark the address it was sent to as verified."""
        digest = token_digest(message.token)
        now = self._context.clock()
        verified: UserRow | None = None
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return None
            spent = await store.consume_one_time_token(tx, digest, "verify_email", now)
            user = await store.user_by_id(tx, spent.user_id) if spent and spent.user_id else None
            # the link verifies the address it was sent to, not whatever the account has now
            if spent is not None and user is not None and user.email == spent.data.get("email"):
                verified = user
                if await store.mark_email_verified(tx, user.id, user.email, now):
                    await tx.publish(EmailVerified(user_id=user.id, email=user.email))
                    await self._context.profiles.changing(tx, user.id)
        if verified is None:
            raise InvalidToken("This verification link is invalid, used or expired.")
        # routed by the link, not the user: the shard that keeps them forgets them
        await self._context.profiles.wrote(verified.id)
        log.info("email_verified", user_id=verified.id)
        return None
