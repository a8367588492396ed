-- kozomol schema v12 for SQLite: the payments ledger.
--
-- Every payment reported for a resolution, once per the reporter's own id of it: a
-- report repeated (a retried call, a callback sent again, a statement imported twice)
-- finds its row and changes nothing. from_state and to_state are the case's state
-- before and after the payment (paid, paid_discounted, partially_paid, or unchanged
-- where a part payment moves nothing); excess_minor what was paid beyond the amount
-- due, to be refunded.
CREATE TABLE payments (
    id                 INTEGER PRIMARY KEY NOT NULL,
    resolution_number  TEXT NOT NULL REFERENCES resolutions (number),
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    channel            TEXT NOT NULL CHECK (channel IN ('soap', 'api', 'statement')),
    source             TEXT NOT NULL,
    external_id        TEXT NOT NULL,
    amount_minor       INTEGER NOT NULL CHECK (amount_minor > 0),
    currency           TEXT NOT NULL,
    paid_at            INTEGER NOT NULL,
    posted_at          INTEGER NOT NULL,
    posted_by          TEXT NOT NULL,
    from_state         TEXT NOT NULL,
    to_state           TEXT NOT NULL,
    excess_minor       INTEGER NOT NULL CHECK (excess_minor >= 0),
    UNIQUE (channel, source, external_id)
) STRICT;

CREATE INDEX payments_resolution ON payments (resolution_number, id);
