-- kozomol schema v18 for SQLite: refunds with their amounts, of excess too, settled.
--
-- A refund request now says how much goes back and why: `annulled` / `voided` (one per
-- case: the money the case took, less its excess, owed apart) or `excess` (what the
-- case's payments brought beyond the fine, on the payment that brought it). Finance
-- settles each — `refunded` with the bank's or provider's reference, or `cancelled` —
-- once; a reversal `withdraws` the excess it no longer leaves. SQLite changes no CHECK
-- or UNIQUE in place: the table is made again (nothing refers to it).
CREATE TABLE refund_requests_v18 (
    id                 INTEGER PRIMARY KEY NOT NULL,
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    resolution_number  TEXT NOT NULL REFERENCES resolutions (number),
    cause              TEXT NOT NULL CHECK (cause IN ('annulled', 'voided', 'excess')),
    detail             TEXT NOT NULL,
    requested_at       INTEGER NOT NULL,
    requested_by       TEXT NOT NULL,
    state              TEXT NOT NULL
        CHECK (state IN ('queued', 'refunded', 'cancelled', 'withdrawn')),
    payment_id         INTEGER REFERENCES payments (id),
    amount_minor       INTEGER NOT NULL,
    currency           TEXT NOT NULL,
    settled_at         INTEGER,
    settled_by         TEXT,
    reference          TEXT,
    note               TEXT,
    CHECK ((cause = 'excess') = (payment_id IS NOT NULL)),
    CHECK ((state = 'queued') = (settled_at IS NULL))
) STRICT;
INSERT INTO refund_requests_v18 (id, case_id, resolution_number, cause, detail,
    requested_at, requested_by, state, amount_minor, currency, settled_at)
SELECT r.id, r.case_id, r.resolution_number, r.cause, r.detail, r.requested_at,
    r.requested_by, r.state,
    (SELECT coalesce(sum(p.amount_minor - p.excess_minor), 0) FROM payments p
     WHERE p.case_id = r.case_id AND p.reversed_at IS NULL),
    (SELECT s.currency FROM resolutions s WHERE s.number = r.resolution_number),
    CASE WHEN r.state = 'queued' THEN NULL ELSE r.requested_at END
FROM refund_requests r ORDER BY r.id;
DROP TABLE refund_requests;
ALTER TABLE refund_requests_v18 RENAME TO refund_requests;
-- The excess taken before v18 is queued now, so none is forgotten (the requests above
-- leave it out).
INSERT INTO refund_requests (case_id, resolution_number, cause, detail, requested_at,
    requested_by, state, payment_id, amount_minor, currency)
SELECT p.case_id, p.resolution_number, 'excess',
    'payment ' || p.id || ' paid more than the fine',
    CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'migration', 'queued',
    p.id, p.excess_minor, p.currency
FROM payments p WHERE p.excess_minor > 0 AND p.reversed_at IS NULL ORDER BY p.id;
CREATE UNIQUE INDEX refund_requests_per_case ON refund_requests (case_id)
    WHERE cause <> 'excess';
CREATE UNIQUE INDEX refund_requests_excess ON refund_requests (payment_id)
    WHERE cause = 'excess' AND state = 'queued';
