-- Containers and the jobs that change them. Times are RFC 3339 UTC text
-- ("2020-10-16T15:16:16Z"); ids are hyphenated UUID text. `seq` gives a
-- stable order for lists and for the job queue.

CREATE TABLE containers (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    ostemplate  TEXT    NOT NULL,
    parameters  TEXT,               -- JSON object; NULL until first set
    status      TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

-- A name is taken while its container exists; a deleted container's name
-- may be used again.
CREATE UNIQUE INDEX containers_live_name ON containers (name) WHERE status <> 'deleted';
CREATE INDEX containers_status ON containers (status, seq);

CREATE TABLE jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    entity_type  TEXT    NOT NULL,
    entity_id    TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    payload      TEXT,              -- JSON the action needs (e.g. parameters before a PATCH)
    error        TEXT,
    progress     INTEGER,
    created_at   TEXT    NOT NULL,
    started_at   TEXT,
    finished_at  TEXT
);

CREATE INDEX jobs_status ON jobs (status, seq);
CREATE INDEX jobs_entity ON jobs (entity_id, seq);

CREATE TABLE job_log (
    job_seq  INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
    line     INTEGER NOT NULL,
    time     TEXT    NOT NULL,
    text     TEXT    NOT NULL,
    PRIMARY KEY (job_seq, line)
) WITHOUT ROWID;

-- Idempotency-Key: the same key and request within 24 h answer with the
-- job the first request queued.
CREATE TABLE idempotency_keys (
    key           TEXT    PRIMARY KEY,
    fingerprint   TEXT    NOT NULL,
    job_id        TEXT    NOT NULL,
    container_id  TEXT    NOT NULL,
    created_at    TEXT    NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
