-- Issue 19 (item 3): passkeys (WebAuthn), to sign in without a password. Owned by
-- actors/auth (actors/auth/passkeys.py, store in actors/auth/store/passkeys.py).

-- The WebAuthn user handle of each user who made a passkey: random bytes, stable for the
-- user (an authenticator keeps one credential per handle and site), never the user id.
CREATE TABLE passkey_users (
    user_id    text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle     bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

-- A user's passkeys: the credential the authenticator made, its public key (COSE), and the
-- signature counter it last reported (0: the authenticator does not count).
CREATE TABLE passkeys (
    id            text PRIMARY KEY,
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id bytea NOT NULL UNIQUE,
    public_key    bytea NOT NULL,
    sign_count    bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    transports    text[] NOT NULL DEFAULT '{}',
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    backed_up     boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz
);

CREATE INDEX passkeys_of_user ON passkeys (user_id, created_at);

-- The challenges handed out, each good for one ceremony within five minutes: only the
-- SHA-256 of the challenge is kept. A spent one stays (used_at) until it is pruned, so a
-- replayed assertion is told apart from a forged one.
CREATE TABLE passkey_challenges (
    hash       bytea PRIMARY KEY,
    purpose    text NOT NULL CHECK (purpose IN ('register', 'sign_in')),
    user_id    text REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX passkey_challenges_expires_at ON passkey_challenges (expires_at);
