-- The OS templates each node has in its own template directory (a JSON
-- array of names), so that a create asked on any node is placed only on a
-- node that can unpack its template. Written when the node registers, at
-- each heartbeat, and after a template is uploaded or deleted through it.
-- '[]' until a node of this version writes it.

ALTER TABLE nodes ADD COLUMN templates TEXT NOT NULL DEFAULT '[]';
