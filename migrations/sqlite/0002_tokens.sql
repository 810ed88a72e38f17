-- API tokens, stored only as SHA-256 digests of the token (tokens are 256
-- random bits, so a fast digest cannot be brute-forced), and who asked for
-- each job.

CREATE TABLE tokens (
    name          TEXT PRIMARY KEY,
    digest        TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
);

ALTER TABLE jobs ADD COLUMN requested_by TEXT;
