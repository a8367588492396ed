-- kozomol schema v19 for PostgreSQL: browser sessions of staff accounts.
--
-- The console's login hands the browser a random session id in a cookie; only its
-- SHA-256 is kept, as for API tokens. A session ends at `expires_at` (a shift) or when
-- its holder logs out (the row is deleted). Kept in the database, not in one
-- process's memory, so every API process behind a balancer knows it.
CREATE TABLE web_sessions (
    session_sha256 BYTEA PRIMARY KEY CHECK (length(session_sha256) = 32),
    account_id     BIGINT NOT NULL REFERENCES accounts (id),
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
