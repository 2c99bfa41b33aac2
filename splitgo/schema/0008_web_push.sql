-- Issue 16: Web Push, a notification channel of its own. Owned by actors/notifications.
-- One row per browser (device) a user turned push on in: where its push service takes
-- messages for it (`endpoint`, a capability: whoever knows it can post there) and the keys
-- its messages are encrypted for (RFC 8291). An endpoint belongs to one browser, so to one
-- user: subscribing it again (after a sign-in as someone else) moves it.
CREATE TABLE notification_push_subscriptions (
    id         text PRIMARY KEY,
    user_id    text NOT NULL,
    endpoint   text NOT NULL UNIQUE,
    p256dh     text NOT NULL,             -- the browser's P-256 public key, base64url
    auth       text NOT NULL,             -- its 16-octet auth secret, base64url
    label      text NOT NULL,             -- which device, in words (from its user agent)
    created_at timestamptz NOT NULL
);
CREATE INDEX notification_push_subscriptions_user
    ON notification_push_subscriptions (user_id, created_at);
