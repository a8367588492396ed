-- kozomol schema v5 for PostgreSQL: delivering issued resolutions.
--
-- The outbox is the deliveries table: one row per resolution and channel + address,
-- planned in the transaction that records the resolution, so nothing issued can miss
-- its delivery. Workers claim due rows of one channel under a lease (FOR UPDATE SKIP
-- LOCKED, leases and retry times on the server's clock), and every attempt, with its
-- outcome and proof, is kept in delivery_attempts. The first PROVEN delivery of a
-- resolution is copied onto it (resolutions.delivered_at): that instant starts the
-- discount and appeal clocks.

-- Contacts citizens gave for notices, by the owner id owner lookups name (PIN or
-- INN). Checked before they are stored (kozomol_core::ContactAddress).
CREATE TABLE owner_contacts (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id  TEXT NOT NULL,
    channel   TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    address   TEXT NOT NULL,
    added_at  TIMESTAMPTZ NOT NULL,
    added_by  TEXT NOT NULL,
    UNIQUE (owner_id, channel, address)
);

-- One merged PDF of many resolutions, printed and posted together; the PDF is evidence
-- (content-addressed, stored once).
CREATE TABLE print_batches (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL,
    pdf_sha256  BYTEA NOT NULL REFERENCES evidence_blobs (sha256),
    pages       INTEGER NOT NULL CHECK (pages > 0)
);

-- The outbox. address: the phone number, the e-mail address, the postal address, or
-- for a delivery another system reported, that system's name. A row is due when it is
-- queued (or sending under an expired lease: its worker died mid-send) and
-- next_attempt_at has passed; a sent row with next_attempt_at waits for a status
-- check (SMS), one without it waits for a proof from outside (a return receipt).
CREATE TABLE deliveries (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resolution_number  TEXT NOT NULL REFERENCES resolutions (number),
    case_id            BIGINT NOT NULL REFERENCES cases (id),
    channel            TEXT NOT NULL CHECK (channel IN ('sms', 'email', 'post', 'portal')),
    address            TEXT NOT NULL,
    state              TEXT NOT NULL
        CHECK (state IN ('queued', 'sending', 'sent', 'delivered', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TIMESTAMPTZ,
    worker             TEXT,
    lease_until        TIMESTAMPTZ,
    last_error         TEXT,
    external_id        TEXT,
    batch_id           BIGINT REFERENCES print_batches (id),
    batch_page         INTEGER,
    created_at         TIMESTAMPTZ NOT NULL,
    sent_at            TIMESTAMPTZ,
    delivered_at       TIMESTAMPTZ,
    proof              JSONB,
    UNIQUE (resolution_number, channel, address),
    CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
);

-- The claim order of each channel's due rows (queries spell the states as literals,
-- which a generic plan needs to use a partial index), lookups by the channel's own
-- id, and a batch's letters.
CREATE INDEX deliveries_due ON deliveries (channel, next_attempt_at)
    WHERE state IN ('queued', 'sending', 'sent');
CREATE INDEX deliveries_external ON deliveries (channel, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX deliveries_batch ON deliveries (batch_id) WHERE batch_id IS NOT NULL;

-- Every attempt: sent (with the channel's id and proof of hand-over), failed (with the
-- error), delivered (the proof), unconfirmed (no proof came in time).
CREATE TABLE delivery_attempts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  BIGINT NOT NULL REFERENCES deliveries (id),
    attempt      INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    outcome      TEXT NOT NULL
        CHECK (outcome IN ('sent', 'failed', 'delivered', 'unconfirmed')),
    at           TIMESTAMPTZ NOT NULL,
    external_id  TEXT,
    error        TEXT,
    proof        JSONB
);

CREATE INDEX delivery_attempts_of ON delivery_attempts (delivery_id, id);

-- The first proven delivery of the resolution, and by which channel. Constant
-- defaults (NULL) rewrite nothing.
ALTER TABLE resolutions
    ADD COLUMN delivered_at  TIMESTAMPTZ,
    ADD COLUMN delivered_via TEXT;
