-- The execution lease: the process driving an execution (lease_owner) holds it until
-- lease_expires_at, in epoch milliseconds of the callers' clocks (the database clock is
-- never used, so the SQL stays portable). NULL owner: nobody drives it.
ALTER TABLE executions ADD COLUMN lease_owner TEXT;
ALTER TABLE executions ADD COLUMN lease_expires_at BIGINT;
