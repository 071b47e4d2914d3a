-- What the dashboard shows beyond the audit trail.
-- The output tails of sandbox runs and verifications. Their events keep the one-line
-- summary, which is what agents read back (get_task); the tails are for people.
CREATE TABLE run_outputs (
    event_id    INTEGER PRIMARY KEY REFERENCES task_events (id) ON DELETE CASCADE,
    stdout      TEXT NOT NULL,
    stderr      TEXT NOT NULL
);
-- Who last asked an autopilot to pause, resume or stop (the CLI's user, or the person
-- signed in to the dashboard), kept after the request is heard.
ALTER TABLE autopilot_runs ADD COLUMN asked_by TEXT;
-- Tokens and spend per agent and day ('YYYY-MM-DD'), from usage reports that name their
-- agent: the dashboard's agents view shows today's.
CREATE TABLE agent_usage (
    agent_id        TEXT NOT NULL,
    day             TEXT NOT NULL,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cost            REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, day)
) WITHOUT ROWID;
-- The agents view counts each agent's completions: an index range per agent, not a walk of
-- every completion for each agent.
CREATE INDEX task_events_done_by_actor ON task_events (actor) WHERE to_status = 'done';
-- Usage by period (the dashboard's mark every poll, routing's windows on every claim) reads
-- the period's rows, not a year of hours.
CREATE INDEX provider_usage_by_period ON provider_usage (period);
