-- kozomol schema v17 for PostgreSQL: subscriptions to an owner's violations.
--
-- An information system on the bus (its X-Road client, e.g. the state portal)
-- subscribes through smartcity-service's subscribeViolations to the new violations of
-- one owner (PIN or INN) and plate, under its own unique number. Each resolution issued
-- afterwards to that owner for that plate is queued in the outbox as a `portal`
-- delivery addressed `subscription:{id}`; unsubscribing deletes the row, and a queued
-- notice of it is then not sent. Plates meet by their key (normalized, the `KG` of
-- the 2016 format dropped), as the recognizer and the registry spell them apart.
CREATE TABLE violation_subscriptions (
    id            BIGSERIAL PRIMARY KEY,
    client        TEXT NOT NULL,
    pin           TEXT NOT NULL,
    plate         TEXT NOT NULL,
    plate_key     TEXT NOT NULL,
    unique_number TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    -- The X-Road message that subscribed.
    xroad_id      TEXT NOT NULL,
    UNIQUE (client, pin, plate_key)
);
CREATE INDEX violation_subscriptions_owner ON violation_subscriptions (pin, plate_key);
