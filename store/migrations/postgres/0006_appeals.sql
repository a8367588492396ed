-- kozomol schema v6 for PostgreSQL: a delivered case's clocks, appeals, bulk voids and
-- refund requests.

-- The dates a case's proven delivery set (the catalogue's rules on the delivery date,
-- or on an appeal's rejection), and the first day a deadline move is due, which the
-- deadlines scheduler's index reads. next_wakeup is null once nothing more is due.
CREATE TABLE case_clocks (
    case_id         BIGINT PRIMARY KEY REFERENCES cases (id),
    jurisdiction    TEXT NOT NULL,
    runs_from       DATE NOT NULL,
    discount_until  DATE,
    due             DATE,
    appeal_until    DATE,
    enforcement_by  DATE,
    lapses          DATE,
    discount_open   BOOLEAN NOT NULL,
    next_wakeup     DATE,
    dated_at        TIMESTAMPTZ NOT NULL
);

CREATE INDEX case_clocks_wakeup ON case_clocks (next_wakeup) WHERE next_wakeup IS NOT NULL;

-- An appeal against a resolution. from_state is the state the appeal paused; at most
-- one appeal of a case is open (filed) at a time.
CREATE TABLE appeals (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id            BIGINT NOT NULL REFERENCES cases (id),
    resolution_number  TEXT NOT NULL REFERENCES resolutions (number),
    appellant          TEXT NOT NULL,
    contact            TEXT,
    grounds            TEXT NOT NULL,
    filed_at           TIMESTAMPTZ NOT NULL,
    filed_by           TEXT NOT NULL,
    from_state         TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('filed', 'rejected', 'annulled')),
    decided_by         TEXT,
    decided_at         TIMESTAMPTZ,
    decision_note      TEXT,
    CHECK ((state = 'filed') = (decided_at IS NULL))
);

CREATE UNIQUE INDEX appeals_open ON appeals (case_id) WHERE state = 'filed';
CREATE INDEX appeals_case ON appeals (case_id, id);

-- The appellant's files, kept as evidence (content-addressed).
CREATE TABLE appeal_attachments (
    appeal_id     BIGINT NOT NULL REFERENCES appeals (id),
    position      BIGINT NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        BYTEA NOT NULL REFERENCES evidence_blobs (sha256),
    PRIMARY KEY (appeal_id, position)
);

-- Every bulk void: which device, which capture times, why, who, and what it did.
CREATE TABLE bulk_voids (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_serial   TEXT NOT NULL,
    captured_from   TIMESTAMPTZ NOT NULL,
    captured_until  TIMESTAMPTZ NOT NULL,
    reason          TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    requested_at    TIMESTAMPTZ NOT NULL,
    voided          BIGINT NOT NULL,
    refunds         BIGINT NOT NULL
);

-- Money to pay back because the resolution it paid no longer stands; the payments
-- side works the queue. One per case.
CREATE TABLE refund_requests (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id            BIGINT NOT NULL UNIQUE REFERENCES cases (id),
    resolution_number  TEXT NOT NULL REFERENCES resolutions (number),
    cause              TEXT NOT NULL CHECK (cause IN ('annulled', 'voided')),
    detail             TEXT NOT NULL,
    requested_at       TIMESTAMPTZ NOT NULL,
    requested_by       TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('queued', 'refunded', 'cancelled'))
);
