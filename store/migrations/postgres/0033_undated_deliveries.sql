-- kozomol schema v33: deliveries proven after the fine was paid.
--
-- A fine paid before its delivery was proven stays paid when the proof comes, and the
-- dating stage claimed only `delivered` cases: such a case never got its clocks, so its
-- appeal window never closed. The proof now leaves the case here, and dating claims it
-- (paid: dated in place; back in `issued` after a reversal: moved to `delivered`).
CREATE TABLE undated_deliveries (
    case_id    BIGINT PRIMARY KEY REFERENCES cases (id)
);
INSERT INTO undated_deliveries (case_id)
SELECT c.id FROM cases c JOIN resolutions r ON r.case_id = c.id
WHERE r.delivered_at IS NOT NULL
  AND c.state IN ('issued', 'paid', 'paid_discounted')
  AND NOT EXISTS (SELECT 1 FROM case_clocks k WHERE k.case_id = c.id);
