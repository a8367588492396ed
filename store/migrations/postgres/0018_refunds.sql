-- kozomol schema v18 for PostgreSQL: refunds with their amounts, of excess too, settled.
--
-- A refund request now says how much goes back and why: `annulled` / `voided` (one per
-- case: the money the case took, less its excess, owed apart) or `excess` (what the
-- case's payments brought beyond the fine, on the payment that brought it). Finance
-- settles each — `refunded` with the bank's or provider's reference, or `cancelled` —
-- once; a reversal `withdraws` the excess it no longer leaves.
ALTER TABLE refund_requests DROP CONSTRAINT refund_requests_case_id_key;
ALTER TABLE refund_requests DROP CONSTRAINT refund_requests_cause_check;
ALTER TABLE refund_requests DROP CONSTRAINT refund_requests_state_check;
ALTER TABLE refund_requests ADD CONSTRAINT refund_requests_state_check
    CHECK (state IN ('queued', 'refunded', 'cancelled', 'withdrawn'));
ALTER TABLE refund_requests ADD CONSTRAINT refund_requests_cause_check
    CHECK (cause IN ('annulled', 'voided', 'excess'));
ALTER TABLE refund_requests ADD COLUMN payment_id BIGINT REFERENCES payments (id);
ALTER TABLE refund_requests ADD COLUMN amount_minor BIGINT;
ALTER TABLE refund_requests ADD COLUMN currency TEXT;
ALTER TABLE refund_requests ADD COLUMN settled_at TIMESTAMPTZ;
ALTER TABLE refund_requests ADD COLUMN settled_by TEXT;
ALTER TABLE refund_requests ADD COLUMN reference TEXT;
ALTER TABLE refund_requests ADD COLUMN note TEXT;
UPDATE refund_requests r SET
    amount_minor = (SELECT coalesce(sum(p.amount_minor - p.excess_minor), 0) FROM payments p
                    WHERE p.case_id = r.case_id AND p.reversed_at IS NULL),
    currency = (SELECT s.currency FROM resolutions s WHERE s.number = r.resolution_number),
    settled_at = CASE WHEN r.state = 'queued' THEN NULL ELSE r.requested_at END;
-- The excess taken before v18 is queued now, so none is forgotten (the requests above
-- leave it out).
INSERT INTO refund_requests (case_id, resolution_number, cause, detail, requested_at,
    requested_by, state, payment_id, amount_minor, currency)
SELECT p.case_id, p.resolution_number, 'excess',
    'payment ' || p.id || ' paid more than the fine', now(), 'migration', 'queued',
    p.id, p.excess_minor, p.currency
FROM payments p WHERE p.excess_minor > 0 AND p.reversed_at IS NULL ORDER BY p.id;
ALTER TABLE refund_requests ALTER COLUMN amount_minor SET NOT NULL;
ALTER TABLE refund_requests ALTER COLUMN currency SET NOT NULL;
ALTER TABLE refund_requests ADD CHECK ((cause = 'excess') = (payment_id IS NOT NULL));
ALTER TABLE refund_requests ADD CHECK ((state = 'queued') = (settled_at IS NULL));
CREATE UNIQUE INDEX refund_requests_per_case ON refund_requests (case_id)
    WHERE cause <> 'excess';
CREATE UNIQUE INDEX refund_requests_excess ON refund_requests (payment_id)
    WHERE cause = 'excess' AND state = 'queued';
