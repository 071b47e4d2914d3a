-- Outcome statistics per route (issue 37; SQLite 0014): for each provider, tier and task
-- class, decayed sums of what the attempts routed there came to. Each new outcome multiplies
-- every sum by the caller's `keep` (0.5 ^ (1 / half-life in outcomes)) and adds its own
-- increments, in one upsert (services/route_outcomes.py): it locks the route's row, so two
-- writers recording on one route take turns and neither loses its outcome.
CREATE TABLE route_outcomes (
    provider            text COLLATE "C" NOT NULL,
    tier                text COLLATE "C" NOT NULL,
    task_class          text COLLATE "C" NOT NULL,
    outcomes            bigint NOT NULL DEFAULT 0,     -- every outcome once, never faded
    attempts            double precision NOT NULL DEFAULT 0,
    first_try_landed    double precision NOT NULL DEFAULT 0,
    landed              double precision NOT NULL DEFAULT 0,
    returned            double precision NOT NULL DEFAULT 0,
    failed              double precision NOT NULL DEFAULT 0,
    held                double precision NOT NULL DEFAULT 0,
    tokens              double precision NOT NULL DEFAULT 0,
    cost                double precision NOT NULL DEFAULT 0,
    updated_at          text COLLATE "C" NOT NULL,
    PRIMARY KEY (provider, tier, task_class)
);
-- The spend of the task's current attempt on its routed provider, beside used_tokens (reset
-- with it at each grant): what its outcome adds to the route's cost.
ALTER TABLE tasks ADD COLUMN used_cost double precision NOT NULL DEFAULT 0;
