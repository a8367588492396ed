-- kozomol schema v15 for SQLite: bank statements reconciled with the ledger.
--
-- Every credit of an imported statement, once per the account's own reference of it:
-- applied as a payment of its own, matched to the payment a bank or provider reported
-- earlier (the same money seen twice counts once), or queued for finance (no code,
-- several codes, an unknown code, or money the fine cannot take). The payment codes a
-- credit names are kept apart, so a fine with a queued credit naming it is not
-- escalated. A payment reported over a second channel (a statement first, SOAP later)
-- keeps that report in payment_reports, so the report repeated is that payment too.
CREATE TABLE statement_lines (
    id                 INTEGER PRIMARY KEY NOT NULL,
    account            TEXT NOT NULL,
    bank_reference     TEXT NOT NULL,
    statement_id       TEXT NOT NULL,
    booked_on          TEXT NOT NULL,
    amount_minor       INTEGER NOT NULL CHECK (amount_minor > 0),
    currency           TEXT NOT NULL,
    remittance         TEXT NOT NULL,
    payer              TEXT,
    status             TEXT NOT NULL CHECK (status IN ('applied', 'matched', 'unmatched', 'ambiguous', 'refused', 'resolved')),
    payment_id         INTEGER REFERENCES payments (id),
    detail             TEXT NOT NULL,
    imported_at        INTEGER NOT NULL,
    imported_by        TEXT NOT NULL,
    resolved_at        INTEGER,
    resolved_by        TEXT,
    UNIQUE (account, bank_reference)
) STRICT;

CREATE INDEX statement_lines_payment ON statement_lines (payment_id);
CREATE INDEX statement_lines_booked ON statement_lines (booked_on);
CREATE INDEX statement_lines_queue ON statement_lines (id)
    WHERE status IN ('unmatched', 'ambiguous', 'refused');

CREATE TABLE statement_line_codes (
    line_id            INTEGER NOT NULL REFERENCES statement_lines (id),
    payment_code       TEXT NOT NULL,
    PRIMARY KEY (line_id, payment_code)
) STRICT;

CREATE INDEX statement_line_codes_code ON statement_line_codes (payment_code);

CREATE TABLE payment_reports (
    payment_id         INTEGER NOT NULL REFERENCES payments (id),
    channel            TEXT NOT NULL CHECK (channel IN ('soap', 'api', 'statement')),
    source             TEXT NOT NULL,
    external_id        TEXT NOT NULL,
    reported_at        INTEGER NOT NULL,
    UNIQUE (channel, source, external_id)
) STRICT;

CREATE INDEX payment_reports_payment ON payment_reports (payment_id);
