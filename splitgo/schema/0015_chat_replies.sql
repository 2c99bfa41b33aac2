-- Issue 18: answering a chat notice in Telegram. Owned by actors/notifications.
-- One row per chat notice sent over Telegram: the message Telegram made for it (a chat's
-- message ids are its own, so the pair names one message) and the conversation an answer
-- to it is posted to, as whom. The bot looks the replied-to message up here; a row older
-- than the notifications actor keeps them (REPLY_DAYS) is removed as its chat gets new ones.
CREATE TABLE notification_chat_replies (
    chat_id         bigint NOT NULL,
    message_id      bigint NOT NULL,
    user_id         text NOT NULL,
    conversation_id text NOT NULL,
    title           text NOT NULL,      -- the conversation's, as the notice named it
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
