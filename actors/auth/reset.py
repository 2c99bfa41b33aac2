"""Password reset and change, a feature part of the auth actor: the mailed link and the
new password, or a new password given with the current one.

Asking for a link answers the same whatever the email, so nobody learns who has an account.
A reset spends every other reset link of the account and ends all its sessions (published
as SessionsRevoked, so every node's edge refuses their access tokens at once).
"""

from __future__ import annotations

import structlog

from actors.auth import store
from actors.auth.context import AuthContext, issue_token
from actors.auth.messages import (
    ChangePassword,
    ForgotPassword,
    InvalidField,
    InvalidToken,
    PasswordChanged,
    PasswordResetRequested,
    ResetPassword,
    WrongPassword,
    normalise_email,
)
from actors.auth.sessions import publish_revoked
from actors.auth.tokens import token_digest

log = structlog.get_logger("actors.auth")

RESET_PASSWORD_SECONDS = 3600
# reset mails per account per hour: more would let anyone flood someone's inbox
RESET_MAILS_PER_HOUR = 5


class Reset:
    """Mails reset links (PasswordResetRequested) and sets the new password
    (PasswordChanged)."""

    def __init__(self, context: AuthContext) -> None:
        self._context = context

    async def forgot(self, message: ForgotPassword) -> None:
        """Mail a reset link if the account exists (and was not sent too many lately)."""
        # the same silent answer whatever the email: no account enumeration
        try:
            email = normalise_email(message.email)
        except InvalidField:
            return None
        user = await store.user_by_email(self._context.pool, email)
        if user is None:
            log.info("password_reset_unknown_email")
            return None
        now = self._context.clock()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return None
            recent = await store.tokens_issued_since(tx, user.id, "reset_password", now - 3600)
            if recent >= RESET_MAILS_PER_HOUR:
                log.warning("password_reset_throttled", user_id=user.id)
                return None
            token = await issue_token(tx, "reset_password", user, now, RESET_PASSWORD_SECONDS)
            await self._context.notify(
                tx,
                PasswordResetRequested(
                    user_id=user.id,
                    email=user.email,
                    name=user.name,
                    token=token,
                    telegram_chat_id=user.telegram_chat_id,
                ),
            )
        log.info("password_reset_requested", user_id=user.id)
        return None

    async def reset(self, message: ResetPassword) -> None:
        """Set the new password with a live link; every session of the account ends."""
        context = self._context
        digest = token_digest(message.token)
        invalid = InvalidToken("This reset link is invalid, used or expired.")
        pending = await store.peek_one_time_token(
            context.pool, digest, "reset_password", context.clock()
        )
        user = (
            await store.user_by_id(context.pool, pending.user_id)
            if pending and pending.user_id
            else None
        )
        if user is None:
            raise invalid
        # a weak password is refused before the token is spent: the link still works
        await context.check_password(message.password, user.email, user.name)
        password_hash = await context.passwords.hash(message.password)
        now = context.clock()
        changed = False
        revoked: list[str] = []
        async with context.transaction() as tx:
            if tx.duplicate:
                return None
            if await store.consume_one_time_token(tx, digest, "reset_password", now):
                await store.set_password(tx, user.id, password_hash, now, replacing=None)
                await store.spend_user_tokens(tx, user.id, "reset_password", now)
                revoked = await store.revoke_user_sessions(tx, user.id, now, "password_reset")
                await publish_revoked(tx, user.id, revoked, "password_reset", now)
                await store.forget_email_failures(
                    tx, user.email, context.limits.key("email", user.email)
                )
                await context.notify(
                    tx,
                    PasswordChanged(
                        user_id=user.id,
                        email=user.email,
                        telegram_chat_id=user.telegram_chat_id,
                    ),
                )
                changed = True
        if not changed:
            raise invalid
        log.info("password_reset", user_id=user.id, sessions_revoked=len(revoked))
        return None

    async def change(self, message: ChangePassword) -> None:
        """The current password proves it is them; the new one replaces it and every other
        session of theirs ends (the one asking stays signed in)."""
        context = self._context
        user = await store.user_by_id(context.pool, message.user_id)
        if user is None or not await context.passwords.verify(
            user.password_hash, message.current_password
        ):
            raise WrongPassword(
                "That is not your current password.", details={"field": "$.current_password"}
            )
        await context.check_password(message.password, user.email, user.name)
        password_hash = await context.passwords.hash(message.password)
        now = context.clock()
        revoked: list[str] = []
        async with context.transaction() as tx:
            if tx.duplicate:
                return None
            if not await store.set_password(
                tx, user.id, password_hash, now, replacing=user.password_hash
            ):
                raise WrongPassword(
                    "Your password changed meanwhile; sign in again.",
                    details={"field": "$.current_password"},
                )
            revoked = await store.revoke_other_sessions(
                tx, user.id, message.session_id, now, "password_changed"
            )
            await publish_revoked(tx, user.id, revoked, "password_changed", now)
            await context.notify(
                tx,
                PasswordChanged(
                    user_id=user.id, email=user.email, telegram_chat_id=user.telegram_chat_id
                ),
            )
        log.info("password_changed", user_id=user.id, sessions_revoked=len(revoked))
        return None
