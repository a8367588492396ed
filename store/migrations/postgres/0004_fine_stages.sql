-- kozomol schema v4 for PostgreSQL: the stages after review.
--
-- Each stage's queue is the cases in its state (approved: owner lookup; owner_found:
-- issuing), with one set of lease columns on the case row shared by the stages (a
-- case is in one stage at a time), as recognition's lease works for 'received'.

ALTER TABLE cases
    ADD COLUMN stage_worker      TEXT,
    ADD COLUMN stage_lease_until TIMESTAMPTZ,
    ADD COLUMN stage_attempts    INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN stage_error       TEXT;

-- The queues of the stages, in claim order (see 0002 for why partial indexes).
CREATE INDEX cases_owner_lookup_queue ON cases (id) WHERE state = 'approved';
CREATE INDEX cases_issue_queue ON cases (id) WHERE state = 'owner_found';

-- The owner lookup of a case: who the registry names, or why nobody (then the case
-- waits in owner_unknown with the reason). owner_id is the PIN or the company's INN.
CREATE TABLE owner_lookups (
    case_id       BIGINT PRIMARY KEY REFERENCES cases (id),
    outcome       TEXT NOT NULL,
    owner_kind    TEXT,
    owner_id      TEXT,
    owner_name    TEXT,
    owner_address TEXT,
    vehicle       JSONB NOT NULL,
    reason        TEXT,
    exchange_id   TEXT,
    looked_up_at  TIMESTAMPTZ NOT NULL,
    CHECK ((outcome = 'found') = (owner_id IS NOT NULL))
);

-- Resolution numbers per issuer and year: next is the sequence the next one takes. A
-- case keeps the number reserved for it, so a retry never skips or repeats one.
CREATE TABLE resolution_counters (
    issuer TEXT NOT NULL,
    year   INTEGER NOT NULL,
    next   BIGINT NOT NULL,
    PRIMARY KEY (issuer, year)
);

CREATE TABLE resolution_numbers (
    case_id  BIGINT PRIMARY KEY REFERENCES cases (id),
    issuer   TEXT NOT NULL,
    year     INTEGER NOT NULL,
    sequence BIGINT NOT NULL,
    UNIQUE (issuer, year, sequence)
);

-- The issued document: what it says, its PDF (content-addressed evidence, stored once,
-- never re-rendered) and the detached signature over the PDF's bytes.
CREATE TABLE resolutions (
    number            TEXT PRIMARY KEY,
    case_id           BIGINT NOT NULL UNIQUE REFERENCES resolution_numbers (case_id),
    payment_code      TEXT NOT NULL UNIQUE,
    jurisdiction      TEXT NOT NULL,
    article           TEXT NOT NULL,
    units             INTEGER NOT NULL,
    amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
    discounted_minor  BIGINT,
    currency          TEXT NOT NULL,
    issued_at         TIMESTAMPTZ NOT NULL,
    pdf_sha256        BYTEA NOT NULL REFERENCES evidence_blobs (sha256),
    signature         BYTEA NOT NULL,
    signature_key_id  TEXT NOT NULL,
    signer            TEXT NOT NULL
);
