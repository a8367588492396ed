-- kozomol schema v22 for SQLite: destroying case files at the end of their
-- archive period (store/src/destruction.rs).
--
-- A case whose personal data were purged long enough ago has its file destroyed: the
-- case is marked, and every evidence blob that no case, accident or print batch still
-- keeping its file refers to is marked erased (an erased blob is stored again if the
-- same bytes come back). Where the erased bytes lie is queued, by location, until
-- they are overwritten in their segment: a crash between the two leaves the
-- overwrite to the next pass, and a blob stored again elsewhere does not hide the old
-- copy. retry_at puts off a segment that could not be overwritten.
ALTER TABLE cases ADD COLUMN evidence_destroyed_at INTEGER;
-- The cut-off the purge used (the case had no move since): the archive period counts
-- from it. Cases purged before this version count from the purge itself, later.
ALTER TABLE cases ADD COLUMN personal_data_quiet_since INTEGER;
CREATE INDEX cases_destruction
    ON cases ((COALESCE(personal_data_quiet_since, personal_data_purged_at)), id)
    WHERE personal_data_purged_at IS NOT NULL AND evidence_destroyed_at IS NULL;

ALTER TABLE evidence_blobs ADD COLUMN erased_at INTEGER;

CREATE TABLE evidence_erasures (
    segment        TEXT NOT NULL,
    byte_offset    INTEGER NOT NULL,
    byte_len       INTEGER NOT NULL,
    sha256         BLOB NOT NULL CHECK (length(sha256) = 32),
    erased_at      INTEGER NOT NULL,
    retry_at       INTEGER,
    overwritten_at INTEGER,
    PRIMARY KEY (segment, byte_offset, sha256)
);
CREATE INDEX evidence_erasures_pending ON evidence_erasures (erased_at)
    WHERE overwritten_at IS NULL;

-- One process at a time destroys case files (two passes at once could each see the
-- other's case as kept and leave a shared blob for ever, or rewrite one bucket object
-- together): the pass holds this lease.
CREATE TABLE archive_lease (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT,
    until  INTEGER
);
INSERT INTO archive_lease (id) VALUES (1);

-- Who else holds a blob: evidence is content-addressed, so two cases (or a case and a
-- print batch) may hold the same bytes.
CREATE INDEX case_frames_blob ON case_frames (sha256);
CREATE INDEX recognitions_crop ON recognitions (crop_sha256) WHERE crop_sha256 IS NOT NULL;
CREATE INDEX resolutions_pdf ON resolutions (pdf_sha256);
CREATE INDEX appeal_attachments_blob ON appeal_attachments (sha256);
CREATE INDEX accident_files_blob ON accident_files (sha256);
CREATE INDEX print_batches_pdf ON print_batches (pdf_sha256);
