-- splitgo schema, step 1: the baseline, the whole schema as it stood before steps (one
-- section per owner). Every statement here is safe to run twice: a database made by the
-- earlier schema.sql, applied at every start, takes this step without harm.
--
-- Applied steps are never edited (their checksums are checked at start): a change to the
-- schema is a new file, NNNN_what.sql with the next number (see splitgo/schema/__init__.py).
-- The steps' own bookkeeping, schema_version and schema_migrations, is made by that module.

-- ── runtime ─────────────────────────────────────────────────────────────────────────────

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

-- ── auth ────────────────────────────────────────────────────────────────────────────────
-- Owned by actors/auth (store.py holds every statement). Tokens are never stored, only
-- their SHA-256 digests; passwords only as argon2id hashes.

CREATE TABLE IF NOT EXISTS users (
    id               text PRIMARY KEY,
    email            text NOT NULL CHECK (email = lower(btrim(email))),
    name             text NOT NULL,
    password_hash    text,                        -- argon2id; NULL: no password (social only)
    email_verified   boolean NOT NULL DEFAULT false,
    phone            text,                        -- E.164
    phone_verified   boolean NOT NULL DEFAULT false,
    roles            text[] NOT NULL DEFAULT ARRAY['user']::text[]
                     CHECK (roles <@ ARRAY['user', 'driver', 'admin']::text[]),
    telegram_chat_id bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (email);
-- one account per Telegram chat: linking a chat again moves it
CREATE UNIQUE INDEX IF NOT EXISTS users_telegram_chat_id
    ON users (telegram_chat_id) WHERE telegram_chat_id IS NOT NULL;

-- Social logins: the provider's stable subject id names the account.
CREATE TABLE IF NOT EXISTS oauth_identities (
    provider   text NOT NULL,
    subject    text NOT NULL,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);

CREATE INDEX IF NOT EXISTS oauth_identities_user ON oauth_identities (user_id);

-- A session is one sign-in and the family of refresh tokens rotated from it: revoking it
-- (logout, reuse detection, password reset) ends every token of the family.
CREATE TABLE IF NOT EXISTS auth_sessions (
    id             text PRIMARY KEY,
    user_id        text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent     text,
    ip             text,
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,          -- when its newest refresh token expires
    revoked_at     timestamptz,
    revoked_reason text                           -- logout, revoked, reuse, password_reset…
);

CREATE INDEX IF NOT EXISTS auth_sessions_user_active
    ON auth_sessions (user_id, last_used_at DESC) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS auth_sessions_expires_at ON auth_sessions (expires_at);

-- Every refresh token ever issued until it expires: a used one presented again is reuse.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       bytea PRIMARY KEY,                 -- sha256 of the token
    session_id text NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz                        -- rotated: set when exchanged for the next
);

CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- Single-use, expiring tokens: email verification, password reset, Telegram link, and the
-- OAuth state (data holds the provider, PKCE verifier, nonce and redirect URI).
CREATE TABLE IF NOT EXISTS one_time_tokens (
    hash       bytea PRIMARY KEY,                 -- sha256 of the token
    purpose    text NOT NULL
               CHECK (purpose IN ('verify_email', 'reset_password', 'telegram_link',
                                  'oauth_state')),
    user_id    text REFERENCES users (id) ON DELETE CASCADE,
    data       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX IF NOT EXISTS one_time_tokens_user ON one_time_tokens (user_id, purpose);
CREATE INDEX IF NOT EXISTS one_time_tokens_expires_at ON one_time_tokens (expires_at);

-- Failed logins, counted per email and per address over the last window (actors/auth/limits.py).
CREATE TABLE IF NOT EXISTS login_failures (
    id    bigserial PRIMARY KEY,
    email text NOT NULL,
    ip    text,
    at    timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS login_failures_email ON login_failures (email, at);
CREATE INDEX IF NOT EXISTS login_failures_ip ON login_failures (ip, at) WHERE ip IS NOT NULL;

-- The current (or last) lockout of an email ('email:…') or address ('ip:…'), and how many
-- came in a row: the next one lasts longer.
CREATE TABLE IF NOT EXISTS lockouts (
    key        text PRIMARY KEY,
    until      timestamptz NOT NULL,
    count      integer NOT NULL CHECK (count >= 1),
    updated_at timestamptz NOT NULL
);

-- ── notifications ───────────────────────────────────────────────────────────────────────

-- One row per (event, user, channel): the event's envelope id keys it, so an event that
-- arrives twice is delivered once. `payload` is the event, kept only while the delivery
-- is pending (it may hold a single-use token) and cleared when it is sent or failed.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    id              text PRIMARY KEY,
    event_id        text NOT NULL,             -- envelope id of the event that caused it
    event_type      text NOT NULL,             -- the event's message type
    user_id         text NOT NULL,
    channel         text NOT NULL,             -- email (telegram, inapp, sms to come)
    recipient       text NOT NULL,             -- where the channel sends it (an address)
    shard           integer NOT NULL,          -- the actor shard that owns its retries
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0, -- tries started so far
    payload         jsonb,
    next_attempt_at timestamptz,               -- pending: when the next try is due
    last_answer     text,                      -- the provider's last answer
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    failed_at       timestamptz,
    CONSTRAINT notification_deliveries_status CHECK (status IN ('pending', 'sent', 'failed')),
    CONSTRAINT notification_deliveries_once UNIQUE (event_id, user_id, channel)
);

-- what a (re)starting shard re-arms: pending deliveries, by shard
CREATE INDEX IF NOT EXISTS notification_deliveries_pending
    ON notification_deliveries (shard, next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS notification_deliveries_by_user
    ON notification_deliveries (user_id, created_at DESC);
-- the admin's view of what failed for good
CREATE INDEX IF NOT EXISTS notification_deliveries_failed
    ON notification_deliveries (failed_at DESC) WHERE status = 'failed';

-- One row per try of a delivery: its outcome and what the provider answered.
CREATE TABLE IF NOT EXISTS notification_attempts (
    delivery_id     text NOT NULL REFERENCES notification_deliveries (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,          -- 1, 2, ...
    status          text NOT NULL CHECK (status IN ('sent', 'failed')),
    provider_answer text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (delivery_id, attempt)
);

-- The in-app feed: one row per in-app delivery (its id), read or unread.
CREATE TABLE IF NOT EXISTS notification_feed (
    id         text PRIMARY KEY,            -- the delivery's id: a retried try stores once
    seq        bigserial NOT NULL,
    user_id    text NOT NULL,
    category   text NOT NULL,
    kind       text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    data       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL,
    read_at    timestamptz
);
CREATE INDEX IF NOT EXISTS notification_feed_user ON notification_feed (user_id, seq DESC);
CREATE INDEX IF NOT EXISTS notification_feed_unread ON notification_feed (user_id, seq DESC)
    WHERE read_at IS NULL;

-- What a user switched on or off, per category and channel; absent: the default.
CREATE TABLE IF NOT EXISTS notification_preferences (
    user_id  text NOT NULL,
    category text NOT NULL,
    channel  text NOT NULL,
    enabled  boolean NOT NULL,
    PRIMARY KEY (user_id, category, channel)
);

-- ── payments ────────────────────────────────────────────────────────────────────────────
-- Owned by actors/payments (store.py holds every statement). A double-entry ledger in
-- integer minor units: each transfer debits one account and credits another by the same
-- amount, so every currency sums to zero over all accounts. Transfers and entries are
-- append-only; an account's debits and credits are kept with them in the same transaction.

CREATE TABLE IF NOT EXISTS payment_accounts (
    id             bigserial PRIMARY KEY,           -- the lock order: always ascending
    owner_kind     text NOT NULL CHECK (owner_kind IN ('user', 'system')),
    owner          text NOT NULL,                   -- a user id, or provider_clearing/holds/fees
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    debits         bigint NOT NULL DEFAULT 0 CHECK (debits >= 0),
    credits        bigint NOT NULL DEFAULT 0 CHECK (credits >= 0),
    allow_negative boolean NOT NULL DEFAULT false,  -- only the provider clearing account
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_kind, owner, currency),
    -- TigerBeetle's debits_must_not_exceed_credits: no wallet ever goes below zero
    CONSTRAINT payment_accounts_not_negative CHECK (allow_negative OR debits <= credits)
);

CREATE TABLE IF NOT EXISTS payment_transfers (
    id                text PRIMARY KEY,
    kind              text NOT NULL,   -- p2p, settlement, fare, fee, top_up, hold, capture, hold_release
    debit_account_id  bigint NOT NULL REFERENCES payment_accounts (id),
    credit_account_id bigint NOT NULL REFERENCES payment_accounts (id),
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text NOT NULL,
    from_user_id      text,
    to_user_id        text,
    note              text CHECK (char_length(note) <= 200),
    reference         text,
    hold_id           text,
    external_id       text UNIQUE,     -- top_up:<id>: a top-up is credited once
    created_at        timestamptz NOT NULL,
    CHECK (debit_account_id <> credit_account_id)
);

CREATE INDEX IF NOT EXISTS payment_transfers_by_hold
    ON payment_transfers (hold_id) WHERE hold_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS payment_entries (
    id            bigserial PRIMARY KEY,            -- statement order
    transfer_id   text NOT NULL REFERENCES payment_transfers (id),
    account_id    bigint NOT NULL REFERENCES payment_accounts (id),
    side          text NOT NULL CHECK (side IN ('debit', 'credit')),
    amount        bigint NOT NULL CHECK (amount > 0),
    balance_after bigint NOT NULL,                  -- the account's credits - debits after it
    created_at    timestamptz NOT NULL,
    UNIQUE (transfer_id, side)
);

CREATE INDEX IF NOT EXISTS payment_entries_by_account ON payment_entries (account_id, id DESC);

CREATE OR REPLACE FUNCTION payment_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;

DROP TRIGGER IF EXISTS payment_transfers_append_only ON payment_transfers;
CREATE TRIGGER payment_transfers_append_only BEFORE UPDATE OR DELETE ON payment_transfers
    FOR EACH ROW EXECUTE FUNCTION payment_append_only();
DROP TRIGGER IF EXISTS payment_entries_append_only ON payment_entries;
CREATE TRIGGER payment_entries_append_only BEFORE UPDATE OR DELETE ON payment_entries
    FOR EACH ROW EXECUTE FUNCTION payment_append_only();

-- Two-phase payments: the money sits in the holds system account while status = 'held'.
CREATE TABLE IF NOT EXISTS payment_holds (
    id         text PRIMARY KEY,
    user_id    text NOT NULL,
    currency   text NOT NULL,
    amount     bigint NOT NULL CHECK (amount > 0),
    captured   bigint NOT NULL DEFAULT 0,
    status     text NOT NULL CHECK (status IN ('held', 'captured', 'voided', 'expired')),
    reference  text,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (captured >= 0 AND captured <= amount)
);

CREATE INDEX IF NOT EXISTS payment_holds_open
    ON payment_holds (user_id, currency) WHERE status = 'held';
CREATE INDEX IF NOT EXISTS payment_holds_expiry ON payment_holds (expires_at) WHERE status = 'held';

-- First results of money-moving requests, by (scope, idempotency key); scope is the payer
-- (transfer:<user>, hold:<user>) or the hold (capture:<hold>). Pruned after 48 hours.
CREATE TABLE IF NOT EXISTS payment_idempotency (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint bytea NOT NULL,   -- SHA-256 of the canonical request
    reply       bytea NOT NULL,   -- the first reply, msgpack
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX IF NOT EXISTS payment_idempotency_created_at ON payment_idempotency (created_at);

-- ── payments: top-ups ───────────────────────────────────────────────────────────────────

-- One row per top-up a user started; the provider's checkout id once it exists.
CREATE TABLE IF NOT EXISTS payment_top_ups (
    id              text PRIMARY KEY,
    user_id         text NOT NULL,
    idempotency_key text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    provider        text NOT NULL,
    checkout_id     text UNIQUE,
    checkout_url    text,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);

-- Provider events already applied: a replayed webhook finds its id here and does nothing.
CREATE TABLE IF NOT EXISTS payment_webhook_events (
    provider    text NOT NULL,
    event_id    text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

-- ── splits ──────────────────────────────────────────────────────────────────────────────
-- Owned by actors/splits (store.py holds every statement). Sharded by group: one shard
-- writes a group's rows. Amounts are integer minor units. Balances are kept incrementally
-- with every expense, edit, deletion and settlement (never recomputed on read); per group
-- and currency they sum to zero.

CREATE TABLE IF NOT EXISTS splits_groups (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    currency   text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS splits_members (
    group_id  text NOT NULL REFERENCES splits_groups (id),
    user_id   text NOT NULL,
    joined_at timestamptz NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX IF NOT EXISTS splits_members_user ON splits_members (user_id);

-- Emails invited before they had an account; UserRegistered turns them into members.
CREATE TABLE IF NOT EXISTS splits_invites (
    group_id   text NOT NULL REFERENCES splits_groups (id),
    email      text NOT NULL,
    invited_by text NOT NULL,
    invited_at timestamptz NOT NULL,
    PRIMARY KEY (group_id, email)
);
CREATE INDEX IF NOT EXISTS splits_invites_email ON splits_invites (email);

-- `seq` orders a group's expenses for listing (newest first) and export.
CREATE TABLE IF NOT EXISTS splits_expenses (
    id             text PRIMARY KEY,
    seq            bigserial NOT NULL,
    group_id       text NOT NULL REFERENCES splits_groups (id),
    description    text NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    currency       text NOT NULL,
    spent_on       date NOT NULL,
    category       text NOT NULL,
    split_mode     text NOT NULL,
    split_input    jsonb NOT NULL,      -- the share lines as given, to recompute on edit
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    version        integer NOT NULL DEFAULT 1,
    deleted_at     timestamptz,
    recurrence     text,
    next_due       date,                 -- the next copy of a recurring expense
    recurring_from text
);
CREATE INDEX IF NOT EXISTS splits_expenses_group ON splits_expenses (group_id, seq DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS splits_expenses_due ON splits_expenses (next_due)
    WHERE next_due IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE IF NOT EXISTS splits_expense_lines (
    expense_id text NOT NULL REFERENCES splits_expenses (id),
    user_id    text NOT NULL,
    paid       bigint NOT NULL DEFAULT 0 CHECK (paid >= 0),
    owed       bigint NOT NULL DEFAULT 0 CHECK (owed >= 0),
    sharing    boolean NOT NULL,  -- among the split's participants (a share may be 0)
    position   integer NOT NULL,
    PRIMARY KEY (expense_id, user_id)
);

-- Every version of an expense: what it was before each edit or deletion.
CREATE TABLE IF NOT EXISTS splits_expense_history (
    id         bigserial PRIMARY KEY,
    expense_id text NOT NULL REFERENCES splits_expenses (id),
    version    integer NOT NULL,
    action     text NOT NULL,
    changed_by text NOT NULL,
    changed_at timestamptz NOT NULL,
    snapshot   jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS splits_balances (
    group_id text NOT NULL REFERENCES splits_groups (id),
    user_id  text NOT NULL,
    currency text NOT NULL,
    net      bigint NOT NULL,  -- > 0: owed to them
    PRIMARY KEY (group_id, user_id, currency)
);

-- The settle plan last shown per group and currency, kept while it still settles the
-- balances so paying one suggestion does not reshuffle the others.
CREATE TABLE IF NOT EXISTS splits_plans (
    group_id text NOT NULL REFERENCES splits_groups (id),
    currency text NOT NULL,
    plan     jsonb NOT NULL,
    PRIMARY KEY (group_id, currency)
);

CREATE TABLE IF NOT EXISTS splits_settlements (
    id              text PRIMARY KEY,
    group_id        text NOT NULL REFERENCES splits_groups (id),
    from_user_id    text NOT NULL,
    to_user_id      text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    method          text NOT NULL CHECK (method IN ('wallet', 'cash')),
    status          text NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    created_at      timestamptz NOT NULL,
    settled_at      timestamptz,
    transfer_id     text,
    failure_code    text,
    failure_message text
);
CREATE INDEX IF NOT EXISTS splits_settlements_group ON splits_settlements (group_id);

CREATE TABLE IF NOT EXISTS splits_activity (
    id            bigserial PRIMARY KEY,
    group_id      text NOT NULL REFERENCES splits_groups (id),
    kind          text NOT NULL,
    actor_user_id text,
    summary       text NOT NULL,
    expense_id    text,
    data          jsonb,
    created_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS splits_activity_group ON splits_activity (group_id, id DESC);

CREATE TABLE IF NOT EXISTS splits_comments (
    id         text PRIMARY KEY,
    expense_id text NOT NULL REFERENCES splits_expenses (id),
    group_id   text NOT NULL REFERENCES splits_groups (id),
    user_id    text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS splits_comments_expense ON splits_comments (expense_id, created_at);

-- ── rides ───────────────────────────────────────────────────────────────────────────────
-- Owned by actors/rides (store.py holds every statement). One rides shard keeps the live
-- map of drivers in memory; positions are written here every few seconds, not per ping.

CREATE TABLE IF NOT EXISTS rides_drivers (
    user_id      text PRIMARY KEY,
    vehicle      text NOT NULL,
    plate        text NOT NULL,
    status       text NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'offline')),
    lat          double precision,
    lon          double precision,
    seen_at      timestamptz,
    rating_sum   integer NOT NULL DEFAULT 0,
    rating_count integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS rides (
    id               text PRIMARY KEY,
    rider_id         text NOT NULL,
    driver_id        text,
    status           text NOT NULL CHECK (status IN ('requested', 'driver_assigned',
                         'driver_arrived', 'in_progress', 'completed', 'cancelled', 'no_driver')),
    pickup_lat       double precision NOT NULL,
    pickup_lon       double precision NOT NULL,
    dropoff_lat      double precision NOT NULL,
    dropoff_lon      double precision NOT NULL,
    group_id         text,
    currency         text NOT NULL,
    estimate         bigint NOT NULL CHECK (estimate > 0),
    estimate_m       integer NOT NULL,
    estimate_s       integer NOT NULL,
    surge_bp         integer NOT NULL,
    hold_id          text,
    offered_to       text,
    offer_attempt    integer NOT NULL DEFAULT 0,
    offer_expires_at timestamptz,
    tried            text[] NOT NULL DEFAULT '{}',
    fare             bigint,
    distance_m       integer,
    duration_s       integer,
    cancel_reason    text,
    rider_stars      smallint,      -- the rider's rating of the driver
    rider_comment    text,
    driver_stars     smallint,      -- the driver's rating of the rider
    driver_comment   text,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz
);
-- one active ride per rider, and per driver once assigned
CREATE UNIQUE INDEX IF NOT EXISTS rides_one_active_per_rider ON rides (rider_id)
    WHERE status IN ('requested', 'driver_assigned', 'driver_arrived', 'in_progress');
CREATE UNIQUE INDEX IF NOT EXISTS rides_one_active_per_driver ON rides (driver_id)
    WHERE status IN ('driver_assigned', 'driver_arrived', 'in_progress');

CREATE TABLE IF NOT EXISTS rides_timeline (
    ride_id text NOT NULL REFERENCES rides (id),
    seq     bigserial,
    status  text NOT NULL,
    note    text,
    at      timestamptz NOT NULL,
    PRIMARY KEY (ride_id, seq)
);
