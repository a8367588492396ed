-- kozomol schema v23: the trace a case belongs to.
--
-- Ingest stores the W3C traceparent of its span for the event (a child of the
-- camera's capture), so that recognition, review and issuing, claimed later by any
-- process, join the same trace (docs/operations.md "Traces"). NULL where no trace
-- was carried or exported. A plain column with no index: read by case id only.
ALTER TABLE cases ADD COLUMN trace_parent TEXT;
