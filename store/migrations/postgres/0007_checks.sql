-- kozomol schema v7 for PostgreSQL: the checks before issuing.
--
-- The exemption list and the hot list are data an operator manages. Removing an entry
-- keeps its row (removed_at, removed_by), so the audit can always say which entries
-- were in force when a case was checked.

-- Plates and series (glob patterns, normalised) that are not fined from a camera, each
-- with its category, the note it rests on and its validity dates (both included).
CREATE TABLE exemptions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pattern     TEXT NOT NULL CHECK (length(pattern) > 0),
    category    TEXT NOT NULL
                CHECK (category IN ('emergency', 'diplomatic', 'government', 'other')),
    note        TEXT NOT NULL,
    valid_from  DATE,
    valid_until DATE,
    added_by    TEXT NOT NULL,
    added_at    TIMESTAMPTZ NOT NULL,
    removed_at  TIMESTAMPTZ,
    removed_by  TEXT,
    CHECK ((removed_at IS NULL) = (removed_by IS NULL)),
    CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_from <= valid_until)
);

CREATE INDEX exemptions_active ON exemptions (id) WHERE removed_at IS NULL;

-- Stolen and wanted plates: at most one active entry per plate.
CREATE TABLE hot_list (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plate      TEXT NOT NULL CHECK (length(plate) > 0),
    reason     TEXT NOT NULL CHECK (reason IN ('stolen', 'wanted', 'other')),
    note       TEXT NOT NULL,
    listed_at  TIMESTAMPTZ NOT NULL,
    listed_by  TEXT NOT NULL,
    removed_at TIMESTAMPTZ,
    removed_by TEXT,
    CHECK ((removed_at IS NULL) = (removed_by IS NULL))
);

CREATE UNIQUE INDEX hot_list_active ON hot_list (plate) WHERE removed_at IS NULL;

-- What the checks raise for a person to act on: one alert per case and kind.
CREATE TABLE alerts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id         BIGINT NOT NULL REFERENCES cases (id),
    kind            TEXT NOT NULL CHECK (kind IN ('hot_list')),
    detail          JSONB NOT NULL,
    raised_at       TIMESTAMPTZ NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TIMESTAMPTZ,
    CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL)),
    UNIQUE (case_id, kind)
);

CREATE INDEX alerts_open ON alerts (id) WHERE acknowledged_at IS NULL;

-- The sightings of a plate around a capture: the plate the review decided, else the
-- camera's (the duplicate and cloned-plate checks read them by plate and time).
CREATE INDEX cases_sightings ON cases ((COALESCE(decided_plate, plate)), captured_at);
