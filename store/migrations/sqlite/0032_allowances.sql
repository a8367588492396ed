-- kozomol schema v32: budgets of attempts every process shares.
--
-- Failed logins per login and fine lookups per plate were counted in each API
-- process's memory, so replicas behind a load balancer each granted the budget again.
-- One row per key (hashed: a key may name a plate or a login): the instants of its
-- attempts within the window, and when they have all left it (then the row can go).
CREATE TABLE allowances (
    key_hash   BLOB PRIMARY KEY NOT NULL CHECK (length(key_hash) = 32),
    attempts   TEXT NOT NULL,
    full_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX allowances_full ON allowances (full_at);
