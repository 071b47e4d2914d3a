-- Core task graph: tasks, dependencies, audit events, checkpoints, agents.
-- Timestamps are ISO-8601 UTC text (see timeutil.py); JSON columns hold arrays/objects.

CREATE TABLE tasks (
    id                          TEXT PRIMARY KEY,
    title                       TEXT NOT NULL,
    description                 TEXT NOT NULL DEFAULT '',
    epic_id                     TEXT,
    milestone_id                TEXT,
    status                      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN (
                                    'pending', 'in_progress', 'awaiting_approval', 'needs_review',
                                    'blocked', 'done', 'failed', 'cancelled')),
    complexity                  INTEGER NOT NULL CHECK (complexity BETWEEN 1 AND 10),
    business_value              INTEGER NOT NULL CHECK (business_value BETWEEN 1 AND 20),
    time_criticality            INTEGER NOT NULL CHECK (time_criticality BETWEEN 1 AND 20),
    risk_reduction              INTEGER NOT NULL CHECK (risk_reduction BETWEEN 1 AND 20),
    job_size                    INTEGER NOT NULL CHECK (job_size BETWEEN 1 AND 20),
    due_at                      TEXT,
    tags                        TEXT NOT NULL DEFAULT '[]',
    requires_approval           INTEGER NOT NULL DEFAULT 0,
    approved_by                 TEXT,
    max_attempts                INTEGER NOT NULL DEFAULT 3,
    attempts                    INTEGER NOT NULL DEFAULT 0,   -- failed attempts so far
    unmet_dependencies          INTEGER NOT NULL DEFAULT 0,   -- dependencies not yet done
    dependents                  INTEGER NOT NULL DEFAULT 0,   -- tasks that depend on this one
    effective_time_criticality  REAL NOT NULL,                -- time_criticality raised by due_at
    wsjf_score                  REAL NOT NULL,
    not_before                  TEXT,                         -- retry back-off
    assigned_to                 TEXT,
    lease_token                 TEXT,
    lease_epoch                 INTEGER NOT NULL DEFAULT 0,   -- grants so far; fencing counter
    lease_seconds               INTEGER,
    lease_expires_at            TEXT,
    claimed_at                  TEXT,
    last_heartbeat_at           TEXT,
    metadata                    TEXT NOT NULL DEFAULT '{}',
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL,
    completed_at                TEXT
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

CREATE TABLE task_dependencies (
    task_id         TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    depends_on_id   TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, depends_on_id)
) WITHOUT ROWID;
CREATE INDEX task_dependencies_reverse ON task_dependencies (depends_on_id, task_id);

-- Append-only audit trail: one row per change of a task.
CREATE TABLE task_events (
    id              INTEGER PRIMARY KEY,
    task_id         TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    at              TEXT NOT NULL,
    actor           TEXT NOT NULL,
    kind            TEXT NOT NULL,     -- created, claimed, status, lease_expired, dead_lettered, approved
    from_status     TEXT,
    to_status       TEXT,
    reason          TEXT,
    lease_epoch     INTEGER
);
CREATE INDEX task_events_by_task ON task_events (task_id, id);

CREATE TABLE checkpoints (
    task_id         TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    agent_id        TEXT NOT NULL,
    lease_epoch     INTEGER NOT NULL,
    summary         TEXT NOT NULL,
    next_steps      TEXT,
    progress        INTEGER,
    files           TEXT NOT NULL DEFAULT '[]',
    created_at      TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;

CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    provider        TEXT,
    model           TEXT,
    client_name     TEXT,
    first_seen_at   TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL
);

-- Counts per status plus 'ready' (pending with every dependency done), kept by triggers so
-- queue depth is a lookup, not a scan of 100k rows.
CREATE TABLE queue_counts (
    bucket  TEXT PRIMARY KEY,
    tasks   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO queue_counts (bucket) VALUES
    ('pending'), ('in_progress'), ('awaiting_approval'), ('needs_review'), ('blocked'),
    ('done'), ('failed'), ('cancelled'), ('ready');

CREATE TRIGGER tasks_counted_on_insert AFTER INSERT ON tasks BEGIN
    UPDATE queue_counts SET tasks = tasks + 1 WHERE bucket = NEW.status;
    UPDATE queue_counts SET tasks = tasks + 1
        WHERE bucket = 'ready' AND NEW.status = 'pending' AND NEW.unmet_dependencies = 0;
END;

CREATE TRIGGER tasks_counted_on_update AFTER UPDATE OF status, unmet_dependencies ON tasks
WHEN OLD.status IS NOT NEW.status OR OLD.unmet_dependencies IS NOT NEW.unmet_dependencies BEGIN
    UPDATE queue_counts SET tasks = tasks - 1 WHERE bucket = OLD.status;
    UPDATE queue_counts SET tasks = tasks + 1 WHERE bucket = NEW.status;
    UPDATE queue_counts SET tasks = tasks
        - (OLD.status = 'pending' AND OLD.unmet_dependencies = 0)
        + (NEW.status = 'pending' AND NEW.unmet_dependencies = 0)
        WHERE bucket = 'ready';
END;

CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks BEGIN
    UPDATE queue_counts SET tasks = tasks - 1 WHERE bucket = OLD.status;
    UPDATE queue_counts SET tasks = tasks - 1
        WHERE bucket = 'ready' AND OLD.status = 'pending' AND OLD.unmet_dependencies = 0;
END;

CREATE TABLE settings_meta (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
) WITHOUT ROWID;
