-- kozomol schema v16 for PostgreSQL: the registry's owner kept whole.
--
-- smartcity-service's `protocol` answers the owner's birth date and address by parts
-- (region, district, aymak, village, street, house, building, flat) as the vehicle
-- registry gave them; owner_address keeps only the one-line form. NULL where the
-- registry was not the source (a nominated driver, lookups before v16).
ALTER TABLE owner_lookups ADD COLUMN registry_owner JSONB;
