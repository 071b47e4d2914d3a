-- The OODA health monitor: who leads, what each tick saw, which anomalies are open.

-- One row per role; the holder renews it, anyone takes it over once it expires. `term` grows
-- with each change of holder, so a deposed leader's writes can be refused.
CREATE TABLE monitor_leader (
    role            TEXT PRIMARY KEY,
    holder          TEXT NOT NULL,
    term            INTEGER NOT NULL,
    acquired_at     TEXT NOT NULL,
    renewed_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL
) WITHOUT ROWID;

-- One row per leader tick; `observation` is the JSON of what was observed.
CREATE TABLE health_snapshots (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    leader          TEXT NOT NULL,
    term            INTEGER NOT NULL,
    remediate       INTEGER NOT NULL,
    anomalies       INTEGER NOT NULL,
    actions         INTEGER NOT NULL,
    observation     TEXT NOT NULL
);
CREATE INDEX health_snapshots_at ON health_snapshots (at);

-- An anomaly is open from the first tick that sees it to the first tick that does not.
CREATE TABLE health_anomalies (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,     -- a task id, or '' for the whole queue
    severity        TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message         TEXT NOT NULL,
    first_seen_at   TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    resolved_at     TEXT
);
CREATE UNIQUE INDEX health_anomalies_open ON health_anomalies (kind, subject)
    WHERE resolved_at IS NULL;
CREATE INDEX health_anomalies_resolved ON health_anomalies (resolved_at)
    WHERE resolved_at IS NOT NULL;

-- The monitor's actions are task events by actor 'health-monitor'; this keeps "recent
-- actions" an index scan however long the audit trail grows.
CREATE INDEX task_events_by_monitor ON task_events (id) WHERE actor = 'health-monitor';

-- Pruning finds old events without scanning the whole trail.
CREATE INDEX task_events_at ON task_events (at);

-- Throughput: completions per hour, read from the audit trail.
CREATE INDEX task_events_done ON task_events (at) WHERE to_status = 'done';
