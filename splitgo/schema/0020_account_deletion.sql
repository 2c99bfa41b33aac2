-- Issue 19 (item 4): account deletion and the data export.
--
-- A deleted account keeps its row (owned by actors/auth), anonymised: ledger lines,
-- expenses, comments and chat messages still point to its id, and auth names it "Deleted
-- user". `deleted_at` says when; its email becomes deleted-<id>@deleted.invalid, so the
-- address it had can register again.
ALTER TABLE users ADD COLUMN deleted_at timestamptz;

-- The export reads a person's rows across every group and conversation (each actor its
-- own tables): these find them without a scan (a line by its user has one since step 12).
CREATE INDEX splits_expenses_creator ON splits_expenses (created_by);
CREATE INDEX splits_settlements_from ON splits_settlements (from_user_id);
CREATE INDEX splits_settlements_to ON splits_settlements (to_user_id);
CREATE INDEX splits_comments_user ON splits_comments (user_id, created_at);
CREATE INDEX chat_messages_author ON chat_messages (author_id, created_at);
CREATE INDEX rides_rider ON rides (rider_id, created_at);
CREATE INDEX rides_driver ON rides (driver_id, created_at) WHERE driver_id IS NOT NULL;
