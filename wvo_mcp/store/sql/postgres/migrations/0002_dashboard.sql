-- What the dashboard shows beyond the audit trail (SQLite 0010).
-- The output tails of sandbox runs and verifications. Their events keep the one-line
-- summary, which is what agents read back (get_task); the tails are for people.
CREATE TABLE run_outputs (
    event_id    bigint PRIMARY KEY REFERENCES task_events (id) ON DELETE CASCADE,
    stdout      text NOT NULL,
    stderr      text NOT NULL
);
-- Who last asked an autopilot to pause, resume or stop (the CLI's user, or the person
-- signed in to the dashboard), kept after the request is heard.
ALTER TABLE autopilot_runs ADD COLUMN asked_by text COLLATE "C";
-- Tokens and spend per agent and day ('YYYY-MM-DD'), from usage reports that name their
-- agent: the dashboard's agents view shows today's.
CREATE TABLE agent_usage (
    agent_id        text COLLATE "C" NOT NULL,
    day             text COLLATE "C" NOT NULL,
    input_tokens    bigint NOT NULL DEFAULT 0,
    output_tokens   bigint NOT NULL DEFAULT 0,
    cost            double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, day)
);
-- The agents view counts each agent's completions: an index range per agent, not a walk of
-- every completion for each agent.
CREATE INDEX task_events_done_by_actor ON task_events (actor) WHERE to_status = 'done';
-- Usage by period (the dashboard's mark every poll, routing's windows on every claim) reads
-- the period's rows, not a year of hours.
CREATE INDEX provider_usage_by_period ON provider_usage (period);
