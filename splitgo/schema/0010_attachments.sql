-- Issue 17 (item 3): receipts and attachments of an expense. Owned by actors/files.
-- One row per attachment; its bytes are in the storage (a local folder or an S3 bucket)
-- under random keys. `id` is chosen by the caller, so a retried upload finds the first.
-- A deleted attachment keeps its row (who deleted it, when); `purged_at` is set once its
-- bytes are gone from the storage, and the upkeep retries those a failure left behind.
CREATE TABLE attachments (
    id             text PRIMARY KEY,
    group_id       text NOT NULL,
    expense_id     text NOT NULL,
    uploaded_by    text NOT NULL,
    filename       text NOT NULL,
    content_type   text NOT NULL
        CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp', 'application/pdf')),
    size           bigint NOT NULL CHECK (size >= 0),    -- bytes of the stored original
    sha256         text NOT NULL,                        -- hex, of the stored original
    upload_sha256  text NOT NULL,                        -- hex, of the bytes as uploaded
    storage_key    text NOT NULL,
    thumbnail_key  text,
    thumbnail_type text,
    created_at     timestamptz NOT NULL,
    deleted_at     timestamptz,
    deleted_by     text,
    purged_at      timestamptz,
    CHECK ((thumbnail_key IS NULL) = (thumbnail_type IS NULL))
);
CREATE INDEX attachments_of_expense
    ON attachments (group_id, expense_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX attachments_unpurged
    ON attachments (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL;
