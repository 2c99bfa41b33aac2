-- splitgo: the whole database schema, one section per owner.
-- Applied at every start under an advisory lock; every statement is safe to run twice.
-- Upgrades are written as idempotent statements below the section they change
-- (ADD COLUMN IF NOT EXISTS, CREATE INDEX IF NOT EXISTS), and splitgo/db.py's
-- SCHEMA_VERSION goes up by one with each.

-- ── runtime ─────────────────────────────────────────────────────────────────────────────

CREATE TABLE IF NOT EXISTS schema_version (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version    integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Messages whose handling failed for good, and what the shutdown deadline cut off.
CREATE TABLE IF NOT EXISTS runtime_dead_letters (
    id           text PRIMARY KEY,
    actor        text NOT NULL,
    shard        integer NOT NULL,
    message_type text NOT NULL,
    message_id   text NOT NULL,
    trace_id     text NOT NULL,
    attempts     integer NOT NULL,
    error        text NOT NULL,
    body         jsonb NOT NULL,
    envelope     bytea,            -- the codec's bytes; NULL when the message would not encode
    created_at   timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz
);

CREATE INDEX IF NOT EXISTS runtime_dead_letters_newest
    ON runtime_dead_letters (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS runtime_dead_letters_by_actor
    ON runtime_dead_letters (actor, created_at DESC, id DESC);
