-- kozomol schema v1 for PostgreSQL. Instants are timestamptz (UTC).
--
-- The tables that ingest fills in bulk (cases, case_frames, audit_log) carry no
-- foreign keys: each key check is a trigger per row, which cost more than the inserts
-- themselves. Their parents are written in the same transaction and never deleted,
-- and record_cases checks the cameras of a batch itself.

CREATE TABLE cameras (
    camera_id       TEXT PRIMARY KEY,
    public_key      BYTEA NOT NULL CHECK (length(public_key) = 32),
    device_serial   TEXT NOT NULL,
    site_id         TEXT NOT NULL,
    site_lat_e6     INTEGER NOT NULL,
    site_lon_e6     INTEGER NOT NULL,
    site_address    TEXT NOT NULL,
    site_direction  TEXT NOT NULL,
    site_lane       SMALLINT NOT NULL,
    registered_at   TIMESTAMPTZ NOT NULL,
    last_seen       TIMESTAMPTZ,
    online          BOOLEAN NOT NULL DEFAULT FALSE,
    outbox_depth    BIGINT,
    clock_offset_ms BIGINT,
    status_at       TIMESTAMPTZ
);

CREATE INDEX cameras_device_serial ON cameras (device_serial);

CREATE TABLE calibration_certificates (
    device_serial TEXT NOT NULL,
    number        TEXT NOT NULL,
    valid_from    DATE NOT NULL,
    valid_until   DATE NOT NULL,
    PRIMARY KEY (device_serial, number)
);

CREATE TABLE cases (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id            UUID NOT NULL,
    camera_id           TEXT NOT NULL,
    captured_at         TIMESTAMPTZ NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL,
    kind                TEXT NOT NULL,
    state               TEXT NOT NULL,
    plate               TEXT,
    enforceable         BOOLEAN NOT NULL,
    enforceability_note TEXT,
    fingerprint         BYTEA NOT NULL CHECK (length(fingerprint) = 32),
    event               JSONB NOT NULL,
    UNIQUE (camera_id, event_id)
);

CREATE INDEX cases_state ON cases (state, id);
CREATE INDEX cases_camera ON cases (camera_id, id);
CREATE INDEX cases_plate ON cases (plate, id);
CREATE INDEX cases_captured_at ON cases (captured_at);

CREATE TABLE evidence_blobs (
    sha256      BYTEA PRIMARY KEY CHECK (length(sha256) = 32),
    segment     TEXT NOT NULL,
    byte_offset BIGINT NOT NULL,
    byte_len    BIGINT NOT NULL
);

CREATE TABLE case_frames (
    case_id BIGINT NOT NULL,
    idx     INTEGER NOT NULL,
    role    TEXT NOT NULL,
    sha256  BYTEA NOT NULL,
    PRIMARY KEY (case_id, idx)
);

-- Rows of one batch form a hash chain (see store/src/audit.rs).
CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id   UUID NOT NULL,
    case_id    BIGINT,
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    detail     TEXT,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);

CREATE INDEX audit_log_case ON audit_log (case_id, id);
CREATE INDEX audit_log_batch ON audit_log (batch_id, id);

CREATE TABLE dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL,
    topic       TEXT NOT NULL,
    camera_id   TEXT,
    event_id    TEXT,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    raw_len     BIGINT NOT NULL,
    raw         BYTEA NOT NULL
);

CREATE TABLE accounts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    token_sha256 BYTEA PRIMARY KEY CHECK (length(token_sha256) = 32),
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    label        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX api_tokens_account ON api_tokens (account_id);
