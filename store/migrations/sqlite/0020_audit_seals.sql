-- kozomol schema v20 for SQLite: seals over the audit log (store/src/audit.rs).
--
-- A seal covers every audit row after the previous seal's up to `up_to_id`, in id
-- order, and chains to the seal before it; `id` counts seals from 1, so two processes
-- sealing at once cannot both write the next one.
CREATE TABLE audit_seals (
    id        INTEGER PRIMARY KEY NOT NULL,
    up_to_id  INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB NOT NULL CHECK (length(hash) = 32),
    sealed_at INTEGER NOT NULL
) STRICT;
