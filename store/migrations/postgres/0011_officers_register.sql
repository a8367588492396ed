-- kozomol schema v11 for PostgreSQL: the officers' register.
--
-- A resolution names the officer who confirmed the violation by full name and badge
-- number. Accounts made before the register have neither (NULL); a case such an
-- officer approved is set aside at issuing until the register names him. A badge is
-- one officer's.
ALTER TABLE accounts ADD COLUMN full_name TEXT;
ALTER TABLE accounts ADD COLUMN badge TEXT;
CREATE UNIQUE INDEX accounts_badge ON accounts (badge);
