"""Every SQL statement of the auth actor, over its own tables (the schema's auth section).

One module per feature — `users` (users, social identities), `sessions` (sessions and
refresh tokens), `one_time` (single-use tokens), `logins` (failures and lockouts),
`passkeys` (WebAuthn credentials and their challenges), `housekeeping` (pruning) — all
re-exported here, so callers write `store.user_by_id(...)`.

Each function takes what runs the statement (an `actors.runtime.Executor`): the pool (one
statement, autocommit) or an open `Transaction` (several statements that commit together).
Times are passed in as epoch seconds, never taken from the database's clock, so the
actor's clock is the only one (and tests move it).
"""

from __future__ import annotations

from actors.auth.store.housekeeping import prune
from actors.auth.store.logins import (
    failures_for_email,
    failures_for_ip,
    forget_email_failures,
    lockouts,
    record_failure,
    set_lockout,
)
from actors.auth.store.one_time import (
    OneTimeRow,
    Purpose,
    add_one_time_token,
    consume_one_time_token,
    peek_one_time_token,
    spend_user_tokens,
    tokens_issued_since,
)
from actors.auth.store.passkeys import (
    ChallengePurpose,
    PasskeyRow,
    add_challenge,
    add_passkey,
    delete_passkey,
    handle_of,
    passkey_by_credential,
    passkeys_of,
    record_use,
    rename_passkey,
    spend_challenge,
    user_handle,
)
from actors.auth.store.sessions import (
    LIVE_SESSIONS_MAX,
    RefreshRow,
    SessionRow,
    add_refresh_token,
    live_sessions,
    open_session,
    refresh_token_for_update,
    revoke_other_sessions,
    revoke_session,
    revoke_user_session,
    revoke_user_sessions,
    revoked_since,
    rotate_refresh_token,
    session_of_refresh_token,
)
from actors.auth.store.users import (
    UserRow,
    add_placeholder,
    add_role,
    bind_telegram,
    confirm_phone,
    identity_user,
    insert_user,
    link_identity,
    mark_email_verified,
    names,
    secure_takeover,
    set_password,
    update_profile,
    user_by_chat,
    user_by_email,
    user_by_id,
)
from actors.runtime import KeyTable

# what sign-ups' idempotency keys answered (the runtime's one helper)
KEYS = KeyTable("auth_idempotency")

__all__ = [
    "KEYS",
    "LIVE_SESSIONS_MAX",
    "ChallengePurpose",
    "OneTimeRow",
    "PasskeyRow",
    "Purpose",
    "RefreshRow",
    "SessionRow",
    "UserRow",
    "add_challenge",
    "add_one_time_token",
    "add_passkey",
    "add_placeholder",
    "add_refresh_token",
    "add_role",
    "bind_telegram",
    "confirm_phone",
    "consume_one_time_token",
    "delete_passkey",
    "failures_for_email",
    "failures_for_ip",
    "forget_email_failures",
    "handle_of",
    "identity_user",
    "insert_user",
    "link_identity",
    "live_sessions",
    "lockouts",
    "mark_email_verified",
    "names",
    "open_session",
    "passkey_by_credential",
    "passkeys_of",
    "peek_one_time_token",
    "prune",
    "record_failure",
    "record_use",
    "refresh_token_for_update",
    "rename_passkey",
    "revoke_other_sessions",
    "revoke_session",
    "revoke_user_session",
    "revoke_user_sessions",
    "revoked_since",
    "rotate_refresh_token",
    "secure_takeover",
    "session_of_refresh_token",
    "set_lockout",
    "set_password",
    "spend_challenge",
    "spend_user_tokens",
    "tokens_issued_since",
    "update_profile",
    "user_by_chat",
    "user_by_email",
    "user_by_id",
    "user_handle",
]
