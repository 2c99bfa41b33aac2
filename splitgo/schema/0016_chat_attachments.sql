-- Issue 18 (item 4): files of chat conversations, kept by the files actor beside the
-- receipts of expenses, processed and stored the same way. Owned by actors/files.
-- A chat file has `conversation_id` and neither group nor expense (a direct conversation
-- has no group); `message_id` is the message that carries it, NULL until it is sent.
-- A receipt keeps its group and expense, as before.
ALTER TABLE attachments ALTER COLUMN group_id DROP NOT NULL;
ALTER TABLE attachments ALTER COLUMN expense_id DROP NOT NULL;
ALTER TABLE attachments ADD COLUMN conversation_id text;
ALTER TABLE attachments ADD COLUMN message_id text;
ALTER TABLE attachments ADD CONSTRAINT attachments_of_an_expense_or_a_conversation CHECK (
    (conversation_id IS NULL AND group_id IS NOT NULL AND expense_id IS NOT NULL
        AND message_id IS NULL)
    OR (conversation_id IS NOT NULL AND group_id IS NULL AND expense_id IS NULL)
);
CREATE INDEX attachments_of_conversation
    ON attachments (conversation_id, message_id)
    WHERE conversation_id IS NOT NULL AND deleted_at IS NULL;
-- the upkeep deletes files uploaded to a conversation and never sent
CREATE INDEX attachments_unsent
    ON attachments (created_at)
    WHERE conversation_id IS NOT NULL AND message_id IS NULL AND deleted_at IS NULL;
