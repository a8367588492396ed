-- kozomol schema v20 for PostgreSQL: seals over the audit log (store/src/audit.rs).
--
-- A seal covers every audit row after the previous seal's up to `up_to_id`, in id
-- order, and chains to the seal before it; `id` counts seals from 1, so two processes
-- sealing at once cannot both write the next one.
CREATE TABLE audit_seals (
    id        BIGINT PRIMARY KEY,
    up_to_id  BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    prev_hash BYTEA NOT NULL CHECK (length(prev_hash) = 32),
    hash      BYTEA NOT NULL CHECK (length(hash) = 32),
    sealed_at TIMESTAMPTZ NOT NULL
);
