-- Provider routing: where each task runs, usage in hour and day windows, circuit breakers.

-- The grant's routing: provider and tier, the tokens reserved for it at claim time and those
-- it reported since (the difference still counts against the provider's budgets).
ALTER TABLE tasks ADD COLUMN routed_provider TEXT;
ALTER TABLE tasks ADD COLUMN routed_tier TEXT;
ALTER TABLE tasks ADD COLUMN reserved_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN used_tokens INTEGER NOT NULL DEFAULT 0;
-- Where the last failed attempt ran: the next attempt goes one tier up.
ALTER TABLE tasks ADD COLUMN failed_provider TEXT;
ALTER TABLE tasks ADD COLUMN failed_tier TEXT;
CREATE INDEX tasks_routed ON tasks (routed_provider) WHERE status = 'in_progress';

-- Tokens and spend per provider and tier, per hour ('YYYY-MM-DDTHH') and day ('YYYY-MM-DD').
CREATE TABLE provider_usage (
    provider        TEXT NOT NULL,
    period          TEXT NOT NULL,
    tier            TEXT NOT NULL,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cost            REAL NOT NULL DEFAULT 0,
    calls           INTEGER NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, period, tier)
) WITHOUT ROWID;

-- One breaker per provider, shared by every server process; half-open is 'open' past
-- reopens_at, and probe_task is the one task let through then.
CREATE TABLE provider_breakers (
    provider        TEXT PRIMARY KEY,
    state           TEXT NOT NULL CHECK (state IN ('closed', 'open')),
    failures        INTEGER NOT NULL,
    opens           INTEGER NOT NULL,
    reopens_at      TEXT,
    probe_task      TEXT,
    updated_at      TEXT NOT NULL
) WITHOUT ROWID;
