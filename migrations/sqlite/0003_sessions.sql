-- Console sessions. The session id lives only in the browser's cookie; the
-- database keeps its SHA-256 digest (256 random bits cannot be brute-forced
-- from a fast digest), so a copy of the database opens no session. Revoking
-- a token ends its sessions (the foreign key; loading also joins tokens).

CREATE TABLE sessions (
    digest      TEXT PRIMARY KEY,
    token_name  TEXT NOT NULL REFERENCES tokens(name) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

CREATE INDEX sessions_token_name ON sessions(token_name);
