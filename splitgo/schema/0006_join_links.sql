-- Issue 15: join links. A member shares `<group id>.<secret>`; only the secret's SHA-256 is
-- kept. A link expires, has a use limit, and can be revoked.
CREATE TABLE splits_join_links (
    id          text PRIMARY KEY,
    group_id    text NOT NULL REFERENCES splits_groups (id),
    secret_hash bytea NOT NULL UNIQUE,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    max_uses    integer NOT NULL CHECK (max_uses > 0),
    uses        integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revoked_at  timestamptz
);
CREATE INDEX splits_join_links_group ON splits_join_links (group_id);
