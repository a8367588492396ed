-- kozomol schema v25: where the same bytes were stored a second time.
--
-- Evidence is content-addressed and the first location wins, so bytes stored again
-- while the first copy was kept (the same scan attached to two appeals, one frame two
-- ingest processes stored at once) had no row naming them, and destruction left them
-- in their segments. Each such copy is recorded here when it is stored, and queued for
-- overwriting with the first when the blob is erased.
CREATE TABLE evidence_copies (
    sha256      BYTEA NOT NULL CHECK (length(sha256) = 32),
    segment     TEXT NOT NULL,
    byte_offset BIGINT NOT NULL,
    byte_len    BIGINT NOT NULL,
    PRIMARY KEY (sha256, segment, byte_offset)
);
