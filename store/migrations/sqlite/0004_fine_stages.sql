-- kozomol schema v4 for SQLite: the stages after review.
--
-- Each stage's queue is the cases in its state (approved: owner lookup; owner_found:
-- issuing), with one set of lease columns on the case row shared by the stages (a
-- case is in one stage at a time), as recognition's lease works for 'received'.

ALTER TABLE cases ADD COLUMN stage_worker TEXT;
ALTER TABLE cases ADD COLUMN stage_lease_until INTEGER;
ALTER TABLE cases ADD COLUMN stage_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN stage_error TEXT;

-- The owner lookup of a case: who the registry names, or why nobody (then the case
-- waits in owner_unknown with the reason). owner_id is the PIN or the company's INN.
CREATE TABLE owner_lookups (
    case_id       INTEGER PRIMARY KEY NOT NULL REFERENCES cases (id),
    outcome       TEXT NOT NULL,
    owner_kind    TEXT,
    owner_id      TEXT,
    owner_name    TEXT,
    owner_address TEXT,
    vehicle       TEXT NOT NULL,
    reason        TEXT,
    exchange_id   TEXT,
    looked_up_at  INTEGER NOT NULL,
    CHECK ((outcome = 'found') = (owner_id IS NOT NULL))
) STRICT;

-- Resolution numbers per issuer and year: next is the sequence the next one takes. A
-- case keeps the number reserved for it, so a retry never skips or repeats one.
CREATE TABLE resolution_counters (
    issuer TEXT NOT NULL,
    year   INTEGER NOT NULL,
    next   INTEGER NOT NULL,
    PRIMARY KEY (issuer, year)
) STRICT, WITHOUT ROWID;

CREATE TABLE resolution_numbers (
    case_id  INTEGER PRIMARY KEY NOT NULL REFERENCES cases (id),
    issuer   TEXT NOT NULL,
    year     INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    UNIQUE (issuer, year, sequence)
) STRICT;

-- The issued document: what it says, its PDF (content-addressed evidence, stored once,
-- never re-rendered) and the detached signature over the PDF's bytes.
CREATE TABLE resolutions (
    number            TEXT PRIMARY KEY NOT NULL,
    case_id           INTEGER NOT NULL UNIQUE REFERENCES resolution_numbers (case_id),
    payment_code      TEXT NOT NULL UNIQUE,
    jurisdiction      TEXT NOT NULL,
    article           TEXT NOT NULL,
    units             INTEGER NOT NULL,
    amount_minor      INTEGER NOT NULL CHECK (amount_minor > 0),
    discounted_minor  INTEGER,
    currency          TEXT NOT NULL,
    issued_at         INTEGER NOT NULL,
    pdf_sha256        BLOB NOT NULL REFERENCES evidence_blobs (sha256),
    signature         BLOB NOT NULL,
    signature_key_id  TEXT NOT NULL,
    signer            TEXT NOT NULL
) STRICT;
