-- The merge queue's figures (issue 22; SQLite 0013): what each landed change cost, and the
-- queue's ends in a window read off an index.
-- Tokens and spend per task, provider and tier, over every attempt of the task: the cost of
-- a landed change per provider and tier is the sum over the tasks that landed.
CREATE TABLE task_usage (
    task_id         text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    provider        text COLLATE "C" NOT NULL,
    tier            text COLLATE "C" NOT NULL,
    input_tokens    bigint NOT NULL DEFAULT 0,
    output_tokens   bigint NOT NULL DEFAULT 0,
    cost            double precision NOT NULL DEFAULT 0,
    calls           bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, provider, tier)
);
-- Entries that landed or were returned since a time: one index range per state, not a walk
-- of every submission ever taken.
CREATE INDEX landing_entries_ended ON landing_entries (state, finished_at);
