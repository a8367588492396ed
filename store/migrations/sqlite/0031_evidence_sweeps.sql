-- kozomol schema v31: evidence segments swept for records no row names.
--
-- Bytes can land in a segment with no row ever naming them: an append that failed
-- part-way (its records written, the sync refused), an S3 PUT stored whose answer was
-- lost (the batch went again under another name). A sweep reads each segment left
-- unwritten long enough and queues its records as stored-but-unkept bytes are
-- queued; here it remembers the last write it saw of each segment, so a segment is
-- read again only once it changed (an overwrite).
CREATE TABLE evidence_sweeps (
    segment    TEXT PRIMARY KEY NOT NULL,
    written_at INTEGER NOT NULL,
    swept_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
