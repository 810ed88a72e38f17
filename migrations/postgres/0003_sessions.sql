-- Console sessions, by the SHA-256 digest of their id (as
-- migrations/sqlite/0003). Revoking a token ends its sessions.

CREATE TABLE sessions (
    digest      TEXT PRIMARY KEY,
    token_name  TEXT NOT NULL REFERENCES tokens(name) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

CREATE INDEX sessions_token_name ON sessions(token_name);
