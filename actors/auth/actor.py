"""The auth actor: accounts, passwords, sessions and tokens, social login, roles.

One handler per command of `messages.py`, each handing the message to the feature part that
owns it: `accounts`, `sessions`, `verification`, `reset`, `social` (OAuth users) and
`telegram`. Every fact is in its tables (store), so any number of shards can serve it, on
any node; a shard keeps only the users whose id routes to it hot in memory (`profiles`,
written through by their owner, forgotten on a change made elsewhere). Single-use tokens
are spent by one conditional UPDATE and refresh tokens are rotated under row locks, so two
shards racing on the same token cannot both win.

What other actors must hear goes through the reliable hand-off (the shard's transaction),
committed with the change that caused it:

- to the notifier (`notifications`): EmailVerificationRequested (sign-up), PasswordReset-
  Requested (forgot password), PasswordChanged (reset);
- published (`tx.publish`) to whoever the node subscribed: UserRegistered, EmailVerified,
  TelegramLinked, and SessionsRevoked (to the `broadcast` actor: every node's edge hears
  it, and refuses those sessions' access tokens).

Slow or blocking work (argon2, zxcvbn) runs in worker threads, and never while a database
transaction is open.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import asyncpg
import structlog

from actors.auth import oauth as oauth_module
from actors.auth import store
from actors.auth.accounts import Accounts
from actors.auth.context import AuthContext
from actors.auth.deletion import Deletion
from actors.auth.limits import LoginLimits
from actors.auth.messages import (
    AccountDeletion,
    AuthorizeOidcRequest,
    ChangePassword,
    CompleteMfaLogin,
    ConfirmPhone,
    ConfirmTotp,
    ConnectedApps,
    ConsumeTelegramLink,
    Contacts,
    CreateTelegramLink,
    DeleteAccount,
    DeleteOidcClient,
    DeletePasskey,
    DescribeMyAccount,
    DisableTotp,
    ExchangeOidcCode,
    FindUserByChat,
    FindUserByEmail,
    FinishOAuth,
    FinishPasskeyRegistration,
    FinishPasskeySignIn,
    ForgetCachedSessions,
    ForgetCachedUser,
    ForgotPassword,
    GetContacts,
    GetMfaStatus,
    GetNames,
    GetOidcUserInfo,
    GetUser,
    GrantRole,
    ListConnectedApps,
    ListOidcClients,
    ListPasskeys,
    ListRevokedSessions,
    ListSessions,
    Login,
    Logout,
    MakeAdmin,
    MfaChallenge,
    MfaStatus,
    MyAccount,
    Names,
    NewOidcClient,
    OAuthRedirect,
    OidcAuthorization,
    OidcClientList,
    OidcTokens,
    OidcUserInfo,
    PasskeyList,
    PasskeyOptions,
    PasskeyView,
    RecoveryCodes,
    Refresh,
    RefreshOidcTokens,
    RegenerateRecoveryCodes,
    Register,
    RegisterOidcClient,
    RenamePasskey,
    ResetPassword,
    RevokeConnectedApp,
    RevokedSessions,
    RevokeSession,
    SessionList,
    StartOAuth,
    StartPasskeyRegistration,
    StartPasskeySignIn,
    StartTotpSetup,
    TelegramLink,
    TokenPair,
    TotpSetup,
    UpdateUser,
    UserView,
    VerifyEmail,
)
from actors.auth.mfa import Mfa
from actors.auth.oauth import ProviderConfig
from actors.auth.passkeys import Passkeys
from actors.auth.passwords import Passwords
from actors.auth.provider import OidcProvider
from actors.auth.reset import Reset
from actors.auth.sessions import Sessions
from actors.auth.social import OAuthFlow, Social
from actors.auth.telegram import Telegram
from actors.auth.tokens import SigningKeys
from actors.auth.verification import Verification
from actors.runtime import Actor, Clock, handles, wall_clock
from actors.splits.messages import PlaceholderAdded

log = structlog.get_logger("actors.auth")


class Auth(Actor):
    """Accounts and sign-in: one handler per command; all state lives in PostgreSQL (the
    users a shard owns are also kept in its memory)."""

    idempotency_keys = store.KEYS

    def __init__(
        self,
        pool: asyncpg.Pool,
        keys: SigningKeys,
        *,
        providers: Mapping[str, ProviderConfig] | None = None,
        http: aiohttp.ClientSession | None = None,
        bot_username: str = "",
        public_url: str = "",
        notifier: str | None = "notifications",
        passwords: Passwords | None = None,
        limits: LoginLimits | None = None,
        oauth: OAuthFlow | None = None,
        clock: Clock = wall_clock,
        prune_interval: float = 600.0,
        data_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        """`notifier` is the actor that mails (None: nobody). `oauth` defaults to the
        actors.auth.oauth module. Share one `passwords` between shards to cap concurrent
        hashing node-wide. `data_keys` seal TOTP secrets (SPLITGO_DATA_KEYS; None: keys
        derived from the signing seeds)."""
        context = AuthContext(
            pool=pool,
            clock=clock,
            shard_actor=self,
            keys=keys,
            passwords=passwords or Passwords(),
            limits=limits or LoginLimits(),
            notifier=notifier,
        )
        self.verification = Verification(context)
        self.accounts = Accounts(context, verification=self.verification)
        self.sessions = Sessions(context)
        self.reset = Reset(context)
        self.social = Social(
            context,
            accounts=self.accounts,
            sessions=self.sessions,
            flow=oauth if oauth is not None else oauth_module,
            providers=providers or {},
            http=http,
            public_url=public_url,
        )
        self.telegram = Telegram(context, bot_username=bot_username)
        self.deletion = Deletion(context, sessions=self.sessions)  # issue 19: delete, export
        self.provider = OidcProvider(context, public_url=public_url)
        self.passkeys = Passkeys(context, sessions=self.sessions, public_url=public_url)
        # issue 19: TOTP, recovery codes
        self.mfa = Mfa(context, sessions=self.sessions, data_keys=data_keys)
        self._context = context
        self._prune_interval = prune_interval

    # ── lifecycle ──────────────────────────────────────────────────────────────────────

    async def on_start(self) -> None:
        # one shard prunes for all: they share the tables
        if self.shard == 0 and self._prune_interval > 0:
            self.every(self._prune_interval, self.prune, "prune")
        self.prune_keys(self._context.pool, self._context.clock)

    async def on_stop(self) -> None:
        await self.social.close()

    async def prune(self) -> None:
        """Drop expired tokens, old login failures and finished lockouts."""
        context = self._context
        removed = await store.prune(
            context.pool,
            context.clock(),
            failures_older_than=max(context.limits.window, 3600.0),
            keep=context.limits.forget_after,
        )
        removed += await self.provider.prune()  # OpenID Connect codes and refresh tokens
        if removed:
            log.info("auth_pruned", rows=removed)

    # ── accounts ───────────────────────────────────────────────────────────────────────

    @handles(Register)
    async def register(self, message: Register) -> UserView:
        return await self.accounts.register(message)

    @handles(GetNames)
    async def get_names(self, message: GetNames) -> Names:
        return await self.accounts.names(message)

    @handles(PlaceholderAdded)
    async def placeholder_added(self, message: PlaceholderAdded) -> None:
        await self.accounts.placeholder_added(message)

    @handles(GetUser)
    async def get_user(self, message: GetUser) -> UserView:
        return await self.accounts.get(message)

    @handles(GetContacts)
    async def get_contacts(self, message: GetContacts) -> Contacts:
        return await self.accounts.contacts(message)

    @handles(FindUserByEmail)
    async def find_user_by_email(self, message: FindUserByEmail) -> UserView:
        return await self.accounts.find_by_email(message)

    @handles(UpdateUser)
    async def update_user(self, message: UpdateUser) -> UserView:
        return await self.accounts.update(message)

    @handles(MakeAdmin)
    async def make_admin(self, message: MakeAdmin) -> UserView:
        return await self.accounts.make_admin(message)

    @handles(GrantRole)
    async def grant_role(self, message: GrantRole) -> UserView:
        return await self.accounts.grant_role(message)

    # ── sign-in and sessions ───────────────────────────────────────────────────────────

    @handles(Login)
    async def login(self, message: Login) -> TokenPair | MfaChallenge:
        return await self.sessions.login(message)

    @handles(Refresh)
    async def refresh(self, message: Refresh) -> TokenPair:
        return await self.sessions.refresh(message)

    @handles(Logout)
    async def logout(self, message: Logout) -> None:
        await self.sessions.logout(message)

    @handles(ListSessions)
    async def list_sessions(self, message: ListSessions) -> SessionList:
        return await self.sessions.live(message)

    @handles(RevokeSession)
    async def revoke_session(self, message: RevokeSession) -> None:
        await self.sessions.revoke(message)

    @handles(ListRevokedSessions)
    async def list_revoked_sessions(self, message: ListRevokedSessions) -> RevokedSessions:
        return await self.sessions.revoked_lately(message)

    # ── email verification and password reset ─────────────────────────────────────────

    @handles(VerifyEmail)
    async def verify_email(self, message: VerifyEmail) -> None:
        await self.verification.verify(message)

    @handles(ForgotPassword)
    async def forgot_password(self, message: ForgotPassword) -> None:
        await self.reset.forgot(message)

    @handles(ResetPassword)
    async def reset_password(self, message: ResetPassword) -> None:
        await self.reset.reset(message)

    @handles(ChangePassword)
    async def change_password(self, message: ChangePassword) -> None:
        await self.reset.change(message)

    # ── Telegram ───────────────────────────────────────────────────────────────────────

    @handles(CreateTelegramLink)
    async def create_telegram_link(self, message: CreateTelegramLink) -> TelegramLink:
        return await self.telegram.create_link(message)

    @handles(ConsumeTelegramLink)
    async def consume_telegram_link(self, message: ConsumeTelegramLink) -> UserView:
        return await self.telegram.consume_link(message)

    @handles(FindUserByChat)
    async def find_user_by_chat(self, message: FindUserByChat) -> UserView:
        return await self.telegram.user_of_chat(message)

    @handles(ConfirmPhone)
    async def confirm_phone(self, message: ConfirmPhone) -> UserView:
        return await self.telegram.confirm_phone(message)

    # ── social login ───────────────────────────────────────────────────────────────────

    @handles(StartOAuth)
    async def start_oauth(self, message: StartOAuth) -> OAuthRedirect:
        return await self.social.start(message)

    @handles(FinishOAuth)
    async def finish_oauth(self, message: FinishOAuth) -> TokenPair | MfaChallenge:
        return await self.social.finish(message)

    # ── OpenID Connect provider (issue 19) ──

    @handles(RegisterOidcClient)
    async def register_oidc_client(self, message: RegisterOidcClient) -> NewOidcClient:
        return await self.provider.register_client(message)

    @handles(ListOidcClients)
    async def list_oidc_clients(self, message: ListOidcClients) -> OidcClientList:
        return await self.provider.list_clients(message)

    @handles(DeleteOidcClient)
    async def delete_oidc_client(self, message: DeleteOidcClient) -> None:
        await self.provider.delete_client(message)

    @handles(AuthorizeOidcRequest)
    async def authorize_oidc_request(self, message: AuthorizeOidcRequest) -> OidcAuthorization:
        return await self.provider.authorize(message)

    @handles(ExchangeOidcCode)
    async def exchange_oidc_code(self, message: ExchangeOidcCode) -> OidcTokens:
        return await self.provider.tokens.exchange(message)

    @handles(RefreshOidcTokens)
    async def refresh_oidc_tokens(self, message: RefreshOidcTokens) -> OidcTokens:
        return await self.provider.tokens.refresh(message)

    @handles(GetOidcUserInfo)
    async def get_oidc_user_info(self, message: GetOidcUserInfo) -> OidcUserInfo:
        return await self.provider.tokens.userinfo(message)

    @handles(ListConnectedApps)
    async def list_connected_apps(self, message: ListConnectedApps) -> ConnectedApps:
        return await self.provider.connected_apps(message)

    @handles(RevokeConnectedApp)
    async def revoke_connected_app(self, message: RevokeConnectedApp) -> None:
        await self.provider.revoke_app(message)

    # ── multi-factor: TOTP and recovery codes (issue 19) ──

    @handles(GetMfaStatus)
    async def get_mfa_status(self, message: GetMfaStatus) -> MfaStatus:
        return await self.mfa.status(message)

    @handles(StartTotpSetup)
    async def start_totp_setup(self, message: StartTotpSetup) -> TotpSetup:
        return await self.mfa.start_setup(message)

    @handles(ConfirmTotp)
    async def confirm_totp(self, message: ConfirmTotp) -> RecoveryCodes:
        return await self.mfa.confirm(message)

    @handles(DisableTotp)
    async def disable_totp(self, message: DisableTotp) -> None:
        await self.mfa.disable(message)

    @handles(RegenerateRecoveryCodes)
    async def regenerate_recovery_codes(self, message: RegenerateRecoveryCodes) -> RecoveryCodes:
        return await self.mfa.regenerate(message)

    @handles(CompleteMfaLogin)
    async def complete_mfa_login(self, message: CompleteMfaLogin) -> TokenPair:
        return await self.mfa.complete_login(message)

    # ── passkeys (issue 19) ──

    @handles(StartPasskeyRegistration)
    async def start_passkey_registration(self, message: StartPasskeyRegistration) -> PasskeyOptions:
        return await self.passkeys.start_registration(message)

    @handles(FinishPasskeyRegistration)
    async def finish_passkey_registration(self, message: FinishPasskeyRegistration) -> PasskeyView:
        return await self.passkeys.finish_registration(message)

    @handles(StartPasskeySignIn)
    async def start_passkey_sign_in(self, message: StartPasskeySignIn) -> PasskeyOptions:
        return await self.passkeys.start_sign_in(message)

    @handles(FinishPasskeySignIn)
    async def finish_passkey_sign_in(self, message: FinishPasskeySignIn) -> TokenPair:
        return await self.passkeys.finish_sign_in(message)

    @handles(ListPasskeys)
    async def list_passkeys(self, message: ListPasskeys) -> PasskeyList:
        return await self.passkeys.list(message)

    @handles(RenamePasskey)
    async def rename_passkey(self, message: RenamePasskey) -> PasskeyView:
        return await self.passkeys.rename(message)

    @handles(DeletePasskey)
    async def delete_passkey(self, message: DeletePasskey) -> None:
        await self.passkeys.delete(message)

    # ── account deletion and export (issue 19) ──

    @handles(DescribeMyAccount)
    async def describe_my_account(self, message: DescribeMyAccount) -> MyAccount:
        return await self.deletion.describe(message)

    @handles(DeleteAccount)
    async def delete_account(self, message: DeleteAccount) -> AccountDeletion:
        return await self.deletion.delete(message)

    # ── social login by discovery (issue 19) ──

    # ── hot profiles (issue 20) ──

    @handles(ForgetCachedUser)
    async def forget_cached_user(self, message: ForgetCachedUser) -> None:
        self._context.profiles.forget(message)

    @handles(ForgetCachedSessions)
    async def forget_cached_sessions(self, message: ForgetCachedSessions) -> None:
        self._context.profiles.sessions.forget(message)
