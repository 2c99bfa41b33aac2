-- Issue 15: a member reminds another what they owe in a group, at most once a day per pair.
CREATE TABLE splits_reminders (
    group_id     text NOT NULL REFERENCES splits_groups (id),
    from_user_id text NOT NULL,
    to_user_id   text NOT NULL,
    sent_at      timestamptz NOT NULL,
    PRIMARY KEY (group_id, from_user_id, to_user_id)
);
