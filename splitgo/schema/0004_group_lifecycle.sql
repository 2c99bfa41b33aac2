-- Issue 15: a group can be archived (read-only, hidden from the default list) and deleted
-- (when every balance is zero; kept as a row so its history stays, but gone for everyone).
ALTER TABLE splits_groups ADD COLUMN IF NOT EXISTS archived_at timestamptz;
ALTER TABLE splits_groups ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
