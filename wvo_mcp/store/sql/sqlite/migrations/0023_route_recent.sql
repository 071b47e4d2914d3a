-- A short memory per route for the change test (issue 73; rules/learning.py `changed`):
-- attempts and landings again, faded by the caller's `recent_keep` (0.5 ** (1 / 3)) in the
-- same upsert as the long sums. A route recorded before this starts with an empty short
-- memory, which the test reads as no change until its next outcomes fill it.
ALTER TABLE route_outcomes ADD COLUMN recent_attempts REAL NOT NULL DEFAULT 0;
ALTER TABLE route_outcomes ADD COLUMN recent_landed REAL NOT NULL DEFAULT 0;
