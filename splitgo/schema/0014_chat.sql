-- Issue 18: chat between people about their money. Owned by actors/chat.
--
-- A conversation is about a group, an expense, a settlement (all three: the group's members
-- are in it) or is direct between two people. Its id is derived from what it is about, so
-- opening it twice finds the first. `last_seq` numbers its messages; `closed_at` is set
-- when its group is deleted (it is then gone for everyone).
CREATE TABLE chat_conversations (
    id              text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('group', 'expense', 'settlement', 'direct')),
    subject_id      text NOT NULL,
    group_id        text,
    title           text NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    last_seq        bigint NOT NULL DEFAULT 0,
    last_message_at timestamptz,
    closed_at       timestamptz,
    CHECK ((group_id IS NULL) = (kind = 'direct'))
);
CREATE INDEX chat_conversations_of_group ON chat_conversations (group_id)
    WHERE group_id IS NOT NULL;

-- The members of groups as chat knows them, from splits' events (MemberAdded,
-- MemberRemoved, PlaceholderClaimed) over a first copy asked for when a group's first
-- conversation opens (`chat_groups`). A member who leaves keeps a row with `left_at`, so a
-- late copy never brings them back.
CREATE TABLE chat_members (
    group_id   text NOT NULL,
    user_id    text NOT NULL,
    left_at    timestamptz,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX chat_members_of_user ON chat_members (user_id) WHERE left_at IS NULL;

CREATE TABLE chat_groups (
    group_id   text PRIMARY KEY,
    copied_at  timestamptz NOT NULL,
    deleted_at timestamptz
);

-- The two people of a direct conversation.
CREATE TABLE chat_direct (
    conversation_id text NOT NULL REFERENCES chat_conversations (id),
    user_id         text NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX chat_direct_of_user ON chat_direct (user_id);

-- Messages in order per conversation. A deleted one keeps its row (shown as deleted) with
-- its text and files gone.
CREATE TABLE chat_messages (
    conversation_id text NOT NULL REFERENCES chat_conversations (id),
    seq             bigint NOT NULL,
    id              text NOT NULL UNIQUE,
    author_id       text NOT NULL,
    text            text NOT NULL,
    attachments     jsonb NOT NULL DEFAULT '[]',
    mentions        text[] NOT NULL DEFAULT '{}',
    via             text NOT NULL DEFAULT 'app',
    created_at      timestamptz NOT NULL,
    edited_at       timestamptz,
    deleted_at      timestamptz,
    PRIMARY KEY (conversation_id, seq)
);

-- How far each person has read each conversation.
CREATE TABLE chat_reads (
    conversation_id text NOT NULL,
    user_id         text NOT NULL,
    last_read_seq   bigint NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

-- The rate limit per person: a token bucket over all their conversations.
CREATE TABLE chat_rate (
    user_id text PRIMARY KEY,
    tokens  double precision NOT NULL,
    at      timestamptz NOT NULL
);
