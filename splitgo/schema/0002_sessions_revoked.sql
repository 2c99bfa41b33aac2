-- Issue 14: the HTTP edge loads the sessions revoked within the last access-token lifetime
-- at start and after every reconnect of its broadcast; this keeps that a short index scan.
CREATE INDEX IF NOT EXISTS auth_sessions_revoked_at
    ON auth_sessions (revoked_at) WHERE revoked_at IS NOT NULL;
