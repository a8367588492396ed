-- kozomol schema v9 for SQLite: owner liability. The owner of record answers for a
-- camera offence unless they name who drove or show the car was stolen (KZ art. 31);
-- repeat offences count per offender (PIN or INN), never per plate.

-- What the owner stated against one resolution, taken at a desk: one statement per
-- resolution (a second one is refused). A named driver gets the offence re-issued in
-- a case of its own (reissued_case_id), addressed to them; a theft closes the case.
-- from_state is the state the statement found the case in.
CREATE TABLE nominations (
    id                 INTEGER PRIMARY KEY NOT NULL,
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    resolution_number  TEXT NOT NULL UNIQUE REFERENCES resolutions (number),
    kind               TEXT NOT NULL CHECK (kind IN ('driver', 'stolen')),
    driver_pin         TEXT,
    driver_name        TEXT,
    driver_address     TEXT,
    police_report      TEXT,
    reported_at        INTEGER,
    statement          TEXT NOT NULL,
    from_state         TEXT NOT NULL,
    reissued_case_id   INTEGER UNIQUE REFERENCES cases (id),
    recorded_by        TEXT NOT NULL,
    recorded_at        INTEGER NOT NULL,
    CHECK ((kind = 'driver') = (driver_pin IS NOT NULL AND driver_name IS NOT NULL)),
    CHECK ((kind = 'stolen') = (police_report IS NOT NULL AND reported_at IS NOT NULL))
) STRICT;

CREATE INDEX nominations_case ON nominations (case_id);

-- An offender's earlier resolutions: the owner lookup of a resolution's case names
-- whom it is addressed to (a re-issued case's names the driver).
CREATE INDEX owner_lookups_offender ON owner_lookups (owner_kind, owner_id)
    WHERE owner_id IS NOT NULL;

-- The earlier resolution that made this one a repeat, priced under the repeat part.
ALTER TABLE resolutions ADD COLUMN repeat_of TEXT REFERENCES resolutions (number);
