"""The auth actor through an ActorSystem (codec check on) on a real PostgreSQL.

Two auth shards keyed like the node keys them, a recording stand-in for `notifications`
(it handles the three mails auth sends it) and a subscriber for the other events, fed by
the outbox relay. Time is a fake clock the tests move; argon2 runs at its minimum cost.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import pytest

from actors.auth import messages, store
from actors.auth.actor import Auth
from actors.auth.messages import (
    ACCESS_TOKEN_SECONDS,
    ConsumeTelegramLink,
    CreateTelegramLink,
    EmailTaken,
    EmailVerificationRequested,
    EmailVerified,
    FinishOAuth,
    ForgotPassword,
    GetUser,
    GrantRole,
    InvalidCredentials,
    InvalidField,
    InvalidToken,
    ListSessions,
    Login,
    Logout,
    MakeAdmin,
    OAuthFailed,
    OAuthRedirect,
    PasswordChanged,
    PasswordResetRequested,
    Refresh,
    Register,
    ResetPassword,
    RevokeSession,
    SessionNotFound,
    StartOAuth,
    TelegramLinked,
    TelegramNotConfigured,
    TokenPair,
    TokenReused,
    TooManyAttempts,
    UnknownProvider,
    UpdateUser,
    UserNotFound,
    UserRegistered,
    UserView,
    VerifyEmail,
    WeakPassword,
    auth_key,
)
from actors.auth.oauth import AuthorizationRequest, ProviderConfig, ProviderIdentity
from actors.auth.passwords import TEST_PARAMETERS, Passwords
from actors.auth.tokens import SigningKeys
from actors.runtime import (
    Actor,
    ActorRef,
    ActorSystem,
    MemoryDeadLetterStore,
    Message,
    Outbox,
    RestartPolicy,
    handles,
)
from splitgo.db import apply_schema
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "violet tractor umbrella sandwich"
PUBLIC_URL = "https://splitgo.test"
REDIRECT = f"{PUBLIC_URL}/api/v1/auth/oauth/google/callback"
KEYS = SigningKeys(keys={"k1": b"k" * 32}, current="k1")


# ── stand-ins ──────────────────────────────────────────────────────────────────────────


class Mailer(Actor):
    """Stands in for notifications: records the three mails auth asks it to send."""

    def __init__(self, seen: list[Message]) -> None:
        self.seen = seen

    @handles(EmailVerificationRequested, PasswordResetRequested, PasswordChanged)
    async def record(self, message: Message) -> None:
        self.seen.append(message)


class Listener(Actor):
    """A later actor (splits) subscribed to auth's other events."""

    def __init__(self, seen: list[Message]) -> None:
        self.seen = seen

    @handles(UserRegistered, EmailVerified, TelegramLinked)
    async def record(self, message: Message) -> None:
        self.seen.append(message)


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeOAuth:
    """The two functions of actors/auth/oauth.py, without a provider: each code names the
    identity the "provider" vouches for."""

    identities: dict[str, ProviderIdentity] = field(default_factory=dict)
    completed: list[dict[str, Any]] = field(default_factory=list)
    issued: list[AuthorizationRequest] = field(default_factory=list)

    def authorization_request(
        self, provider: ProviderConfig, redirect_uri: str
    ) -> AuthorizationRequest:
        state = secrets.token_urlsafe(32)
        request = AuthorizationRequest(
            url=f"{provider.authorize_url}?state={state}&redirect_uri={redirect_uri}",
            state=state,
            code_verifier=secrets.token_urlsafe(48),
            nonce=secrets.token_urlsafe(16) if provider.kind == "oidc" else None,
        )
        self.issued.append(request)
        return request

    async def complete_authorization(
        self,
        provider: ProviderConfig,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        nonce: str | None,
        http: aiohttp.ClientSession,
    ) -> ProviderIdentity:
        self.completed.append(
            {"code": code, "code_verifier": code_verifier, "nonce": nonce, "uri": redirect_uri}
        )
        identity = self.identities.get(code)
        if identity is None:
            raise OAuthFailed("the provider refused the code")
        return identity


def provider(name: str) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        client_id="client",
        client_secret="secret",
        authorize_url=f"https://{name}.example/authorize",
        token_url=f"https://{name}.example/token",
        userinfo_url=f"https://{name}.example/userinfo",
        jwks_url=None,
        issuer=None,
        scopes=("openid", "email"),
        kind="oidc",
    )


@dataclass
class Harness:
    system: ActorSystem
    auth: ActorRef
    pool: asyncpg.Pool
    clock: Clock
    mails: list[Message]
    events: list[Message]
    oauth: FakeOAuth

    async def ask(self, message: Message) -> Any:
        return await self.auth.ask(message)

    async def register(self, email: str = "alice@example.com", name: str = "Alice") -> UserView:
        user: UserView = await self.ask(Register(email=email, password=PASSWORD, name=name))
        return user

    async def login(
        self,
        email: str = "alice@example.com",
        password: str = PASSWORD,
        *,
        ip: str | None = "198.51.100.7",
        user_agent: str | None = "pytest",
    ) -> TokenPair:
        pair: TokenPair = await self.ask(
            Login(email=email, password=password, ip=ip, user_agent=user_agent)
        )
        return pair

    async def mail(self, kind: type[Message], count: int = 1) -> Any:
        """The `count`-th mail of this kind, once the relay delivered it."""
        await eventually(lambda: len(self.of(self.mails, kind)) >= count)
        return self.of(self.mails, kind)[count - 1]

    async def event(self, kind: type[Message], count: int = 1) -> Any:
        await eventually(lambda: len(self.of(self.events, kind)) >= count)
        return self.of(self.events, kind)[count - 1]

    @staticmethod
    def of(seen: list[Message], kind: type[Message]) -> list[Any]:
        return [message for message in seen if type(message) is kind]


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running(pool: asyncpg.Pool, auth_type: type[Auth] = Auth) -> AsyncIterator[Harness]:
    """A system with two auth shards, the stand-ins, and the outbox relay."""
    await apply_schema(pool)
    codec = Codec()
    codec.register_module(messages)
    system = ActorSystem(
        MemoryTransport(node_id="auth-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=10.0,
    )
    await system.start()
    clock = Clock(now=1_900_000_000.0)
    mails: list[Message] = []
    events: list[Message] = []
    oauth = FakeOAuth()
    passwords = Passwords(TEST_PARAMETERS)
    for event_type in (UserRegistered, EmailVerified, TelegramLinked):
        system.subscribe(event_type, "listener")
    system.spawn(Mailer, "notifications", factory=lambda: Mailer(mails))
    system.spawn(Listener, "listener", factory=lambda: Listener(events))
    auth = system.spawn(
        auth_type,
        "auth",
        factory=lambda: auth_type(
            pool,
            KEYS,
            providers={"google": provider("google"), "github": provider("github")},
            http=None,
            bot_username="splitgo_bot",
            public_url=PUBLIC_URL,
            passwords=passwords,
            oauth=oauth,
            clock=clock,
        ),
        shards=2,
        key=auth_key,
        policy=RestartPolicy(max_restarts=10, within=60, backoff_initial=0.01, backoff_max=0.05),
    )
    try:
        yield Harness(system, auth, pool, clock, mails, events, oauth)
    finally:
        await system.stop(2.0)


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    async with running(pool) as made:
        yield made


def claims_of(harness: Harness, pair: TokenPair) -> messages.AccessClaims:
    return KEYS.verifier().verify(pair.access_token, now=harness.clock.now)


# ── sign-up ────────────────────────────────────────────────────────────────────────────


async def test_register_creates_the_user_and_sends_a_verification_mail(harness: Harness) -> None:
    """Registering stores a normalised, unverified user with an argon2id hash, sends a verification
    mail and a UserRegistered event, and stores only the token's digest."""
    user = await harness.ask(
        Register(email="  Alice@Example.COM ", password=PASSWORD, name="  Alice  ")
    )
    assert isinstance(user, UserView)
    assert (user.email, user.name, user.email_verified, user.roles) == (
        "alice@example.com",
        "Alice",
        False,
        ["user"],
    )
    assert not user.telegram_linked
    assert user.created_at == "2030-03-17T17:46:40Z"  # the fake clock, RFC 3339 UTC

    mail = await harness.mail(EmailVerificationRequested)
    assert (mail.user_id, mail.email, mail.name) == (user.id, "alice@example.com", "Alice")
    assert len(mail.token) >= 40
    registered = await harness.event(UserRegistered)
    assert registered == UserRegistered(user_id=user.id, email="alice@example.com", name="Alice")

    stored = await harness.pool.fetchrow("SELECT password_hash FROM users WHERE id = $1", user.id)
    assert stored["password_hash"].startswith("$argon2id$")
    # the token itself is nowhere in the database, only its digest
    hashes = await harness.pool.fetch("SELECT hash FROM one_time_tokens")
    assert mail.token.encode() not in [bytes(row["hash"]) for row in hashes]


async def test_a_taken_email_is_refused_whatever_its_case(harness: Harness) -> None:
    """Registering an email already taken, in any case or with whitespace, is refused with
    EmailTaken and adds no user."""
    await harness.register()
    with pytest.raises(EmailTaken):
        await harness.register(email="ALICE@example.com ")
    assert await harness.pool.fetchval("SELECT count(*) FROM users") == 1


async def test_bad_sign_up_input_names_the_field_and_changes_nothing(harness: Harness) -> None:
    """A weak password, malformed email or over-long name is refused naming the field, and no user
    or mail is created."""
    with pytest.raises(WeakPassword) as weak:
        await harness.ask(Register(email="bob@example.com", password="short", name="Bob"))
    assert weak.value.details == {"field": "$.password"}
    assert "10 characters" in weak.value.message
    with pytest.raises(WeakPassword, match="too easy to guess"):
        await harness.ask(Register(email="bob@example.com", password="password1234", name="Bob"))
    with pytest.raises(InvalidField) as email:
        await harness.ask(Register(email="bob@", password=PASSWORD, name="Bob"))
    assert email.value.details == {"field": "$.email"}
    with pytest.raises(InvalidField) as name:
        await harness.ask(Register(email="bob@example.com", password=PASSWORD, name="x" * 101))
    assert name.value.details == {"field": "$.name"}
    assert await harness.pool.fetchval("SELECT count(*) FROM users") == 0
    await asyncio.sleep(0.2)
    assert harness.mails == []


# ── login and limits ───────────────────────────────────────────────────────────────────


async def test_login_issues_a_token_pair(harness: Harness) -> None:
    """Logging in with a normalised email issues a 15-minute bearer token pair for the user and
    records a session with the user agent."""
    user = await harness.register()
    pair = await harness.login(" ALICE@example.com")
    assert (pair.token_type, pair.expires_in) == ("Bearer", ACCESS_TOKEN_SECONDS)
    claims = claims_of(harness, pair)
    assert (claims.sub, claims.roles, claims.typ) == (user.id, ["user"], "access")
    assert claims.exp - claims.iat == 15 * 60
    sessions = await harness.ask(ListSessions(user_id=user.id))
    assert [s.id for s in sessions.items] == [claims.sid]
    assert sessions.items[0].user_agent == "pytest"


async def test_wrong_password_and_unknown_email_get_the_same_answer(harness: Harness) -> None:
    """A wrong password, an unknown email and a malformed email all get the same invalid_credentials
    answer."""
    await harness.register()
    with pytest.raises(InvalidCredentials) as wrong:
        await harness.login(password="not the password at all")
    with pytest.raises(InvalidCredentials) as unknown:
        await harness.login("nobody@example.com")
    with pytest.raises(InvalidCredentials) as malformed:
        await harness.login("not an email")
    assert wrong.value.message == unknown.value.message == malformed.value.message
    assert wrong.value.code == "invalid_credentials"


async def test_five_failures_lock_the_email_out_and_each_lockout_lasts_longer(
    harness: Harness,
) -> None:
    """Five failures lock an email out even for the right password, the next lockout lasts twice as
    long, and a successful login afterwards clears the failures."""
    await harness.register()
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await harness.login(password="wrong password here", ip=None)
    with pytest.raises(TooManyAttempts) as first:
        await harness.login(ip=None)  # even the right password waits
    assert first.value.code == "too_many_attempts"
    assert first.value.category == "rate_limited"
    assert first.value.details["retry_after"] == 300

    harness.clock.advance(100)
    with pytest.raises(TooManyAttempts) as later:
        await harness.login(ip=None)
    assert later.value.details["retry_after"] == 200

    # the lockout ends; five fresh failures lock it again, for twice as long
    harness.clock.advance(201)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await harness.login(password="wrong password here", ip=None)
    with pytest.raises(TooManyAttempts) as second:
        await harness.login(ip=None)
    assert second.value.details["retry_after"] == 600

    # once over, the owner signs in, and that clears their failures
    harness.clock.advance(601)
    await harness.login(ip=None)
    assert await harness.pool.fetchval("SELECT count(*) FROM login_failures") == 0


async def test_failures_older_than_the_window_do_not_count(harness: Harness) -> None:
    """Failures from before the 15-minute window do not add up to a lockout with newer ones."""
    await harness.register()
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await harness.login(password="wrong password here", ip=None)
    harness.clock.advance(15 * 60 + 1)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await harness.login(password="wrong password here", ip=None)
    await harness.login(ip=None)


async def test_twenty_failures_from_one_address_lock_the_address_out(harness: Harness) -> None:
    """Twenty failures from one address lock that address out for 300 seconds, but not another
    address."""
    await harness.register()
    for n in range(20):
        with pytest.raises(InvalidCredentials):
            await harness.login(f"guess{n}@example.com", "wrong password here", ip="203.0.113.9")
    with pytest.raises(TooManyAttempts) as locked:
        await harness.login(ip="203.0.113.9")
    assert locked.value.details["retry_after"] == 300
    # another address is not locked out
    await harness.login(ip="203.0.113.10")


# ── refresh, logout, sessions ──────────────────────────────────────────────────────────


async def test_refresh_rotates_and_a_reused_token_revokes_the_whole_family(
    harness: Harness,
) -> None:
    """Refreshing rotates the token within the same session, and replaying an old token is refused
    and revokes the session, current token included."""
    user = await harness.register()
    first = await harness.login()
    harness.clock.advance(60)
    second: TokenPair = await harness.ask(Refresh(refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token
    assert claims_of(harness, second).sid == claims_of(harness, first).sid
    third: TokenPair = await harness.ask(Refresh(refresh_token=second.refresh_token))

    # the first token comes back: copied. The family dies, the current token with it.
    with pytest.raises(TokenReused) as reused:
        await harness.ask(Refresh(refresh_token=first.refresh_token))
    assert reused.value.code == "token_reused"
    assert reused.value.category == "unauthenticated"
    with pytest.raises(InvalidToken):
        await harness.ask(Refresh(refresh_token=third.refresh_token))
    assert (await harness.ask(ListSessions(user_id=user.id))).items == []
    reason = await harness.pool.fetchval("SELECT revoked_reason FROM auth_sessions")
    assert reason == "reuse"


async def test_a_refresh_token_expires_after_thirty_days(harness: Harness) -> None:
    """A refresh token is refused after 30 days, as is one never issued."""
    await harness.register()
    pair = await harness.login()
    harness.clock.advance(30 * 24 * 3600 + 1)
    with pytest.raises(InvalidToken):
        await harness.ask(Refresh(refresh_token=pair.refresh_token))
    with pytest.raises(InvalidToken):
        await harness.ask(Refresh(refresh_token="never issued"))


async def test_logout_ends_the_session(harness: Harness) -> None:
    """Logging out ends only that session, can be repeated, and is refused for an unknown token."""
    user = await harness.register()
    pair = await harness.login()
    other = await harness.login()
    assert await harness.ask(Logout(refresh_token=pair.refresh_token)) is None
    with pytest.raises(InvalidToken):
        await harness.ask(Refresh(refresh_token=pair.refresh_token))
    # logging out twice is still fine; an unknown token is not
    await harness.ask(Logout(refresh_token=pair.refresh_token))
    with pytest.raises(InvalidToken):
        await harness.ask(Logout(refresh_token="never issued"))
    # the other session lives on
    sessions = await harness.ask(ListSessions(user_id=user.id))
    assert [s.id for s in sessions.items] == [claims_of(harness, other).sid]
    await harness.ask(Refresh(refresh_token=other.refresh_token))


async def test_sessions_are_listed_and_revoked_by_their_owner_only(harness: Harness) -> None:
    """A user's sessions are listed most recently used first, and only their owner can revoke one,
    once, which ends its refresh token."""
    alice = await harness.register()
    bob = await harness.register("bob@example.com", "Bob")
    phone = await harness.login(user_agent="phone")
    harness.clock.advance(10)
    laptop = await harness.login(user_agent="laptop")
    bobs = await harness.login("bob@example.com")

    listed = (await harness.ask(ListSessions(user_id=alice.id))).items
    assert [s.user_agent for s in listed] == ["laptop", "phone"]  # most recently used first
    assert all(s.created_at.endswith("Z") and s.last_used_at.endswith("Z") for s in listed)

    phone_sid = claims_of(harness, phone).sid
    with pytest.raises(SessionNotFound):  # not Bob's to revoke
        await harness.ask(RevokeSession(user_id=bob.id, session_id=phone_sid))
    await harness.ask(RevokeSession(user_id=alice.id, session_id=phone_sid))
    with pytest.raises(SessionNotFound):
        await harness.ask(RevokeSession(user_id=alice.id, session_id=phone_sid))
    with pytest.raises(InvalidToken):
        await harness.ask(Refresh(refresh_token=phone.refresh_token))
    listed = (await harness.ask(ListSessions(user_id=alice.id))).items
    assert [s.id for s in listed] == [claims_of(harness, laptop).sid]
    await harness.ask(Refresh(refresh_token=bobs.refresh_token))


# ── email verification, password reset ───────────────────────────────────────────────


async def test_verify_email_works_once(harness: Harness) -> None:
    """A verification token marks the email verified and emits EmailVerified once, after which it
    and made-up tokens are refused."""
    user = await harness.register()
    mail = await harness.mail(EmailVerificationRequested)
    assert await harness.ask(VerifyEmail(token=mail.token)) is None
    assert (await harness.ask(GetUser(user_id=user.id))).email_verified
    verified = await harness.event(EmailVerified)
    assert verified == EmailVerified(user_id=user.id, email="alice@example.com")
    with pytest.raises(InvalidToken):
        await harness.ask(VerifyEmail(token=mail.token))
    with pytest.raises(InvalidToken):
        await harness.ask(VerifyEmail(token="made up"))


async def test_a_verification_link_expires(harness: Harness) -> None:
    """A verification token is refused after 48 hours and leaves the email unverified."""
    user = await harness.register()
    mail = await harness.mail(EmailVerificationRequested)
    harness.clock.advance(48 * 3600 + 1)
    with pytest.raises(InvalidToken):
        await harness.ask(VerifyEmail(token=mail.token))
    assert not (await harness.ask(GetUser(user_id=user.id))).email_verified


async def test_forgot_password_for_an_unknown_email_is_silent(harness: Harness) -> None:
    """A reset request for an unknown or malformed email answers the same but sends no mail and
    stores no token."""
    await harness.register()
    assert await harness.ask(ForgotPassword(email="nobody@example.com")) is None
    assert await harness.ask(ForgotPassword(email="not even an email")) is None
    await asyncio.sleep(0.3)  # several relay sweeps
    assert harness.of(harness.mails, PasswordResetRequested) == []
    assert (
        await harness.pool.fetchval(
            "SELECT count(*) FROM one_time_tokens WHERE purpose = 'reset_password'"
        )
        == 0
    )


async def test_password_reset_changes_the_password_and_revokes_every_session(
    harness: Harness,
) -> None:
    """A reset refuses a weak password but keeps the link, then sets the new password, mails a
    change notice, revokes every session and cannot be used again."""
    user = await harness.register()
    first = await harness.login()
    second = await harness.login()
    await harness.ask(ForgotPassword(email=" Alice@Example.com"))
    mail = await harness.mail(PasswordResetRequested)
    assert (mail.user_id, mail.email, mail.name) == (user.id, "alice@example.com", "Alice")

    # a weak new password is refused and leaves the link usable
    with pytest.raises(WeakPassword):
        await harness.ask(ResetPassword(token=mail.token, password="password1"))
    assert await harness.ask(ResetPassword(token=mail.token, password=NEW_PASSWORD)) is None

    changed = await harness.mail(PasswordChanged)
    assert changed.user_id == user.id
    for pair in (first, second):
        with pytest.raises(InvalidToken):
            await harness.ask(Refresh(refresh_token=pair.refresh_token))
    with pytest.raises(InvalidCredentials):
        await harness.login()
    await harness.login(password=NEW_PASSWORD)
    with pytest.raises(InvalidToken):  # single use
        await harness.ask(ResetPassword(token=mail.token, password="another fine passphrase"))


async def test_a_reset_link_expires_within_the_hour(harness: Harness) -> None:
    """A reset token is refused once an hour has passed."""
    await harness.register()
    await harness.ask(ForgotPassword(email="alice@example.com"))
    mail = await harness.mail(PasswordResetRequested)
    harness.clock.advance(3601)
    with pytest.raises(InvalidToken):
        await harness.ask(ResetPassword(token=mail.token, password=NEW_PASSWORD))


# ── profile, roles ─────────────────────────────────────────────────────────────────────


async def test_get_and_update_the_profile(harness: Harness) -> None:
    """Updating the profile normalises name and phone, keeps unchanged fields, clears a blank phone,
    refuses bad values naming the field, and unknown users are not found."""
    user = await harness.register()
    updated = await harness.ask(
        UpdateUser(user_id=user.id, name=" Alice  Smith ", phone="+49 170 1234567")
    )
    assert (updated.name, updated.phone, updated.phone_verified) == (
        "Alice Smith",
        "+491701234567",
        False,
    )
    assert (await harness.ask(UpdateUser(user_id=user.id, name="Al"))).phone == "+491701234567"
    assert (await harness.ask(UpdateUser(user_id=user.id, phone=""))).phone is None
    with pytest.raises(InvalidField) as bad_phone:
        await harness.ask(UpdateUser(user_id=user.id, phone="call me"))
    assert bad_phone.value.details == {"field": "$.phone"}
    with pytest.raises(InvalidField):
        await harness.ask(UpdateUser(user_id=user.id, name=" "))
    with pytest.raises(UserNotFound):
        await harness.ask(GetUser(user_id="nobody"))
    with pytest.raises(UserNotFound):
        await harness.ask(UpdateUser(user_id="nobody", name="X"))


async def test_make_admin_creates_or_promotes(harness: Harness) -> None:
    """MakeAdmin creates an admin account that can log in, or promotes an existing user
    idempotently, and needs a password to create one."""
    created = await harness.ask(MakeAdmin(email="Root@Example.com", password=PASSWORD))
    assert (created.email, created.name, created.roles) == (
        "root@example.com",
        "root",
        ["user", "admin"],
    )
    pair = await harness.login("root@example.com")
    assert claims_of(harness, pair).has_role("admin")

    alice = await harness.register()
    promoted = await harness.ask(MakeAdmin(email="alice@example.com"))
    assert (promoted.id, promoted.roles) == (alice.id, ["user", "admin"])
    again = await harness.ask(MakeAdmin(email="alice@example.com", password="ignored"))
    assert again.roles == ["user", "admin"]

    with pytest.raises(InvalidField) as missing:
        await harness.ask(MakeAdmin(email="new@example.com"))
    assert missing.value.details == {"field": "$.password"}


async def test_grant_role_adds_a_role_once(harness: Harness) -> None:
    """Granting the same role twice adds it once, and an unknown user raises UserNotFound."""
    user = await harness.register()
    assert (await harness.ask(GrantRole(user_id=user.id, role="driver"))).roles == [
        "user",
        "driver",
    ]
    assert (await harness.ask(GrantRole(user_id=user.id, role="driver"))).roles == [
        "user",
        "driver",
    ]
    with pytest.raises(UserNotFound):
        await harness.ask(GrantRole(user_id="nobody", role="driver"))


# ── Telegram ───────────────────────────────────────────────────────────────────────────


async def test_a_telegram_link_binds_a_chat_once(harness: Harness) -> None:
    """A Telegram deep link with a short token lasts ten minutes and binds one chat once, after
    which reset mails also carry the chat id."""
    user = await harness.register()
    link = await harness.ask(CreateTelegramLink(user_id=user.id))
    parts = urlsplit(link.url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "t.me", "/splitgo_bot")
    token = parse_qs(parts.query)["start"][0]
    assert len(token) <= 64  # Telegram's limit for a start parameter
    assert link.expires_at == "2030-03-17T17:56:40Z"  # ten minutes

    linked = await harness.ask(ConsumeTelegramLink(token=token, chat_id=4242))
    assert (linked.id, linked.telegram_linked) == (user.id, True)
    assert await harness.event(TelegramLinked) == TelegramLinked(user_id=user.id, chat_id=4242)
    with pytest.raises(InvalidToken):
        await harness.ask(ConsumeTelegramLink(token=token, chat_id=4243))

    # the reset mail can go out on Telegram too
    await harness.ask(ForgotPassword(email="alice@example.com"))
    assert (await harness.mail(PasswordResetRequested)).telegram_chat_id == 4242


async def test_a_telegram_link_expires(harness: Harness) -> None:
    """A Telegram link is refused after ten minutes, and an unknown user gets no link."""
    user = await harness.register()
    link = await harness.ask(CreateTelegramLink(user_id=user.id))
    harness.clock.advance(601)
    with pytest.raises(InvalidToken):
        await harness.ask(ConsumeTelegramLink(token=link.url.rsplit("=", 1)[1], chat_id=1))
    with pytest.raises(UserNotFound):
        await harness.ask(CreateTelegramLink(user_id="nobody"))


async def test_without_a_bot_there_is_no_telegram_link(pool: asyncpg.Pool) -> None:
    """Without a bot username, asking for a Telegram link raises TelegramNotConfigured."""
    auth = Auth(pool, KEYS, bot_username="")
    with pytest.raises(TelegramNotConfigured):
        await auth.create_telegram_link(CreateTelegramLink(user_id="anyone"))


# ── social login ───────────────────────────────────────────────────────────────────────


async def start(harness: Harness, name: str = "google") -> str:
    """Start a sign-in; the state the browser carries back."""
    redirect: OAuthRedirect = await harness.ask(StartOAuth(provider=name, redirect_uri=REDIRECT))
    state = parse_qs(urlsplit(redirect.url).query)["state"][0]
    assert state == harness.oauth.issued[-1].state
    return state


def finish(name: str, code: str, state: str) -> FinishOAuth:
    return FinishOAuth(
        provider=name, code=code, state=state, redirect_uri=REDIRECT, user_agent="browser"
    )


def identity(
    subject: str, email: str | None, *, verified: bool = True, name: str | None = "Carol"
) -> ProviderIdentity:
    return ProviderIdentity(
        provider="google", subject=subject, email=email, email_verified=verified, name=name
    )


async def test_oauth_creates_an_account_then_signs_into_it_again(harness: Harness) -> None:
    """A first OAuth sign-in sends the PKCE verifier and nonce and creates a verified, password-less
    account, its state is single-use, and the same identity signs in again."""
    harness.oauth.identities["code-1"] = identity("g-1", "Carol@Example.com")
    state = await start(harness)
    pair: TokenPair = await harness.ask(finish("google", "code-1", state))
    sent = harness.oauth.completed[-1]
    assert sent["code_verifier"] == harness.oauth.issued[-1].code_verifier
    assert sent["nonce"] == harness.oauth.issued[-1].nonce
    carol = await harness.ask(GetUser(user_id=claims_of(harness, pair).sub))
    assert (carol.email, carol.name, carol.email_verified) == ("carol@example.com", "Carol", True)
    registered = await harness.event(UserRegistered)
    assert registered.user_id == carol.id
    # a verified address needs no verification mail; no password to log in with either
    with pytest.raises(InvalidCredentials):
        await harness.login("carol@example.com")

    # the same state does not work twice
    with pytest.raises(OAuthFailed, match="does not match"):
        await harness.ask(finish("google", "code-1", state))
    # a new sign-in with the same identity lands in the same account
    again: TokenPair = await harness.ask(finish("google", "code-1", await start(harness)))
    assert claims_of(harness, again).sub == carol.id
    assert await harness.pool.fetchval("SELECT count(*) FROM users") == 1


async def test_oauth_refuses_a_bad_state_and_unknown_providers(harness: Harness) -> None:
    """OAuth refuses unknown providers, made-up, cross-provider or expired states, a refused code
    and an off-site redirect URI, creating no user."""
    harness.oauth.identities["code-1"] = identity("g-1", "carol@example.com")
    with pytest.raises(UnknownProvider):
        await harness.ask(StartOAuth(provider="myspace", redirect_uri=REDIRECT))
    with pytest.raises(UnknownProvider):
        await harness.ask(finish("myspace", "code-1", "whatever"))
    with pytest.raises(OAuthFailed, match="does not match"):
        await harness.ask(finish("google", "code-1", "made-up-state"))
    # a state issued for one provider is no good for another
    state = await start(harness, "github")
    with pytest.raises(OAuthFailed, match="does not match"):
        await harness.ask(finish("google", "code-1", state))
    # nor after ten minutes
    state = await start(harness)
    harness.clock.advance(601)
    with pytest.raises(OAuthFailed, match="does not match"):
        await harness.ask(finish("google", "code-1", state))
    # the provider refusing the code is an OAuthFailed too
    with pytest.raises(OAuthFailed, match="refused"):
        await harness.ask(finish("google", "no-such-code", await start(harness)))
    # and a redirect URI off our site never starts
    with pytest.raises(InvalidField) as off_site:
        await harness.ask(
            StartOAuth(provider="google", redirect_uri="https://evil.example/callback")
        )
    assert off_site.value.details == {"field": "$.redirect_uri"}
    assert harness.oauth.completed == [
        {"code": "no-such-code", "code_verifier": harness.oauth.issued[-1].code_verifier,
         "nonce": harness.oauth.issued[-1].nonce, "uri": REDIRECT}
    ]  # fmt: skip
    assert await harness.pool.fetchval("SELECT count(*) FROM users") == 0


async def test_oauth_links_a_verified_email_to_the_existing_account(harness: Harness) -> None:
    """An OAuth identity with a verified email matching a verified account is linked to it, and the
    password still works."""
    alice = await harness.register()
    mail = await harness.mail(EmailVerificationRequested)
    await harness.ask(VerifyEmail(token=mail.token))
    harness.oauth.identities["code-a"] = identity("g-alice", "alice@example.com", name="A")
    pair: TokenPair = await harness.ask(finish("google", "code-a", await start(harness)))
    assert claims_of(harness, pair).sub == alice.id
    # the password still works: the account was hers all along
    await harness.login()
    linked = await harness.pool.fetchval(
        "SELECT user_id FROM oauth_identities WHERE provider = 'google' AND subject = 'g-alice'"
    )
    assert linked == alice.id


async def test_oauth_never_links_an_unverified_provider_email(harness: Harness) -> None:
    """An OAuth identity whose unverified email matches an existing account is refused and links or
    changes nothing."""
    alice = await harness.register()
    harness.oauth.identities["code-x"] = identity("g-mallory", "alice@example.com", verified=False)
    with pytest.raises(OAuthFailed, match="not verified"):
        await harness.ask(finish("google", "code-x", await start(harness)))
    assert await harness.pool.fetchval("SELECT count(*) FROM oauth_identities") == 0
    assert await harness.pool.fetchval("SELECT count(*) FROM users") == 1
    assert (await harness.ask(GetUser(user_id=alice.id))).email == "alice@example.com"
    await harness.login()


async def test_oauth_claiming_an_unverified_local_account_locks_the_squatter_out(
    harness: Harness,
) -> None:
    """Someone registered the address without ever proving it; the provider proves the real
    owner has it. The account goes to the owner, the squatter's password and sessions end."""
    squatted = await harness.register()
    squatter = await harness.login()
    harness.oauth.identities["code-a"] = identity("g-alice", "alice@example.com")
    pair: TokenPair = await harness.ask(finish("google", "code-a", await start(harness)))
    assert claims_of(harness, pair).sub == squatted.id
    assert (await harness.ask(GetUser(user_id=squatted.id))).email_verified
    with pytest.raises(InvalidToken):
        await harness.ask(Refresh(refresh_token=squatter.refresh_token))
    with pytest.raises(InvalidCredentials):
        await harness.login()


async def test_oauth_without_an_email_creates_nothing(harness: Harness) -> None:
    """An OAuth identity without an email is refused and creates no user."""
    harness.oauth.identities["code-n"] = identity("g-anon", None)
    with pytest.raises(OAuthFailed, match="email"):
        await harness.ask(finish("google", "code-n", await start(harness)))
    assert await harness.pool.fetchval("SELECT count(*) FROM users") == 0


async def test_oauth_with_an_unverified_email_creates_an_account_to_verify(
    harness: Harness,
) -> None:
    """An OAuth identity with a new unverified email creates an unverified account and sends it a
    verification mail."""
    harness.oauth.identities["code-u"] = identity("g-dave", "dave@example.com", verified=False)
    pair: TokenPair = await harness.ask(finish("google", "code-u", await start(harness)))
    dave = await harness.ask(GetUser(user_id=claims_of(harness, pair).sub))
    assert not dave.email_verified
    mail = await harness.mail(EmailVerificationRequested)
    assert mail.user_id == dave.id
    await harness.event(UserRegistered)
    assert harness.of(harness.events, EmailVerified) == []


async def test_an_oauth_account_whose_provider_verified_the_email_is_verified_at_once(
    harness: Harness,
) -> None:
    """An account made by an OAuth sign-in whose provider vouched for the address publishes
    EmailVerified (so an invitation to the address joins), besides UserRegistered."""
    harness.oauth.identities["code-v"] = identity("g-erin", "Erin@Example.com")
    pair: TokenPair = await harness.ask(finish("google", "code-v", await start(harness)))
    erin = claims_of(harness, pair).sub
    verified = await harness.event(EmailVerified)
    assert verified == EmailVerified(user_id=erin, email="erin@example.com")
    assert (await harness.event(UserRegistered)).user_id == erin


# ── limits on mail, housekeeping ───────────────────────────────────────────────────────


async def test_reset_mails_are_capped_per_hour(harness: Harness) -> None:
    """At most five reset mails go out per hour, and another goes out once the hour has passed."""
    await harness.register()
    for _ in range(6):
        assert await harness.ask(ForgotPassword(email="alice@example.com")) is None
    await harness.mail(PasswordResetRequested, 5)
    await asyncio.sleep(0.3)
    assert len(harness.of(harness.mails, PasswordResetRequested)) == 5
    harness.clock.advance(3601)
    await harness.ask(ForgotPassword(email="alice@example.com"))
    await harness.mail(PasswordResetRequested, 6)


async def test_prune_keeps_what_reuse_detection_needs_and_drops_the_rest(
    harness: Harness,
) -> None:
    """Pruning drops old login failures but keeps rotated refresh tokens so reuse is still caught,
    and later drops expired tokens and sessions but never users."""
    await harness.register()
    with pytest.raises(InvalidCredentials):
        await harness.login(password="wrong password here")
    pair = await harness.login()
    await harness.ask(Refresh(refresh_token=pair.refresh_token))
    counts = (
        "SELECT (SELECT count(*) FROM login_failures), (SELECT count(*) FROM one_time_tokens),"
        " (SELECT count(*) FROM refresh_tokens), (SELECT count(*) FROM auth_sessions),"
        " (SELECT count(*) FROM users)"
    )
    harness.clock.advance(2 * 3600)
    await store.prune(harness.pool, harness.clock.now, failures_older_than=3600, keep=86400)
    # the failure is history; the rotated refresh token stays, so reuse is still caught
    assert tuple(await harness.pool.fetchrow(counts)) == (0, 1, 2, 1, 1)
    with pytest.raises(TokenReused):
        await harness.ask(Refresh(refresh_token=pair.refresh_token))

    harness.clock.advance(32 * 24 * 3600)
    removed = await store.prune(
        harness.pool, harness.clock.now, failures_older_than=3600, keep=86400
    )
    assert removed == 4
    assert tuple(await harness.pool.fetchrow(counts)) == (0, 0, 0, 0, 1)


# ── redelivery ─────────────────────────────────────────────────────────────────────────


class CrashAfterCommit(Auth):
    """Crashes once right after its transaction committed, as a node dying before its ack
    would: the runtime delivers the same message again."""

    crashed: ClassVar[set[str]] = set()

    async def _once(self) -> None:
        assert self.envelope is not None
        if self.envelope.attempt == 0:
            self.crashed.add(type(self.envelope.body).__name__)
            raise RuntimeError("crashed after the commit")

    @handles(Register)
    async def register(self, message: Register) -> UserView:
        user = await super().register(message)
        await self._once()
        return user

    @handles(Refresh)
    async def refresh(self, message: Refresh) -> TokenPair:
        pair = await super().refresh(message)
        await self._once()
        return pair


async def test_a_redelivered_command_has_no_second_effect(pool: asyncpg.Pool) -> None:
    """A command redelivered after a crash past its commit has no second effect: one account, mail
    and event, and a repeated refresh does not revoke the session."""
    async with running(pool, CrashAfterCommit) as harness:
        # the sign-up answers with the account it made, once, with one mail
        user = await harness.register()
        assert "Register" in CrashAfterCommit.crashed
        assert await pool.fetchval("SELECT id FROM users") == user.id
        await harness.mail(EmailVerificationRequested)
        await harness.event(UserRegistered)
        await asyncio.sleep(0.3)
        assert len(harness.mails) == 1
        assert len(harness.events) == 1

        # a refresh handled twice is not mistaken for a stolen token: the session lives
        pair = await harness.login()
        with pytest.raises(InvalidToken):
            await harness.ask(Refresh(refresh_token=pair.refresh_token))
        assert "Refresh" in CrashAfterCommit.crashed
        sessions = await harness.ask(ListSessions(user_id=user.id))
        assert [s.id for s in sessions.items] == [claims_of(harness, pair).sid]
        assert await pool.fetchval("SELECT revoked_at FROM auth_sessions") is None
