-- kozomol schema v8 for PostgreSQL: violations officers file themselves, and road
-- accident reports.

-- An officer's case has no camera.
ALTER TABLE cases ALTER COLUMN camera_id DROP NOT NULL;
-- An officer's filing is deduplicated by its report id, as a camera's event by
-- (camera, event id): NULL cameras never collide in that unique constraint.
CREATE UNIQUE INDEX cases_officer_report ON cases (event_id) WHERE camera_id IS NULL;

-- A road accident as an officer registered it, and where its investigation stands.
CREATE TABLE accidents (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id      UUID NOT NULL UNIQUE,
    occurred_at    TIMESTAMPTZ NOT NULL,
    address        TEXT NOT NULL,
    lat_e6         INTEGER,
    lon_e6         INTEGER,
    description    TEXT NOT NULL,
    state          TEXT NOT NULL
                   CHECK (state IN ('registered', 'under_investigation', 'closed')),
    outcome        TEXT
                   CHECK (outcome IN ('violations_filed', 'no_violation', 'referred_to_court')),
    registered_by  TEXT NOT NULL,
    registered_at  TIMESTAMPTZ NOT NULL,
    CHECK ((state = 'closed') = (outcome IS NOT NULL)),
    CHECK ((lat_e6 IS NULL) = (lon_e6 IS NULL))
);

CREATE INDEX accidents_state ON accidents (state, id);

CREATE TABLE accident_vehicles (
    accident_id  BIGINT NOT NULL REFERENCES accidents (id),
    position     BIGINT NOT NULL,
    plate        TEXT NOT NULL,
    make         TEXT,
    model        TEXT,
    damage       TEXT NOT NULL,
    PRIMARY KEY (accident_id, position)
);

CREATE TABLE accident_participants (
    accident_id  BIGINT NOT NULL REFERENCES accidents (id),
    position     BIGINT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('driver', 'passenger', 'pedestrian', 'witness')),
    vehicle      BIGINT,
    pin          TEXT,
    injury       TEXT NOT NULL CHECK (injury IN ('none', 'light', 'serious', 'fatal')),
    PRIMARY KEY (accident_id, position),
    FOREIGN KEY (accident_id, vehicle) REFERENCES accident_vehicles (accident_id, position)
);

-- Photos and the scheme, kept as evidence (content-addressed).
CREATE TABLE accident_files (
    accident_id   BIGINT NOT NULL REFERENCES accidents (id),
    position      BIGINT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('photo', 'scheme')),
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        BYTEA NOT NULL REFERENCES evidence_blobs (sha256),
    PRIMARY KEY (accident_id, position)
);

-- Every move of an accident's investigation; the audit log keeps the same, chained.
CREATE TABLE accident_moves (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    accident_id  BIGINT NOT NULL REFERENCES accidents (id),
    from_state   TEXT,
    to_state     TEXT NOT NULL,
    outcome      TEXT,
    actor        TEXT NOT NULL,
    note         TEXT,
    at           TIMESTAMPTZ NOT NULL
);

CREATE INDEX accident_moves_accident ON accident_moves (accident_id, id);

-- Who filed an officer's case, and the accident it came from.
CREATE TABLE officer_filings (
    case_id      BIGINT PRIMARY KEY REFERENCES cases (id),
    officer      TEXT NOT NULL,
    accident_id  BIGINT REFERENCES accidents (id),
    filed_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX officer_filings_accident ON officer_filings (accident_id) WHERE accident_id IS NOT NULL;
