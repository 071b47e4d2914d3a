-- The whole schema, equivalent to SQLite's migrations 0001..0009 applied in order (their
-- final state: columns added later by ALTER TABLE come last, as there).
--
-- Timestamps are ISO-8601 UTC text (see timeutil.py) and ids, statuses and periods are text
-- too; every such column is COLLATE "C" so comparing and ordering them is by bytes, as in
-- SQLite (and as Python compares str), whatever the database's locale. JSON columns stay
-- text: the services json.loads them. INTEGER is bigint, REAL double precision; flags
-- (requires_approval, remediate) stay integers 0/1.

-- Core task graph: tasks, dependencies, audit events, checkpoints, agents.

CREATE TABLE tasks (
    id                          text COLLATE "C" PRIMARY KEY,
    title                       text NOT NULL,
    description                 text NOT NULL DEFAULT '',
    epic_id                     text COLLATE "C",
    milestone_id                text COLLATE "C",
    status                      text COLLATE "C" NOT NULL DEFAULT 'pending' CHECK (status IN (
                                    'pending', 'in_progress', 'awaiting_approval', 'needs_review',
                                    'blocked', 'done', 'failed', 'cancelled')),
    complexity                  bigint NOT NULL CHECK (complexity BETWEEN 1 AND 10),
    business_value              bigint NOT NULL CHECK (business_value BETWEEN 1 AND 20),
    time_criticality            bigint NOT NULL CHECK (time_criticality BETWEEN 1 AND 20),
    risk_reduction              bigint NOT NULL CHECK (risk_reduction BETWEEN 1 AND 20),
    job_size                    bigint NOT NULL CHECK (job_size BETWEEN 1 AND 20),
    due_at                      text COLLATE "C",
    tags                        text NOT NULL DEFAULT '[]',
    requires_approval           bigint NOT NULL DEFAULT 0,
    approved_by                 text COLLATE "C",
    max_attempts                bigint NOT NULL DEFAULT 3,
    attempts                    bigint NOT NULL DEFAULT 0,   -- failed attempts so far
    unmet_dependencies          bigint NOT NULL DEFAULT 0,   -- dependencies not yet done
    dependents                  bigint NOT NULL DEFAULT 0,   -- tasks that depend on this one
    effective_time_criticality  double precision NOT NULL,   -- time_criticality raised by due_at
    wsjf_score                  double precision NOT NULL,
    not_before                  text COLLATE "C",            -- retry back-off
    assigned_to                 text COLLATE "C",
    lease_token                 text COLLATE "C",
    lease_epoch                 bigint NOT NULL DEFAULT 0,   -- grants so far; fencing counter
    lease_seconds               bigint,
    lease_expires_at            text COLLATE "C",
    claimed_at                  text COLLATE "C",
    last_heartbeat_at           text COLLATE "C",
    metadata                    text NOT NULL DEFAULT '{}',
    created_at                  text COLLATE "C" NOT NULL,
    updated_at                  text COLLATE "C" NOT NULL,
    completed_at                text COLLATE "C",
    -- Provider routing (SQLite 0005): the grant's provider and tier, the tokens reserved for
    -- it at claim time and those it reported since; where the last failed attempt ran.
    routed_provider             text COLLATE "C",
    routed_tier                 text COLLATE "C",
    reserved_tokens             bigint NOT NULL DEFAULT 0,
    used_tokens                 bigint NOT NULL DEFAULT 0,
    failed_provider             text COLLATE "C",
    failed_tier                 text COLLATE "C",
    -- The verification gate (SQLite 0006): JSON, an argv list or a string for /bin/sh -c.
    verify_command              text
);

-- The ready queue, in WSJF order: ranking is an index scan at any size.
CREATE INDEX tasks_ready ON tasks (wsjf_score DESC, created_at, id)
    WHERE status = 'pending' AND unmet_dependencies = 0;
CREATE INDEX tasks_ready_by_epic ON tasks (epic_id, wsjf_score DESC, created_at, id)
    WHERE status = 'pending' AND unmet_dependencies = 0;
CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE status = 'in_progress';
CREATE INDEX tasks_holders ON tasks (assigned_to) WHERE status = 'in_progress';
CREATE INDEX tasks_due ON tasks (due_at) WHERE due_at IS NOT NULL AND status = 'pending';
CREATE INDEX tasks_backing_off ON tasks (not_before) WHERE not_before IS NOT NULL;
CREATE INDEX tasks_status ON tasks (status, id);
CREATE INDEX tasks_routed ON tasks (routed_provider) WHERE status = 'in_progress';
-- A declared agent's claim reads only the ready tasks routing can send to its tier: those of
-- the complexities that route there now, plus the few whose route is their own.
CREATE INDEX tasks_ready_by_complexity ON tasks (complexity, wsjf_score DESC, created_at, id)
    WHERE status = 'pending' AND unmet_dependencies = 0;
CREATE INDEX tasks_ready_routed_alone ON tasks (wsjf_score DESC, created_at, id)
    WHERE status = 'pending' AND unmet_dependencies = 0
    AND (failed_provider IS NOT NULL OR strpos(metadata, 'estimated_tokens') > 0);

CREATE TABLE task_dependencies (
    task_id         text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    depends_on_id   text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, depends_on_id)
);
CREATE INDEX task_dependencies_reverse ON task_dependencies (depends_on_id, task_id);

-- Append-only audit trail: one row per change of a task.
CREATE TABLE task_events (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    task_id         text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    at              text COLLATE "C" NOT NULL,
    actor           text COLLATE "C" NOT NULL,
    kind            text COLLATE "C" NOT NULL,  -- created, claimed, status, lease_expired, ...
    from_status     text COLLATE "C",
    to_status       text COLLATE "C",
    reason          text,
    lease_epoch     bigint
);
CREATE INDEX task_events_by_task ON task_events (task_id, id);
-- The monitor's actions are task events by actor 'health-monitor'; this keeps "recent
-- actions" an index scan however long the audit trail grows.
CREATE INDEX task_events_by_monitor ON task_events (id) WHERE actor = 'health-monitor';
-- Pruning finds old events without scanning the whole trail.
CREATE INDEX task_events_at ON task_events (at);
-- Throughput: completions per hour, read from the audit trail.
CREATE INDEX task_events_done ON task_events (at) WHERE to_status = 'done';

CREATE TABLE checkpoints (
    task_id         text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq             bigint NOT NULL,
    agent_id        text COLLATE "C" NOT NULL,
    lease_epoch     bigint NOT NULL,
    summary         text NOT NULL,
    next_steps      text,
    progress        bigint,
    files           text NOT NULL DEFAULT '[]',
    created_at      text COLLATE "C" NOT NULL,
    -- Git snapshots of the workspace taken with the checkpoint (SQLite 0003; NULL: none).
    git_head        text COLLATE "C",       -- HEAD when the checkpoint was taken
    git_commit      text COLLATE "C",       -- snapshot commit of the working tree
    git_ref         text COLLATE "C",       -- refs/wvo/checkpoints/<task>/<seq>
    -- The sandbox run it attached (SQLite 0006).
    sandbox_run     text,
    PRIMARY KEY (task_id, seq)
);

CREATE TABLE agents (
    id              text COLLATE "C" PRIMARY KEY,
    provider        text COLLATE "C",
    model           text COLLATE "C",
    client_name     text,
    first_seen_at   text COLLATE "C" NOT NULL,
    last_seen_at    text COLLATE "C" NOT NULL
);

-- Counts per status plus 'ready' (pending with every dependency done), kept by triggers so
-- queue depth is a lookup, not a scan of 100k rows.
CREATE TABLE queue_counts (
    bucket  text COLLATE "C" PRIMARY KEY,
    tasks   bigint NOT NULL DEFAULT 0
);
INSERT INTO queue_counts (bucket) VALUES
    ('pending'), ('in_progress'), ('awaiting_approval'), ('needs_review'), ('blocked'),
    ('done'), ('failed'), ('cancelled'), ('ready');

-- The three SQLite triggers, row by row. SQLite's update trigger subtracts and adds even
-- when the bucket stays the same (a net zero); these skip such no-op writes, with the same
-- counts as the outcome.
CREATE FUNCTION tasks_counted_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queue_counts SET tasks = tasks + 1 WHERE bucket = NEW.status;
    IF NEW.status = 'pending' AND NEW.unmet_dependencies = 0 THEN
        UPDATE queue_counts SET tasks = tasks + 1 WHERE bucket = 'ready';
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION tasks_counted_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_ready constant boolean := OLD.status = 'pending' AND OLD.unmet_dependencies = 0;
    is_ready constant boolean := NEW.status = 'pending' AND NEW.unmet_dependencies = 0;
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status THEN
        UPDATE queue_counts SET tasks = tasks - 1 WHERE bucket = OLD.status;
        UPDATE queue_counts SET tasks = tasks + 1 WHERE bucket = NEW.status;
    END IF;
    IF was_ready IS DISTINCT FROM is_ready THEN
        UPDATE queue_counts SET tasks = tasks - was_ready::int + is_ready::int
            WHERE bucket = 'ready';
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION tasks_counted_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queue_counts SET tasks = tasks - 1 WHERE bucket = OLD.status;
    IF OLD.status = 'pending' AND OLD.unmet_dependencies = 0 THEN
        UPDATE queue_counts SET tasks = tasks - 1 WHERE bucket = 'ready';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_counted_on_insert AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_counted_on_insert();

CREATE TRIGGER tasks_counted_on_update AFTER UPDATE OF status, unmet_dependencies ON tasks
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
        OR OLD.unmet_dependencies IS DISTINCT FROM NEW.unmet_dependencies)
    EXECUTE FUNCTION tasks_counted_on_update();

CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_counted_on_delete();

CREATE TABLE settings_meta (
    key     text COLLATE "C" PRIMARY KEY,
    value   text NOT NULL
);

-- Shared project context (SQLite 0002): named sections with a version each (optimistic
-- concurrency) and their history. state/context.md is rendered from these tables.

CREATE TABLE context_sections (
    name            text COLLATE "C" PRIMARY KEY,
    version         bigint NOT NULL,
    content         text NOT NULL,
    updated_by      text COLLATE "C" NOT NULL,
    updated_at      text COLLATE "C" NOT NULL,
    created_at      text COLLATE "C" NOT NULL      -- sections render in creation order
);

CREATE TABLE context_history (
    name            text COLLATE "C" NOT NULL,
    version         bigint NOT NULL,
    mode            text COLLATE "C" NOT NULL CHECK (mode IN ('replace', 'append')),
    content         text NOT NULL,     -- the whole section as of this version
    author          text COLLATE "C" NOT NULL,
    at              text COLLATE "C" NOT NULL,
    PRIMARY KEY (name, version)
);

-- The OODA health monitor (SQLite 0004): who leads, what each tick saw, which anomalies
-- are open.

-- One row per role; the holder renews it, anyone takes it over once it expires. `term` grows
-- with each change of holder, so a deposed leader's writes can be refused.
CREATE TABLE monitor_leader (
    role            text COLLATE "C" PRIMARY KEY,
    holder          text COLLATE "C" NOT NULL,
    term            bigint NOT NULL,
    acquired_at     text COLLATE "C" NOT NULL,
    renewed_at      text COLLATE "C" NOT NULL,
    expires_at      text COLLATE "C" NOT NULL
);

-- One row per leader tick; `observation` is the JSON of what was observed.
CREATE TABLE health_snapshots (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at              text COLLATE "C" NOT NULL,
    leader          text COLLATE "C" NOT NULL,
    term            bigint NOT NULL,
    remediate       bigint NOT NULL,
    anomalies       bigint NOT NULL,
    actions         bigint NOT NULL,
    observation     text NOT NULL
);
CREATE INDEX health_snapshots_at ON health_snapshots (at);

-- An anomaly is open from the first tick that sees it to the first tick that does not.
CREATE TABLE health_anomalies (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind            text COLLATE "C" NOT NULL,
    subject         text COLLATE "C" NOT NULL,     -- a task id, or '' for the whole queue
    severity        text COLLATE "C" NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message         text NOT NULL,
    first_seen_at   text COLLATE "C" NOT NULL,
    last_seen_at    text COLLATE "C" NOT NULL,
    resolved_at     text COLLATE "C"
);
CREATE UNIQUE INDEX health_anomalies_open ON health_anomalies (kind, subject)
    WHERE resolved_at IS NULL;
CREATE INDEX health_anomalies_resolved ON health_anomalies (resolved_at)
    WHERE resolved_at IS NOT NULL;

-- Provider routing (SQLite 0005): usage in hour and day windows, circuit breakers.

-- Tokens and spend per provider and tier, per hour ('YYYY-MM-DDTHH') and day ('YYYY-MM-DD').
CREATE TABLE provider_usage (
    provider        text COLLATE "C" NOT NULL,
    period          text COLLATE "C" NOT NULL,
    tier            text COLLATE "C" NOT NULL,
    input_tokens    bigint NOT NULL DEFAULT 0,
    output_tokens   bigint NOT NULL DEFAULT 0,
    cost            double precision NOT NULL DEFAULT 0,
    calls           bigint NOT NULL DEFAULT 0,
    failures        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, period, tier)
);

-- One breaker per provider, shared by every server process; half-open is 'open' past
-- reopens_at, and probe_task is the one task let through then.
CREATE TABLE provider_breakers (
    provider        text COLLATE "C" PRIMARY KEY,
    state           text COLLATE "C" NOT NULL CHECK (state IN ('closed', 'open')),
    failures        bigint NOT NULL,
    opens           bigint NOT NULL,
    reopens_at      text COLLATE "C",
    probe_task      text COLLATE "C",
    updated_at      text COLLATE "C" NOT NULL
);

-- One row per autopilot run (SQLite 0008): what it is doing, for `wvo-mcp autopilot
-- status`, and what a person asked of it from another terminal (pause, resume, stop).
CREATE TABLE autopilot_runs (
    id          text COLLATE "C" PRIMARY KEY,       -- host:pid:tag
    started_at  text COLLATE "C" NOT NULL,
    seen_at     text COLLATE "C" NOT NULL,          -- its latest round
    state       text COLLATE "C" NOT NULL CHECK (state IN ('running', 'paused', 'draining', 'ended')),
    wanted      text COLLATE "C" CHECK (wanted IN ('pause', 'resume', 'stop')),
    report      text NOT NULL DEFAULT '{}'          -- JSON: its workers and totals
);

-- Bearer tokens for the HTTP transport (SQLite 0009). Only a SHA-256 digest of each secret
-- is kept: the secrets are 256 random bits, so a slow password hash would add nothing.
CREATE TABLE api_tokens (
    id              text COLLATE "C" PRIMARY KEY,           -- public handle shown by `tokens list`
    secret_sha256   text COLLATE "C" NOT NULL UNIQUE,       -- hex digest of the bearer secret
    name            text COLLATE "C" NOT NULL,              -- the agent id, person or operator
    role            text COLLATE "C" NOT NULL CHECK (role IN ('agent', 'person', 'operator')),
    created_at      text COLLATE "C" NOT NULL,
    created_by      text COLLATE "C" NOT NULL,
    last_used_at    text COLLATE "C",
    revoked_at      text COLLATE "C"
);
