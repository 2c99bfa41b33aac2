"""Multi-factor sign-in, a feature part of the auth actor: TOTP and recovery codes.

Setting up: StartTotpSetup keeps a fresh secret pending (30 minutes) and answers it, with its
`otpauth://` URI, to its owner alone; ConfirmTotp with a current code of it turns TOTP on
and answers ten recovery codes, once (only their digests are kept). DisableTotp and
RegenerateRecoveryCodes want the password or a current code.

Signing in: once the first factor is right (the password, or a social provider), a user with
TOTP on gets no tokens but an MfaChallenge (`second_step`): a single-use token good for five
minutes, stored as its digest. CompleteMfaLogin with it and a TOTP code (or a recovery code,
each good once) opens the session, whose `amr` then says `otp`.

Every code is checked under the user's row lock (`mfa_totp ... FOR UPDATE`), so two shards
racing with the same code cannot both win; a TOTP code is accepted only for a time step later
than the last one accepted (`mfa_rules`). Wrong codes and passwords in a row lock the user's
second factor for a while (TooManyAttempts with `retry_after`); each refusal is logged with
the user id and the reason, never the code, the secret or the challenge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import structlog

from actors.auth import mfa_rules as rules
from actors.auth import store
from actors.auth.context import AuthContext
from actors.auth.messages import (
    MFA_CHALLENGE_SECONDS,
    CompleteMfaLogin,
    ConfirmTotp,
    DisableTotp,
    GetMfaStatus,
    InvalidField,
    InvalidMfaToken,
    MfaAlreadyEnabled,
    MfaChallenge,
    MfaCodeReused,
    MfaNotEnabled,
    MfaStatus,
    RecoveryCodes,
    RegenerateRecoveryCodes,
    StartTotpSetup,
    TokenPair,
    TooManyAttempts,
    TotpSetup,
    UserNotFound,
    WrongMfaCode,
    WrongPassword,
    provisioning_uri,
)
from actors.auth.passwords import MAX_LENGTH
from actors.auth.rules import IP_MAX, USER_AGENT_MAX, clip
from actors.auth.secret_box import SecretBox, SecretUnreadable
from actors.auth.store import mfa as mfa_store
from actors.auth.tokens import new_token, token_digest
from actors.runtime import Transaction, at, rfc3339

if TYPE_CHECKING:  # sessions.py imports `second_step` from here
    from actors.auth.sessions import Sessions

log = structlog.get_logger("actors.auth")

SETUP_SECONDS = 30 * 60  # how long a new secret waits for its first code
METHODS = ["totp", "recovery_code"]
Outcome = Literal["ok", "wrong", "reused", "locked", "malformed"]


async def second_step(
    tx: Transaction,
    user_id: str,
    *,
    amr: tuple[str, ...],
    ip: str | None,
    user_agent: str | None,
    now: float,
) -> MfaChallenge | None:
    """The challenge a user with TOTP on must answer before a session opens (the first
    factor, `amr`, was right); None when the user has no second factor."""
    if not await mfa_store.totp_enabled(tx, user_id):
        return None
    token = new_token()
    await mfa_store.add_challenge(
        tx,
        token_hash=token_digest(token),
        user_id=user_id,
        amr=amr,
        ip=clip(ip, IP_MAX),
        user_agent=clip(user_agent, USER_AGENT_MAX),
        now=now,
        expires_at=now + MFA_CHALLENGE_SECONDS,
    )
    log.info("mfa_challenge_issued", user_id=user_id)
    return MfaChallenge(mfa_token=token, expires_in=MFA_CHALLENGE_SECONDS, methods=list(METHODS))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a code was worth; `retry_after` when the second factor is locked."""

    outcome: Outcome
    kind: rules.CodeKind | None = None
    retry_after: int | None = None


class Mfa:
    """Sets TOTP up and off, keeps the recovery codes, and completes two-step sign-ins."""

    def __init__(
        self,
        context: AuthContext,
        *,
        sessions: Sessions,
        data_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        """`data_keys` are the seeds of SPLITGO_DATA_KEYS (None: the secrets are sealed
        with a key derived from the JWT signing seed; see secret_box.py)."""
        self._context = context
        self._sessions = sessions
        keys = context.keys
        self._box = SecretBox.from_seeds(data_keys, keys.keys, keys.current)

    async def status(self, message: GetMfaStatus) -> MfaStatus:
        pool, now = self._context.pool, self._context.clock()
        row = await mfa_store.totp_of(pool, message.user_id)
        if row is None:
            return MfaStatus(totp_enabled=False)
        pending = row.pending_secret is not None and (row.pending_expires_at or 0) > now
        return MfaStatus(
            totp_enabled=row.secret is not None,
            enabled_at=rfc3339(at(row.enabled_at), timespec="seconds") if row.enabled_at else None,
            recovery_codes_left=await mfa_store.recovery_codes_left(pool, message.user_id),
            setup_pending=pending,
        )

    async def start_setup(self, message: StartTotpSetup) -> TotpSetup:
        """A fresh pending secret (the one pending before, if any, stops counting)."""
        context = self._context
        user = await store.user_by_id(context.pool, message.user_id)
        if user is None:
            raise UserNotFound("No such user.")
        if await mfa_store.totp_enabled(context.pool, user.id):
            raise MfaAlreadyEnabled(
                "Two-factor sign-in is already on. Turn it off first to use another app."
            )
        secret = rules.new_secret()
        now = context.clock()
        expires_at = now + SETUP_SECONDS
        sealed = self._box.seal(secret, user.id)
        await mfa_store.set_pending_secret(context.pool, user.id, sealed, now, expires_at)
        log.info("totp_setup_started", user_id=user.id)
        return TotpSetup(
            secret=secret,
            uri=provisioning_uri(secret, user.email),
            expires_at=rfc3339(at(expires_at), timespec="seconds"),
        )

    async def confirm(self, message: ConfirmTotp) -> RecoveryCodes:
        """TOTP on, once a current code of the pending secret proves the app has it."""
        context = self._context
        now = context.clock()
        codes = rules.new_recovery_codes()
        verdict: Verdict | None = None
        async with context.transaction(dedupe=False) as tx:
            row = await mfa_store.totp_of(tx, message.user_id, for_update=True)
            if row is not None and row.secret is not None:
                raise MfaAlreadyEnabled("Two-factor sign-in is already on.")
            pending = self._pending_secret(row)
            if row is None or pending is None or (row.pending_expires_at or 0) <= now:
                raise MfaNotEnabled("No setup is waiting for a code: start the setup again.")
            verdict = await self._check(tx, row, message.code, pending, recovery=False, now=now)
            if verdict.outcome == "ok":
                await mfa_store.enable_totp(tx, row.user_id, now)
                await self._keep_codes(tx, row.user_id, codes, now)
                if message.session_id:
                    await mfa_store.add_session_amr(tx, message.session_id, row.user_id, "otp")
        self._refuse(verdict, message.user_id, "$.code")
        log.info("totp_enabled", user_id=message.user_id)
        return RecoveryCodes(codes=[rules.shown_recovery_code(code) for code in codes])

    async def disable(self, message: DisableTotp) -> None:
        """TOTP off (and its recovery codes gone), proven with the password or a code."""
        await self._proven(message.user_id, message.password, message.code, disabling=True)
        log.info("totp_disabled", user_id=message.user_id)
        return None

    async def regenerate(self, message: RegenerateRecoveryCodes) -> RecoveryCodes:
        """New recovery codes; the old ones, used or not, stop working."""
        codes = rules.new_recovery_codes()
        await self._proven(message.user_id, message.password, message.code, codes=codes)
        log.info("recovery_codes_regenerated", user_id=message.user_id)
        return RecoveryCodes(codes=[rules.shown_recovery_code(code) for code in codes])

    async def complete_login(self, message: CompleteMfaLogin) -> TokenPair:
        """The session a challenge was waiting for, once its code is right."""
        context = self._context
        digest = token_digest(message.mfa_token)
        now = context.clock()
        pair: TokenPair | None = None
        verdict: Verdict | None = None
        user_id: str | None = None
        session_id: str | None = None
        async with context.transaction(dedupe=False) as tx:
            challenge = await mfa_store.challenge_for_update(tx, digest, now)
            row = None
            if challenge is not None:
                user_id = challenge.user_id
                row = await mfa_store.totp_of(tx, challenge.user_id, for_update=True)
            user = await store.user_by_id(tx, user_id) if user_id else None
            if challenge is not None and row is not None and row.secret and user is not None:
                secret = await self._secret(tx, row)
                verdict = await self._check(tx, row, message.code, secret, now=now)
                if verdict.outcome == "ok":
                    await mfa_store.spend_challenge(tx, digest, now)
                    amr = (*challenge.amr, "otp")
                    ip = message.ip or challenge.ip
                    agent = message.user_agent or challenge.user_agent
                    pair, session_id = await self._sessions.open(tx, user, agent, ip, now, amr=amr)
        if verdict is None or user_id is None:
            log.info("mfa_login_refused", user_id=user_id, reason="invalid_challenge")
            raise InvalidMfaToken("This sign-in has expired or was already used. Sign in again.")
        self._refuse(verdict, user_id, "$.code")
        if pair is None:  # a right verdict always opened one; kept for the type checker
            raise InvalidMfaToken("This sign-in could not be completed. Sign in again.")
        log.info("mfa_login_succeeded", user_id=user_id, session_id=session_id, method=verdict.kind)
        return pair

    async def _proven(
        self,
        user_id: str,
        password: str | None,
        code: str | None,
        *,
        disabling: bool = False,
        codes: list[str] | None = None,
    ) -> None:
        """Check the password or the code under the row lock; then turn TOTP off
        (`disabling`) or keep these recovery codes."""
        context = self._context
        user = await store.user_by_id(context.pool, user_id)
        if user is None:
            raise UserNotFound("No such user.")
        if not code and not password:
            raise InvalidField(
                "Enter a code from your app, a recovery code, or your password.",
                details={"field": "$.code"},
            )
        # argon2 runs before the transaction, never while it holds a connection
        password_ok = False
        if password and not code:
            stored = user.password_hash if len(password) <= MAX_LENGTH else None
            password_ok = await context.passwords.verify(stored, password[:MAX_LENGTH])
        now = context.clock()
        verdict: Verdict | None = None
        async with context.transaction(dedupe=False) as tx:
            row = await mfa_store.totp_of(tx, user_id, for_update=True)
            if row is None or row.secret is None:
                raise MfaNotEnabled("Two-factor sign-in is not on.")
            if code:
                secret = await self._secret(tx, row)
                verdict = await self._check(tx, row, code, secret, now=now)
            else:
                verdict = await self._password_verdict(tx, row, password_ok, now)
            if verdict.outcome == "ok":
                if disabling:
                    await mfa_store.disable_totp(tx, user_id)
                if codes is not None:
                    await self._keep_codes(tx, user_id, codes, now)
        self._refuse(verdict, user_id, "$.code" if code else "$.password")

    async def _password_verdict(
        self, tx: Transaction, row: mfa_store.TotpRow, password_ok: bool, now: float
    ) -> Verdict:
        retry_after = row.strikes.retry_after(now)
        if retry_after is not None:
            return Verdict("locked", retry_after=retry_after)
        if password_ok:
            return Verdict("ok")
        await self._strike(tx, row, now)
        return Verdict("wrong")

    async def _check(
        self,
        tx: Transaction,
        row: mfa_store.TotpRow,
        raw: str,
        secret: str | None,
        *,
        now: float,
        recovery: bool = True,
    ) -> Verdict:
        """What `raw` is worth against `secret` (and the recovery codes, when allowed),
        with the row locked; a right one is spent, a wrong one counted. No TOTP code
        matches a `secret` of None (one no listed key opens)."""
        retry_after = row.strikes.retry_after(now)
        if retry_after is not None:
            return Verdict("locked", retry_after=retry_after)
        parsed = rules.code_kind(raw)
        if parsed is None or (parsed[0] == "recovery" and not recovery):
            return Verdict("malformed")
        kind, code = parsed
        if kind == "totp":
            step = rules.matching_step(secret, code, now) if secret is not None else None
            if step is not None and rules.is_reuse(step, row.last_step):
                return Verdict("reused", kind)
            if step is not None and await mfa_store.accept_step(tx, row.user_id, step, now):
                return Verdict("ok", kind)
        else:
            digest = rules.recovery_digest(row.user_id, code)
            if await mfa_store.spend_recovery_code(tx, row.user_id, digest, now):
                await mfa_store.set_strikes(tx, row.user_id, row.strikes.succeeded(), now)
                return Verdict("ok", kind)
        await self._strike(tx, row, now)
        return Verdict("wrong", kind)

    async def _secret(self, tx: Transaction, row: mfa_store.TotpRow) -> str | None:
        """The row's secret in the clear, sealed again under the current key (in `tx`) when
        it was stored in the clear or under an older key; None when no listed key opens
        it (its recovery codes still work)."""
        stored = row.secret
        if stored is None:
            return None
        try:
            secret = self._box.open(stored, row.user_id)
        except SecretUnreadable:
            log.warning("totp_secret_unreadable", user_id=row.user_id)
            return None
        if not self._box.is_current(stored):
            await mfa_store.reseal_secret(tx, row.user_id, self._box.seal(secret, row.user_id))
            log.info("totp_secret_resealed", user_id=row.user_id, key=self._box.current)
        return secret

    def _pending_secret(self, row: mfa_store.TotpRow | None) -> str | None:
        """The secret waiting for its first code, in the clear (None: none, or unreadable:
        the setup starts again)."""
        if row is None or row.pending_secret is None:
            return None
        try:
            return self._box.open(row.pending_secret, row.user_id)
        except SecretUnreadable:
            log.warning("totp_pending_secret_unreadable", user_id=row.user_id)
            return None

    async def _strike(self, tx: Transaction, row: mfa_store.TotpRow, now: float) -> None:
        """One more wrong proof; a lockout that starts also ends every open challenge."""
        strikes = row.strikes.failed(now)
        await mfa_store.set_strikes(tx, row.user_id, strikes, now)
        if strikes.locked_until > row.strikes.locked_until:
            await mfa_store.spend_user_challenges(tx, row.user_id, now)
            log.warning(
                "mfa_lockout",
                user_id=row.user_id,
                count=strikes.lockouts,
                seconds=round(strikes.locked_until - now),
            )

    async def _keep_codes(
        self, tx: Transaction, user_id: str, codes: list[str], now: float
    ) -> None:
        digests = [rules.recovery_digest(user_id, code) for code in codes]
        await mfa_store.replace_recovery_codes(tx, user_id, digests, now)

    @staticmethod
    def _refuse(verdict: Verdict | None, user_id: str, field: str) -> None:
        """Raise what a refused verdict means (after its commit: strikes stick); log it."""
        if verdict is None or verdict.outcome == "ok":
            return
        log.info("mfa_code_refused", user_id=user_id, reason=verdict.outcome)
        details = {"field": field}
        if verdict.outcome == "locked":
            retry_after = verdict.retry_after or 1
            raise TooManyAttempts(
                f"Too many wrong codes. Try again in {retry_after} seconds.",
                details={"retry_after": retry_after},
            )
        if verdict.outcome == "reused":
            raise MfaCodeReused(
                "This code was already used. Wait for the next one in your app.", details=details
            )
        if verdict.outcome == "malformed":
            raise InvalidField(
                "Enter the 6-digit code from your app, or a recovery code.", details=details
            )
        if field == "$.password":
            raise WrongPassword("That is not your password.", details=details)
        raise WrongMfaCode("That code is not right. Check your app and try again.", details=details)
