-- The hosts that share this database, and which one each container lives
-- on. A host registers itself at start and beats every few seconds; one
-- whose beat is older than its node_timeout_secs counts as offline. `state`
-- is what the operator set ('online' or 'draining'); `host_id` is the
-- identity of the host holding the name (kept in its data directory), so a
-- restarted node takes its own name back while another host cannot.

CREATE TABLE nodes (
    name          TEXT    PRIMARY KEY,
    host_id       TEXT    NOT NULL,
    api_url       TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    cpus          BIGINT NOT NULL,
    memory_bytes  BIGINT NOT NULL,
    disk_bytes    BIGINT NOT NULL,
    state         TEXT    NOT NULL,
    started_at    TEXT    NOT NULL,
    heartbeat_at  TEXT    NOT NULL
);

-- '' until the node that opens the database first claims its containers.
ALTER TABLE containers ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX containers_node ON containers (node, status);
