-- kozomol schema v1 for SQLite. Instants are INTEGER unix milliseconds (UTC);
-- calendar dates are TEXT 'YYYY-MM-DD'; hashes and keys are BLOBs.

CREATE TABLE cameras (
    camera_id       TEXT PRIMARY KEY NOT NULL,
    public_key      BLOB NOT NULL CHECK (length(public_key) = 32),
    device_serial   TEXT NOT NULL,
    site_id         TEXT NOT NULL,
    site_lat_e6     INTEGER NOT NULL,
    site_lon_e6     INTEGER NOT NULL,
    site_address    TEXT NOT NULL,
    site_direction  TEXT NOT NULL,
    site_lane       INTEGER NOT NULL,
    registered_at   INTEGER NOT NULL,
    last_seen       INTEGER,
    online          INTEGER NOT NULL DEFAULT 0,
    outbox_depth    INTEGER,
    clock_offset_ms INTEGER,
    status_at       INTEGER
) STRICT;

CREATE INDEX cameras_device_serial ON cameras (device_serial);

CREATE TABLE calibration_certificates (
    device_serial TEXT NOT NULL,
    number        TEXT NOT NULL,
    valid_from    TEXT NOT NULL,
    valid_until   TEXT NOT NULL,
    PRIMARY KEY (device_serial, number)
) STRICT, WITHOUT ROWID;

-- AUTOINCREMENT: a case id is never reused, even after the newest row is removed,
-- because it travels to Tunduk and onto printed resolutions.
CREATE TABLE cases (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id            TEXT NOT NULL,
    camera_id           TEXT NOT NULL REFERENCES cameras (camera_id),
    captured_at         INTEGER NOT NULL,
    received_at         INTEGER NOT NULL,
    kind                TEXT NOT NULL,
    state               TEXT NOT NULL,
    plate               TEXT,
    enforceable         INTEGER NOT NULL,
    enforceability_note TEXT,
    fingerprint         BLOB NOT NULL CHECK (length(fingerprint) = 32),
    event               TEXT NOT NULL,
    UNIQUE (camera_id, event_id)
) STRICT;

CREATE INDEX cases_state ON cases (state, id);
CREATE INDEX cases_camera ON cases (camera_id, id);
CREATE INDEX cases_plate ON cases (plate, id);
CREATE INDEX cases_captured_at ON cases (captured_at);

CREATE TABLE evidence_blobs (
    sha256      BLOB PRIMARY KEY NOT NULL CHECK (length(sha256) = 32),
    segment     TEXT NOT NULL,
    byte_offset INTEGER NOT NULL,
    byte_len    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE case_frames (
    case_id INTEGER NOT NULL REFERENCES cases (id),
    idx     INTEGER NOT NULL,
    role    TEXT NOT NULL,
    sha256  BLOB NOT NULL REFERENCES evidence_blobs (sha256),
    PRIMARY KEY (case_id, idx)
) STRICT, WITHOUT ROWID;

-- Rows of one batch form a hash chain (see store/src/audit.rs).
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id   TEXT NOT NULL,
    case_id    INTEGER REFERENCES cases (id),
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    detail     TEXT,
    prev_hash  BLOB NOT NULL,
    hash       BLOB NOT NULL
) STRICT;

CREATE INDEX audit_log_case ON audit_log (case_id, id);
CREATE INDEX audit_log_batch ON audit_log (batch_id, id);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    camera_id   TEXT,
    event_id    TEXT,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    raw_len     INTEGER NOT NULL,
    raw         BLOB NOT NULL
) STRICT;

CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    login         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE api_tokens (
    token_sha256 BLOB PRIMARY KEY NOT NULL CHECK (length(token_sha256) = 32),
    account_id   INTEGER NOT NULL REFERENCES accounts (id),
    label        TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX api_tokens_account ON api_tokens (account_id);
