-- Issue 19 (item 2): splitgo as an OpenID Connect provider ("Sign in with splitgo").
-- Owned by actors/auth (actors/auth/store/clients.py and store/grants.py hold every
-- statement). Secrets, codes and refresh tokens are never stored, only SHA-256 digests.

-- The apps registered to sign people in with splitgo. A public client (a phone or browser
-- app that cannot keep a secret) has no secret_hash and proves itself by PKCE alone.
CREATE TABLE oidc_clients (
    id            text PRIMARY KEY,              -- the client_id
    name          text NOT NULL,                 -- what the consent page calls the app
    secret_hash   bytea,                         -- sha256 of the client secret; NULL: public
    redirect_uris text[] NOT NULL CHECK (cardinality(redirect_uris) >= 1),
    created_by    text REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL
);

-- What a person allowed an app to see: a later sign-in asking no more skips the consent.
CREATE TABLE oidc_consents (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    scopes     text[] NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE INDEX oidc_consents_client ON oidc_consents (client_id);

-- One grant per authorization code exchanged: what the tokens issued from it may do.
-- Revoking it (the code came back, a refresh token came back, the person revoked the app)
-- ends its refresh tokens and makes userinfo refuse its access tokens.
CREATE TABLE oidc_grants (
    id         text PRIMARY KEY,
    client_id  text NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes     text[] NOT NULL,
    nonce      text,
    auth_time  timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text                           -- code_reused, token_reused, revoked
);

CREATE INDEX oidc_grants_user_client ON oidc_grants (user_id, client_id)
    WHERE revoked_at IS NULL;

-- Authorization codes: single use, about a minute, bound to their client, redirect URI and
-- PKCE challenge; grant_id is what the code was exchanged for (revoked if it comes back).
CREATE TABLE oidc_codes (
    hash           bytea PRIMARY KEY,            -- sha256 of the code
    client_id      text NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id        text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   text NOT NULL,
    scopes         text[] NOT NULL,
    code_challenge text NOT NULL,
    nonce          text,
    auth_time      timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    grant_id       text REFERENCES oidc_grants (id) ON DELETE SET NULL
);

CREATE INDEX oidc_codes_expires_at ON oidc_codes (expires_at);

-- Refresh tokens of a grant (only with offline_access), rotated on use like the sessions'.
CREATE TABLE oidc_refresh_tokens (
    hash       bytea PRIMARY KEY,                -- sha256 of the token
    grant_id   text NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);
CREATE INDEX oidc_refresh_tokens_expires_at ON oidc_refresh_tokens (expires_at);
