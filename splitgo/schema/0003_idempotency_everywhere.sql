-- Issue 14: every actor records the idempotency keys of what it creates in its own table,
-- with the effect, through one runtime helper (actors/runtime/idempotency.py). All these
-- tables have one shape: (scope, key) -> the request's fingerprint and the first reply;
-- `reply` is NULL while the flow the key started is still running (about `subject`), which
-- answers a retry 409 idempotency_in_flight. Pruned after the owner's retention (>= 24 h).
ALTER TABLE payment_idempotency ALTER COLUMN reply DROP NOT NULL;
ALTER TABLE payment_idempotency ADD COLUMN IF NOT EXISTS subject text;
ALTER TABLE payment_idempotency RENAME TO payments_idempotency;
ALTER INDEX payment_idempotency_created_at RENAME TO payments_idempotency_created_at;

CREATE TABLE auth_idempotency (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint bytea NOT NULL,
    reply       bytea,
    subject     text,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX auth_idempotency_created_at ON auth_idempotency (created_at);

CREATE TABLE splits_idempotency (LIKE auth_idempotency INCLUDING ALL);
CREATE INDEX splits_idempotency_subject ON splits_idempotency (subject) WHERE reply IS NULL;

CREATE TABLE rides_idempotency (LIKE auth_idempotency INCLUDING ALL);

CREATE INDEX payments_idempotency_subject ON payments_idempotency (subject) WHERE reply IS NULL;
