-- One row per autopilot run: what it is doing, for `wvo-mcp autopilot status`, and what a
-- person asked of it from another terminal (pause, resume, stop), read on every round.
CREATE TABLE autopilot_runs (
    id          TEXT PRIMARY KEY,       -- host:pid:tag
    started_at  TEXT NOT NULL,
    seen_at     TEXT NOT NULL,          -- its latest round
    state       TEXT NOT NULL CHECK (state IN ('running', 'paused', 'draining', 'ended')),
    wanted      TEXT CHECK (wanted IN ('pause', 'resume', 'stop')),
    report      TEXT NOT NULL DEFAULT '{}'  -- JSON: its workers and totals
) WITHOUT ROWID;
