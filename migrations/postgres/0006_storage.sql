-- The storage pool each container's root filesystem is on, and that pool's
-- driver (`dir` or `btrfs`): the driver says where the files are and what
-- a move may do with them. Every container made before pools is on the
-- `dir` pool `default` under the LXC path.

ALTER TABLE containers ADD COLUMN storage TEXT NOT NULL DEFAULT 'default';
ALTER TABLE containers ADD COLUMN storage_driver TEXT NOT NULL DEFAULT 'dir';

-- Snapshots of containers' root filesystems (the files are the storage
-- pool's). `status`: `creating` while its job runs (not listed; the name
-- is taken), `ready`, `deleting` while its delete job runs (not listed).
CREATE TABLE snapshots (
    container_id  TEXT  NOT NULL,
    name          TEXT  NOT NULL,
    status        TEXT  NOT NULL,
    created_at    TEXT  NOT NULL,
    PRIMARY KEY (container_id, name)
);
