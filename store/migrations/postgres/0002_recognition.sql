-- kozomol schema v2 for PostgreSQL: the plate-recognition queue and its results.
--
-- The queue is the cases in state 'received' themselves, with lease columns on the
-- case row: ingest writes cases exactly as before, and a claim is one UPDATE of the
-- rows it takes (FOR UPDATE SKIP LOCKED). A case is free when
-- recognition_lease_until is NULL (never claimed) or in the past (its worker crashed,
-- or a failure's retry delay has passed). Leases are measured by the server's clock,
-- the one clock every recognizer host shares.
--
-- Adding columns with constant defaults rewrites nothing; building the index holds
-- off writes to cases for the seconds it takes on a large table.

ALTER TABLE cases
    ADD COLUMN recognition_worker      TEXT,
    ADD COLUMN recognition_lease_until TIMESTAMPTZ,
    ADD COLUMN recognition_attempts    INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN recognition_error       TEXT;

-- Only the queued cases, in claim order. Needed even beside cases_state (state, id):
-- with 10^6 cases, 90 % of them past 'received', a generic plan for the claim chose
-- to walk the primary key and filter out those 900,000 (0.5 s); with this index it
-- reads just the queue (about 1 ms). The lease is left out: a locking claim reads
-- each row anyway, and an indexed lease would make every claim update the index.
-- Queries spell the state as the literal 'received' (not a parameter), which a
-- generic plan needs to use a partial index.
CREATE INDEX cases_recognition_queue ON cases (id) WHERE state = 'received';

-- One row per case that left the queue: a read stored by complete_recognition, or
-- the error fail_recognition gave up on (then plate and model are NULL). Confidences
-- are thousandths (0-1000) as in the camera protocol; the JSON columns hold arrays:
-- char_confidences [912, ...], candidates [{"text", "confidence_milli", "country"}].
-- No foreign keys, as for the other tables filled once per case (see 0001).
CREATE TABLE recognitions (
    case_id                 BIGINT PRIMARY KEY,
    decision                TEXT NOT NULL,
    worker                  TEXT NOT NULL,
    attempts                BIGINT NOT NULL,
    decided_at              TIMESTAMPTZ NOT NULL,
    plate                   TEXT,
    country                 TEXT,
    confidence_milli        BIGINT CHECK (confidence_milli BETWEEN 0 AND 1000),
    char_confidences        JSONB NOT NULL,
    candidates              JSONB NOT NULL,
    box_frame_idx           BIGINT,
    box_x                   BIGINT,
    box_y                   BIGINT,
    box_w                   BIGINT,
    box_h                   BIGINT,
    crop_sha256             BYTEA CHECK (length(crop_sha256) = 32),
    model                   TEXT,
    camera_plate            TEXT,
    camera_confidence_milli BIGINT,
    camera_country          TEXT,
    agreement               BOOLEAN,
    error                   TEXT,
    CHECK ((plate IS NULL) = (confidence_milli IS NULL)),
    CHECK ((box_frame_idx IS NULL) = (box_x IS NULL)
        AND (box_x IS NULL) = (box_y IS NULL)
        AND (box_y IS NULL) = (box_w IS NULL)
        AND (box_w IS NULL) = (box_h IS NULL))
);
