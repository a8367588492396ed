-- kozomol schema v3 for PostgreSQL: review decisions.
--
-- Every decision on a case (the machine's auto-approval, a reviewer's, a
-- supervisor's) is one row here, written in the same transaction as the case's state
-- move and its audit row. decided_plate on the case is the plate the fine will name:
-- set when a decision proposes or approves one; the camera's read stays in `plate`.

ALTER TABLE cases ADD COLUMN decided_plate TEXT;

CREATE TABLE reviews (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id    BIGINT NOT NULL REFERENCES cases (id),
    tier       TEXT NOT NULL,
    reviewer   TEXT NOT NULL,
    decision   TEXT NOT NULL,
    reason     TEXT,
    plate      TEXT,
    note       TEXT,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,
    CHECK ((decision = 'reject') = (reason IS NOT NULL))
);

CREATE INDEX reviews_case ON reviews (case_id, id);
