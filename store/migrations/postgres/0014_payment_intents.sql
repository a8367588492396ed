-- kozomol schema v14 for PostgreSQL: the REST payment API of payment providers.
--
-- A payment intent is a provider's offer to pay one fine a set amount (the amount due
-- when it was made, or a part of it, or more); the payment its callback reports is
-- checked against it and marks it succeeded in the ledger's transaction (reversed
-- with it). An
-- idempotency key keeps the first response to a provider's request, replayed when the
-- request is sent again. Every callback received is kept with what became of it, the
-- refused ones (forged, stale, wrong) too.
CREATE TABLE payment_intents (
    id                 TEXT PRIMARY KEY,
    provider           TEXT NOT NULL,
    payment_code       TEXT NOT NULL,
    resolution_number  TEXT NOT NULL REFERENCES resolutions (number),
    case_id            BIGINT NOT NULL REFERENCES cases (id),
    amount_minor       BIGINT NOT NULL CHECK (amount_minor > 0),
    currency           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('requires_payment', 'succeeded', 'cancelled', 'reversed')),
    payment_id         BIGINT REFERENCES payments (id),
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);

CREATE INDEX payment_intents_resolution ON payment_intents (resolution_number);

CREATE TABLE idempotency_keys (
    scope              TEXT NOT NULL,
    key                TEXT NOT NULL,
    fingerprint        TEXT NOT NULL,
    -- NULL while the first request is being answered.
    status             INTEGER,
    body               TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE payment_callbacks (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider           TEXT NOT NULL,
    received_at        TIMESTAMPTZ NOT NULL,
    event_id           TEXT,
    event_type         TEXT,
    signature          TEXT NOT NULL,
    body               TEXT NOT NULL,
    outcome            TEXT NOT NULL CHECK (outcome IN ('applied', 'repeat', 'refused')),
    status             INTEGER NOT NULL,
    detail             TEXT NOT NULL
);

CREATE INDEX payment_callbacks_refused ON payment_callbacks (id) WHERE outcome = 'refused';
