-- kozomol schema v2 for SQLite: the plate-recognition queue and its results.
--
-- The queue is the cases in state 'received' themselves, with lease columns on the
-- case row: ingest writes cases exactly as before, and a claim is one UPDATE of the
-- rows it takes. A case is free when recognition_lease_until is NULL (never claimed)
-- or in the past (its worker crashed, or a failure's retry delay has passed).

ALTER TABLE cases ADD COLUMN recognition_worker TEXT;
ALTER TABLE cases ADD COLUMN recognition_lease_until INTEGER;
ALTER TABLE cases ADD COLUMN recognition_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN recognition_error TEXT;

-- No index of its own: a claim walks cases_state (state, id) from 0001 over the
-- queued cases in id order. With 10^6 cases SQLite's planner picks it with or without
-- ANALYZE statistics, and it never picked a partial index on state = 'received' (so
-- that would only cost ingest a write per case).

-- One row per case that left the queue: a read stored by complete_recognition, or
-- the error fail_recognition gave up on (then plate and model are NULL). Confidences
-- are thousandths (0-1000) as in the camera protocol; the JSON columns hold arrays:
-- char_confidences [912, ...], candidates [{"text", "confidence_milli", "country"}].
CREATE TABLE recognitions (
    case_id                 INTEGER PRIMARY KEY NOT NULL REFERENCES cases (id),
    decision                TEXT NOT NULL,
    worker                  TEXT NOT NULL,
    attempts                INTEGER NOT NULL,
    decided_at              INTEGER NOT NULL,
    plate                   TEXT,
    country                 TEXT,
    confidence_milli        INTEGER CHECK (confidence_milli BETWEEN 0 AND 1000),
    char_confidences        TEXT NOT NULL,
    candidates              TEXT NOT NULL,
    box_frame_idx           INTEGER,
    box_x                   INTEGER,
    box_y                   INTEGER,
    box_w                   INTEGER,
    box_h                   INTEGER,
    crop_sha256             BLOB REFERENCES evidence_blobs (sha256),
    model                   TEXT,
    camera_plate            TEXT,
    camera_confidence_milli INTEGER,
    camera_country          TEXT,
    agreement               INTEGER,
    error                   TEXT,
    CHECK ((plate IS NULL) = (confidence_milli IS NULL)),
    CHECK ((box_frame_idx IS NULL) = (box_x IS NULL)
        AND (box_x IS NULL) = (box_y IS NULL)
        AND (box_y IS NULL) = (box_w IS NULL)
        AND (box_w IS NULL) = (box_h IS NULL))
) STRICT;
