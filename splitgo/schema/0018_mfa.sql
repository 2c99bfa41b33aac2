-- Issue 19 (item 3): multi-factor sign-in with TOTP and recovery codes. Owned by actors/auth
-- (actors/auth/mfa.py, store in actors/auth/store/mfa.py, rules in actors/auth/mfa_rules.py).

-- How each session was signed in (RFC 8176 `amr`: pwd, otp, hwk, ...): every access token of
-- the session says it, refreshed ones too. Sessions from before this step say nothing.
ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS amr text[] NOT NULL DEFAULT '{}';

-- A user's authenticator app: the TOTP secret (base32; never logged, never in an error) once
-- a code confirmed it, or the one a setup is waiting to have confirmed (pending). `last_step`
-- is the newest 30-second time step a code was accepted for: a code of that step or an older
-- one is refused as reused. `failures` counts wrong codes in a row; five lock the account's
-- second factor until `locked_until` (each lockout in a row twice as long, `lockouts`).
CREATE TABLE mfa_totp (
    user_id            text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret             text,
    enabled_at         timestamptz,
    pending_secret     text,
    pending_expires_at timestamptz,
    last_step          bigint NOT NULL DEFAULT -1,
    failures           integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_until       timestamptz,
    lockouts           integer NOT NULL DEFAULT 0 CHECK (lockouts >= 0),
    updated_at         timestamptz NOT NULL,
    CHECK ((secret IS NULL) = (enabled_at IS NULL))
);

-- One-time recovery codes: only a digest of each (SHA-256 over the user id and the code) is
-- kept; a used one stays, marked, until the codes are made again or TOTP is turned off.
CREATE TABLE mfa_recovery_codes (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       bytea NOT NULL,
    created_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, hash)
);

-- The second step of a sign-in: after the first factor (a password, a social provider) a
-- short-lived, single-use challenge; only its SHA-256 is kept. `amr` is how the first step
-- signed in; `ip` and `user_agent` go to the session it opens.
CREATE TABLE mfa_challenges (
    hash       bytea PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amr        text[] NOT NULL DEFAULT '{}',
    ip         text,
    user_agent text,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX mfa_challenges_expires_at ON mfa_challenges (expires_at);
CREATE INDEX mfa_challenges_of_user ON mfa_challenges (user_id) WHERE used_at IS NULL;
