"""Passkeys, a feature part of the auth actor: adding one (WebAuthn registration) while
signed in, signing in with one without a password (a discoverable-credential assertion),
and the user's list of them (rename, delete).

Each ceremony starts with a challenge handed out once, kept as a digest for 5 minutes, and
found again from the challenge the browser's response carries; it is spent in a commit of
its own before the response is checked, so it works once even when what follows fails. A
challenge that comes back spent, or a signature counter that did not advance, is a replay:
refused (PasskeyReplayed) and logged, never with the response itself. The relying party is
the node's public URL: its host is the RP ID, its origin the only one accepted.
"""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import structlog
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from actors.auth import store
from actors.auth.context import AuthContext, new_id
from actors.auth.messages import (
    DeletePasskey,
    FinishPasskeyRegistration,
    FinishPasskeySignIn,
    ListPasskeys,
    PasskeyExists,
    PasskeyList,
    PasskeyNotFound,
    PasskeyOptions,
    PasskeyRejected,
    PasskeyReplayed,
    PasskeysUnavailable,
    PasskeyView,
    RenamePasskey,
    StartPasskeyRegistration,
    StartPasskeySignIn,
    TokenPair,
    UnknownPasskey,
    UserNotFound,
)
from actors.auth.passkey_rules import (
    CEREMONY_TIMEOUT_MS,
    CHALLENGE_SECONDS,
    RP_NAME,
    RelyingParty,
    base64url_decode,
    challenge_digest,
    challenge_of,
    normalise_passkey_name,
    parse_credential,
    raw_id_of,
    relying_party,
    sign_count_advanced,
    transports_of,
)
from actors.auth.rules import IP_MAX, clip
from actors.auth.sessions import Sessions
from actors.auth.store import ChallengePurpose, PasskeyRow
from actors.runtime import Transaction, rfc3339

log = structlog.get_logger("actors.auth")

# how a passkey session was signed in (RFC 8176): a key bound to hardware, and the person
# verified by the authenticator (a PIN or biometrics)
PASSKEY_AMR = ("hwk", "user")
_HANDLE_BYTES = 32
_CHALLENGE_BYTES = 32


def passkey_view(row: PasskeyRow) -> PasskeyView:
    """A stored passkey as its owner sees it."""
    return PasskeyView(
        id=row.id,
        name=row.name,
        created_at=rfc3339(row.created_at, timespec="seconds"),
        last_used_at=(rfc3339(row.last_used_at, timespec="seconds") if row.last_used_at else None),
        transports=list(row.transports),
        backed_up=row.backed_up,
    )


def _descriptor(row: PasskeyRow) -> PublicKeyCredentialDescriptor:
    known = {transport.value: transport for transport in AuthenticatorTransport}
    return PublicKeyCredentialDescriptor(
        id=row.credential_id,
        transports=[known[name] for name in row.transports if name in known] or None,
    )


class Passkeys:
    """Registers passkeys, signs people in with them, and keeps each user's list."""

    def __init__(self, context: AuthContext, *, sessions: Sessions, public_url: str) -> None:
        self._context = context
        self._sessions = sessions
        self._party = relying_party(public_url)

    def _rp(self) -> RelyingParty:
        if self._party is None:
            raise PasskeysUnavailable(
                "Passkeys need the site's public address (SPLITGO_PUBLIC_URL), and none is set."
            )
        return self._party

    # ── registration ───────────────────────────────────────────────────────────────────

    async def start_registration(self, message: StartPasskeyRegistration) -> PasskeyOptions:
        """Options for navigator.credentials.create(): the user's stable handle, their
        existing passkeys excluded, a resident key and user verification preferred."""
        party, context = self._rp(), self._context
        user = await store.user_by_id(context.pool, message.user_id)
        if user is None:
            raise UserNotFound("No such user.")
        now = context.clock()
        challenge = secrets.token_bytes(_CHALLENGE_BYTES)
        async with context.transaction(dedupe=False) as tx:
            handle = await store.user_handle(tx, user.id, secrets.token_bytes(_HANDLE_BYTES), now)
            existing = await store.passkeys_of(tx, user.id)
            await self._keep(tx, challenge, "register", user.id, now)
        options = generate_registration_options(
            rp_id=party.id,
            rp_name=RP_NAME,
            user_name=user.email,
            user_id=handle,
            user_display_name=user.name,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[_descriptor(row) for row in existing],
        )
        return PasskeyOptions(options=options_to_json(options))

    async def finish_registration(self, message: FinishPasskeyRegistration) -> PasskeyView:
        """Verify the authenticator's attestation and keep its credential under `name`."""
        party, context = self._rp(), self._context
        name = normalise_passkey_name(message.name)
        credential, challenge = self._read(message.credential)
        await self._spend(challenge, "register", message.user_id, flow="registration")
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=party.id,
                expected_origin=party.origin,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as error:
            raise self._rejected("registration", message.user_id, error) from None
        now = context.clock()
        try:
            row = await self._store(message, name, verified, transports_of(credential), now)
        except asyncpg.ForeignKeyViolationError:
            raise UserNotFound("No such user.") from None
        if row is None:
            raise PasskeyExists("This passkey is already registered.")
        log.info("passkey_registered", user_id=message.user_id, passkey_id=row.id)
        return passkey_view(row)

    async def _store(
        self,
        message: FinishPasskeyRegistration,
        name: str,
        verified: VerifiedRegistration,
        transports: list[str],
        now: float,
    ) -> PasskeyRow | None:
        async with self._context.transaction(dedupe=False) as tx:
            return await store.add_passkey(
                tx,
                passkey_id=new_id(),
                user_id=message.user_id,
                credential_id=verified.credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                transports=transports,
                name=name,
                backed_up=verified.credential_backed_up,
                now=now,
            )

    # ── sign-in ────────────────────────────────────────────────────────────────────────

    async def start_sign_in(self, message: StartPasskeySignIn) -> PasskeyOptions:
        """Options for navigator.credentials.get() naming no credential: the authenticator
        offers the passkeys it holds for this site (discoverable credentials)."""
        party, context = self._rp(), self._context
        challenge = secrets.token_bytes(_CHALLENGE_BYTES)
        async with context.transaction(dedupe=False) as tx:
            await self._keep(tx, challenge, "sign_in", None, context.clock())
        options = generate_authentication_options(
            rp_id=party.id,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            allow_credentials=[],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return PasskeyOptions(options=options_to_json(options))

    async def finish_sign_in(self, message: FinishPasskeySignIn) -> TokenPair:
        """A new session for the owner of the passkey that signed the challenge."""
        party, context = self._rp(), self._context
        ip = clip(message.ip, IP_MAX)
        credential, challenge = self._read(message.credential)
        await self._spend(challenge, "sign_in", None, flow="sign_in", ip=ip)
        try:
            raw_id = raw_id_of(credential)
        except ValueError:
            raise PasskeyRejected("This is not a passkey sign-in response.") from None
        passkey = await store.passkey_by_credential(context.pool, raw_id)
        if passkey is None:
            log.warning("passkey_sign_in_refused", reason="unknown_credential", ip=ip)
            raise UnknownPasskey(
                "This passkey is not registered here: it may have been deleted. "
                "Sign in with your password."
            )
        await self._check_handle(credential, passkey, ip)
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=party.id,
                expected_origin=party.origin,
                credential_public_key=passkey.public_key,
                # the counter is judged below, under the row's lock, by our own rule
                credential_current_sign_count=0,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as error:
            raise self._rejected("sign_in", passkey.user_id, error) from None
        now = context.clock()
        async with context.transaction(dedupe=False) as tx:
            locked = await store.passkey_by_credential(tx, raw_id, lock=True)
            user = await store.user_by_id(tx, passkey.user_id)
            if locked is None or user is None:
                raise UnknownPasskey("This passkey is not registered here any more.")
            if not sign_count_advanced(locked.sign_count, verified.new_sign_count):
                # raised inside: nothing of this sign-in is kept (the challenge is spent)
                log.warning(
                    "passkey_replayed",
                    reason="sign_count",
                    user_id=passkey.user_id,
                    passkey_id=passkey.id,
                    ip=ip,
                )
                raise PasskeyReplayed(
                    "This passkey's signature counter did not advance: the sign-in was "
                    "replayed or the key was copied. Sign in with your password, and delete "
                    "the passkey if you did not copy it."
                )
            await store.record_use(
                tx, locked.id, verified.new_sign_count, verified.credential_backed_up, now
            )
            # the person was verified (PIN, biometrics) only when the authenticator says so
            amr = PASSKEY_AMR if verified.user_verified else PASSKEY_AMR[:1]
            pair, session_id = await self._sessions.open(
                tx, user, message.user_agent, ip, now, amr=amr
            )
        log.info("passkey_signed_in", user_id=user.id, passkey_id=passkey.id, session_id=session_id)
        return pair

    async def _check_handle(
        self, credential: dict[str, Any], passkey: PasskeyRow, ip: str | None
    ) -> None:
        """A response naming a user handle must name the passkey owner's."""
        response = credential.get("response")
        named = response.get("userHandle") if isinstance(response, dict) else None
        if not named:
            return
        handle = await store.handle_of(self._context.pool, passkey.user_id)
        try:
            matches = handle is not None and base64url_decode(named) == handle
        except ValueError:
            matches = False
        if not matches:
            log.warning("passkey_sign_in_refused", reason="user_handle", ip=ip)
            raise PasskeyRejected("This passkey belongs to another account than it says.")

    # ── the user's list ────────────────────────────────────────────────────────────────

    async def list(self, message: ListPasskeys) -> PasskeyList:
        rows = await store.passkeys_of(self._context.pool, message.user_id)
        return PasskeyList(items=[passkey_view(row) for row in rows])

    async def rename(self, message: RenamePasskey) -> PasskeyView:
        name = normalise_passkey_name(message.name)
        row = await store.rename_passkey(
            self._context.pool, message.user_id, message.passkey_id, name
        )
        if row is None:
            raise PasskeyNotFound("You have no passkey with this id.")
        return passkey_view(row)

    async def delete(self, message: DeletePasskey) -> None:
        pool = self._context.pool
        if not await store.delete_passkey(pool, message.user_id, message.passkey_id):
            raise PasskeyNotFound("You have no passkey with this id.")
        log.info("passkey_deleted", user_id=message.user_id, passkey_id=message.passkey_id)

    # ── challenges and refusals ────────────────────────────────────────────────────────

    async def _keep(
        self,
        tx: Transaction,
        challenge: bytes,
        purpose: ChallengePurpose,
        user_id: str | None,
        now: float,
    ) -> None:
        await store.add_challenge(
            tx,
            digest=challenge_digest(challenge),
            purpose=purpose,
            user_id=user_id,
            now=now,
            expires_at=now + CHALLENGE_SECONDS,
        )

    @staticmethod
    def _read(raw: str) -> tuple[dict[str, Any], bytes]:
        """The credential JSON and the challenge it answers; PasskeyRejected if unreadable."""
        try:
            credential = parse_credential(raw)
            return credential, challenge_of(credential)
        except ValueError:
            raise PasskeyRejected(
                "This is not a passkey response: expected the browser's WebAuthn credential "
                "as JSON.",
                details={"field": "$.credential"},
            ) from None

    async def _spend(
        self,
        challenge: bytes,
        purpose: ChallengePurpose,
        user_id: str | None,
        *,
        flow: str,
        ip: str | None = None,
    ) -> None:
        """Spend the challenge (its own commit); refuse a reused, stale or foreign one."""
        outcome = await store.spend_challenge(
            self._context.pool,
            challenge_digest(challenge),
            purpose,
            user_id,
            self._context.clock(),
        )
        if outcome == "spent":
            return
        if outcome == "used":
            log.warning("passkey_replayed", reason="challenge_reused", flow=flow, ip=ip)
            raise PasskeyReplayed(
                "This passkey response was already used once: start again for a fresh one."
            )
        log.info("passkey_challenge_refused", reason=outcome, flow=flow, ip=ip)
        if outcome == "expired":
            raise PasskeyRejected("This passkey request has expired (5 minutes): start again.")
        raise PasskeyRejected("This passkey response answers no request of this site.")

    def _rejected(self, flow: str, user_id: str, error: Exception) -> PasskeyRejected:
        """The refusal of a response that did not verify, logged with the library's reason
        (it names origins and flags, never the response's secrets)."""
        reason = f"{type(error).__name__}: {error}"[:300]
        log.warning("passkey_rejected", flow=flow, user_id=user_id, reason=reason)
        text = str(error)
        if "origin" in text:
            return PasskeyRejected(
                "This passkey response was made for another site (its origin is not "
                f"{self._rp().origin})."
            )
        if "RP ID" in text:
            return PasskeyRejected("This passkey response was made for another site.")
        if "signature" in text.lower():
            return PasskeyRejected("This passkey response's signature does not verify.")
        return PasskeyRejected("This passkey response does not verify: start again.")
