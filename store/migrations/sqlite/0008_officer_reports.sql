-- kozomol schema v8 for SQLite: violations officers file themselves, and road
-- accident reports.

-- An officer's case has no camera: cases.camera_id becomes nullable. SQLite cannot
-- drop a NOT NULL in place, so the table is rebuilt with the same columns, rows and
-- ids. The migration runs in one transaction, where foreign keys cannot be switched
-- off (and renaming a table would rewrite the references to it), so: the rows are
-- copied aside, the table is dropped and created again under its own name, and the
-- rows go back. Deferred, the references to the dropped rows are counted as broken
-- and then as mended when their rows return, before the commit checks them. The id
-- sequence is carried over too, so no id is ever handed out twice.
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE cases_v7 AS SELECT * FROM cases;
CREATE TEMP TABLE cases_v7_sequence AS SELECT seq FROM sqlite_sequence WHERE name = 'cases';
DROP TABLE cases;

CREATE TABLE cases (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id                TEXT NOT NULL,
    camera_id               TEXT REFERENCES cameras (camera_id),
    captured_at             INTEGER NOT NULL,
    received_at             INTEGER NOT NULL,
    kind                    TEXT NOT NULL,
    state                   TEXT NOT NULL,
    plate                   TEXT,
    enforceable             INTEGER NOT NULL,
    enforceability_note     TEXT,
    fingerprint             BLOB NOT NULL CHECK (length(fingerprint) = 32),
    event                   TEXT NOT NULL,
    recognition_worker      TEXT,
    recognition_lease_until INTEGER,
    recognition_attempts    INTEGER NOT NULL DEFAULT 0,
    recognition_error       TEXT,
    decided_plate           TEXT,
    stage_worker            TEXT,
    stage_lease_until       INTEGER,
    stage_attempts          INTEGER NOT NULL DEFAULT 0,
    stage_error             TEXT,
    UNIQUE (camera_id, event_id)
) STRICT;

INSERT INTO cases (id, event_id, camera_id, captured_at, received_at, kind, state, plate,
    enforceable, enforceability_note, fingerprint, event, recognition_worker,
    recognition_lease_until, recognition_attempts, recognition_error, decided_plate,
    stage_worker, stage_lease_until, stage_attempts, stage_error)
SELECT id, event_id, camera_id, captured_at, received_at, kind, state, plate,
    enforceable, enforceability_note, fingerprint, event, recognition_worker,
    recognition_lease_until, recognition_attempts, recognition_error, decided_plate,
    stage_worker, stage_lease_until, stage_attempts, stage_error
FROM temp.cases_v7 ORDER BY id;

DELETE FROM sqlite_sequence WHERE name = 'cases';
INSERT INTO sqlite_sequence (name, seq) SELECT 'cases', seq FROM temp.cases_v7_sequence;
DROP TABLE temp.cases_v7;
DROP TABLE temp.cases_v7_sequence;

CREATE INDEX cases_state ON cases (state, id);
CREATE INDEX cases_camera ON cases (camera_id, id);
CREATE INDEX cases_plate ON cases (plate, id);
CREATE INDEX cases_captured_at ON cases (captured_at);
CREATE INDEX cases_sightings ON cases (COALESCE(decided_plate, plate), captured_at);
-- An officer's filing is deduplicated by its report id, as a camera's event by
-- (camera, event id): NULL cameras never collide in the UNIQUE above.
CREATE UNIQUE INDEX cases_officer_report ON cases (event_id) WHERE camera_id IS NULL;

-- A road accident as an officer registered it, and where its investigation stands.
CREATE TABLE accidents (
    id             INTEGER PRIMARY KEY NOT NULL,
    report_id      TEXT NOT NULL UNIQUE,
    occurred_at    INTEGER NOT NULL,
    address        TEXT NOT NULL,
    lat_e6         INTEGER,
    lon_e6         INTEGER,
    description    TEXT NOT NULL,
    state          TEXT NOT NULL
                   CHECK (state IN ('registered', 'under_investigation', 'closed')),
    outcome        TEXT
                   CHECK (outcome IN ('violations_filed', 'no_violation', 'referred_to_court')),
    registered_by  TEXT NOT NULL,
    registered_at  INTEGER NOT NULL,
    CHECK ((state = 'closed') = (outcome IS NOT NULL)),
    CHECK ((lat_e6 IS NULL) = (lon_e6 IS NULL))
) STRICT;

CREATE INDEX accidents_state ON accidents (state, id);

CREATE TABLE accident_vehicles (
    accident_id  INTEGER NOT NULL REFERENCES accidents (id),
    position     INTEGER NOT NULL,
    plate        TEXT NOT NULL,
    make         TEXT,
    model        TEXT,
    damage       TEXT NOT NULL,
    PRIMARY KEY (accident_id, position)
) STRICT;

CREATE TABLE accident_participants (
    accident_id  INTEGER NOT NULL REFERENCES accidents (id),
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('driver', 'passenger', 'pedestrian', 'witness')),
    vehicle      INTEGER,
    pin          TEXT,
    injury       TEXT NOT NULL CHECK (injury IN ('none', 'light', 'serious', 'fatal')),
    PRIMARY KEY (accident_id, position),
    FOREIGN KEY (accident_id, vehicle) REFERENCES accident_vehicles (accident_id, position)
) STRICT;

-- Photos and the scheme, kept as evidence (content-addressed).
CREATE TABLE accident_files (
    accident_id   INTEGER NOT NULL REFERENCES accidents (id),
    position      INTEGER NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('photo', 'scheme')),
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        BLOB NOT NULL REFERENCES evidence_blobs (sha256),
    PRIMARY KEY (accident_id, position)
) STRICT;

-- Every move of an accident's investigation; the audit log keeps the same, chained.
CREATE TABLE accident_moves (
    id           INTEGER PRIMARY KEY NOT NULL,
    accident_id  INTEGER NOT NULL REFERENCES accidents (id),
    from_state   TEXT,
    to_state     TEXT NOT NULL,
    outcome      TEXT,
    actor        TEXT NOT NULL,
    note         TEXT,
    at           INTEGER NOT NULL
) STRICT;

CREATE INDEX accident_moves_accident ON accident_moves (accident_id, id);

-- Who filed an officer's case, and the accident it came from.
CREATE TABLE officer_filings (
    case_id      INTEGER PRIMARY KEY NOT NULL REFERENCES cases (id),
    officer      TEXT NOT NULL,
    accident_id  INTEGER REFERENCES accidents (id),
    filed_at     INTEGER NOT NULL
) STRICT;

CREATE INDEX officer_filings_accident ON officer_filings (accident_id) WHERE accident_id IS NOT NULL;
