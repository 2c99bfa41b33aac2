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

-- Reliable hand-off (actors/runtime/outbox.py). Messages committed in the same transaction
-- as the state change that caused them; the relay sends them in `seq` order and marks them
-- sent. Sent rows are pruned after a day; unsent rows are never pruned.
CREATE TABLE IF NOT EXISTS runtime_outbox (
    seq          bigserial PRIMARY KEY,       -- delivery order: the order rows were written
    id           text NOT NULL UNIQUE,        -- the envelope id, the same on every redelivery
    actor        text NOT NULL,               -- target actor type
    shard        integer NOT NULL,            -- target shard, fixed when written
    message_type text NOT NULL,
    trace_id     text NOT NULL,
    envelope     bytea NOT NULL,              -- the codec's bytes
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,  -- failed sends so far
    retry_at     timestamptz,                 -- after a failed send: not before this
    last_error   text,
    sent_at      timestamptz
);

-- what the relay reads: unsent rows, per target shard in order
CREATE INDEX IF NOT EXISTS runtime_outbox_unsent
    ON runtime_outbox (actor, shard, seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS runtime_outbox_sent
    ON runtime_outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Messages an actor handled inside Actor.transaction(): a redelivery finds its row and has
-- no second effect. Pruned after a week; a redelivery later than that is not recognised.
CREATE TABLE IF NOT EXISTS runtime_inbox (
    actor      text NOT NULL,
    message_id text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, message_id)
);

CREATE INDEX IF NOT EXISTS runtime_inbox_handled_at ON runtime_inbox (handled_at);
