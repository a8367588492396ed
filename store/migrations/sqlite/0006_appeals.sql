-- kozomol schema v6 for SQLite: a delivered case's clocks, appeals, bulk voids and
-- refund requests.

-- The dates a case's proven delivery set (the catalogue's rules on the delivery date,
-- or on an appeal's rejection), and the first day a deadline move is due, which the
-- deadlines scheduler's index reads. next_wakeup is null once nothing more is due.
CREATE TABLE case_clocks (
    case_id         INTEGER PRIMARY KEY NOT NULL REFERENCES cases (id),
    jurisdiction    TEXT NOT NULL,
    runs_from       TEXT NOT NULL,
    discount_until  TEXT,
    due             TEXT,
    appeal_until    TEXT,
    enforcement_by  TEXT,
    lapses          TEXT,
    discount_open   INTEGER NOT NULL CHECK (discount_open IN (0, 1)),
    next_wakeup     TEXT,
    dated_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX case_clocks_wakeup ON case_clocks (next_wakeup) WHERE next_wakeup IS NOT NULL;

-- An appeal against a resolution. from_state is the state the appeal paused; at most
-- one appeal of a case is open (filed) at a time.
CREATE TABLE appeals (
    id                 INTEGER PRIMARY KEY NOT NULL,
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    resolution_number  TEXT NOT NULL REFERENCES resolutions (number),
    appellant          TEXT NOT NULL,
    contact            TEXT,
    grounds            TEXT NOT NULL,
    filed_at           INTEGER NOT NULL,
    filed_by           TEXT NOT NULL,
    from_state         TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('filed', 'rejected', 'annulled')),
    decided_by         TEXT,
    decided_at         INTEGER,
    decision_note      TEXT,
    CHECK ((state = 'filed') = (decided_at IS NULL))
) STRICT;

CREATE UNIQUE INDEX appeals_open ON appeals (case_id) WHERE state = 'filed';
CREATE INDEX appeals_case ON appeals (case_id, id);

-- The appellant's files, kept as evidence (content-addressed).
CREATE TABLE appeal_attachments (
    appeal_id     INTEGER NOT NULL REFERENCES appeals (id),
    position      INTEGER NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        BLOB NOT NULL REFERENCES evidence_blobs (sha256),
    PRIMARY KEY (appeal_id, position)
) STRICT;

-- Every bulk void: which device, which capture times, why, who, and what it did.
CREATE TABLE bulk_voids (
    id              INTEGER PRIMARY KEY NOT NULL,
    device_serial   TEXT NOT NULL,
    captured_from   INTEGER NOT NULL,
    captured_until  INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    requested_at    INTEGER NOT NULL,
    voided          INTEGER NOT NULL,
    refunds         INTEGER NOT NULL
) STRICT;

-- Money to pay back because the resolution it paid no longer stands; the payments
-- side works the queue. One per case.
CREATE TABLE refund_requests (
    id                 INTEGER PRIMARY KEY NOT NULL,
    case_id            INTEGER NOT NULL UNIQUE REFERENCES cases (id),
    resolution_number  TEXT NOT NULL REFERENCES resolutions (number),
    cause              TEXT NOT NULL CHECK (cause IN ('annulled', 'voided')),
    detail             TEXT NOT NULL,
    requested_at       INTEGER NOT NULL,
    requested_by       TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('queued', 'refunded', 'cancelled'))
) STRICT;
