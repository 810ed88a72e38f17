-- API tokens, stored only as SHA-256 digests of the token, and who asked
-- for each job (as migrations/sqlite/0002).

CREATE TABLE tokens (
    name          TEXT PRIMARY KEY,
    digest        TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
);

ALTER TABLE jobs ADD COLUMN requested_by TEXT;
