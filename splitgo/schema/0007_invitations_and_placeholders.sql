-- Issue 15: an invitation has an id, `<group id>.<hex>` (the id names its group's shard), by
-- which the invitee accepts or declines it and the inviter withdraws it.
ALTER TABLE splits_invites ADD COLUMN IF NOT EXISTS id text;
UPDATE splits_invites SET id = group_id || '.' || replace(gen_random_uuid()::text, '-', '')
    WHERE id IS NULL;
ALTER TABLE splits_invites ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS splits_invites_id ON splits_invites (id);

-- Placeholder members: a name and no account (yet). `id` is the member's user id in the
-- group's rows until someone claims the place (`claimed_by`) through a claim link, a join
-- link naming the placeholder.
CREATE TABLE splits_placeholders (
    id         text PRIMARY KEY,
    group_id   text NOT NULL REFERENCES splits_groups (id),
    name       text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    claimed_by text,
    claimed_at timestamptz
);
CREATE INDEX splits_placeholders_group ON splits_placeholders (group_id);
ALTER TABLE splits_join_links ADD COLUMN placeholder_id text REFERENCES splits_placeholders (id);

-- Auth names placeholders too (it hears splits' PlaceholderAdded), so a placeholder is named
-- wherever a user is: replies, notifications, exports.
CREATE TABLE auth_placeholders (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);
