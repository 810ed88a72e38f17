-- Backups: one archive file each in the backup_dir of the node that holds
-- it. The archive describes itself (its first entry, berth-backup.json, or
-- a Proxmox vzdump's ./etc/vzdump/pct.conf); its sha256 and size live here
-- so that a file damaged since it was written is refused before a restore.
-- `container_id` is NULL for an uploaded file; `kind` is 'berth' or
-- 'proxmox'; `parameters` is the JSON of berth's parameters it restores.

CREATE TABLE backups (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    container_id    TEXT,
    container_name  TEXT    NOT NULL,
    ostemplate      TEXT    NOT NULL,
    parameters      TEXT,
    kind            TEXT    NOT NULL,
    node            TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    sha256          TEXT    NOT NULL,
    created_at      TEXT    NOT NULL
);
CREATE INDEX backups_container ON backups (container_id, seq);
