-- kozomol schema v14 for SQLite: the REST payment API of payment providers.
--
-- A payment intent is a provider's offer to pay one fine a set amount (the amount due
-- when it was made, or a part of it, or more); the payment its callback reports is
-- checked against it and marks it succeeded in the ledger's transaction (reversed
-- with it). An
-- idempotency key keeps the first response to a provider's request, replayed when the
-- request is sent again. Every callback received is kept with what became of it, the
-- refused ones (forged, stale, wrong) too.
CREATE TABLE payment_intents (
    id                 TEXT PRIMARY KEY NOT NULL,
    provider           TEXT NOT NULL,
    payment_code       TEXT NOT NULL,
    resolution_number  TEXT NOT NULL REFERENCES resolutions (number),
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    amount_minor       INTEGER NOT NULL CHECK (amount_minor > 0),
    currency           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('requires_payment', 'succeeded', 'cancelled', 'reversed')),
    payment_id         INTEGER REFERENCES payments (id),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE INDEX payment_intents_resolution ON payment_intents (resolution_number);

CREATE TABLE idempotency_keys (
    scope              TEXT NOT NULL,
    key                TEXT NOT NULL,
    fingerprint        TEXT NOT NULL,
    -- NULL while the first request is being answered.
    status             INTEGER,
    body               TEXT,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;

CREATE TABLE payment_callbacks (
    id                 INTEGER PRIMARY KEY NOT NULL,
    provider           TEXT NOT NULL,
    received_at        INTEGER NOT NULL,
    event_id           TEXT,
    event_type         TEXT,
    signature          TEXT NOT NULL,
    body               TEXT NOT NULL,
    outcome            TEXT NOT NULL CHECK (outcome IN ('applied', 'repeat', 'refused')),
    status             INTEGER NOT NULL,
    detail             TEXT NOT NULL
) STRICT;

CREATE INDEX payment_callbacks_refused ON payment_callbacks (id) WHERE outcome = 'refused';
