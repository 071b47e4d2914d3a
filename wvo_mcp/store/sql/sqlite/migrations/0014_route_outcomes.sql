-- Outcome statistics per route (issue 37): for each provider, tier and task class, decayed
-- sums of what the attempts routed there came to (rules/learning.py). Each new outcome multiplies every sum by
-- the caller's `keep` (0.5 ** (1 / half-life in outcomes)) and adds its own increments, in
-- one upsert (services/route_outcomes.py), so old outcomes fade and no writer loses one.
CREATE TABLE route_outcomes (
    provider            TEXT NOT NULL,
    tier                TEXT NOT NULL,
    task_class          TEXT NOT NULL,
    outcomes            INTEGER NOT NULL DEFAULT 0,     -- every outcome once, never faded
    attempts            REAL NOT NULL DEFAULT 0,
    first_try_landed    REAL NOT NULL DEFAULT 0,
    landed              REAL NOT NULL DEFAULT 0,
    returned            REAL NOT NULL DEFAULT 0,
    failed              REAL NOT NULL DEFAULT 0,
    held                REAL NOT NULL DEFAULT 0,
    tokens              REAL NOT NULL DEFAULT 0,
    cost                REAL NOT NULL DEFAULT 0,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (provider, tier, task_class)
) WITHOUT ROWID;
-- The spend of the task's current attempt on its routed provider, beside used_tokens (reset
-- with it at each grant): what its outcome adds to the route's cost.
ALTER TABLE tasks ADD COLUMN used_cost REAL NOT NULL DEFAULT 0;
