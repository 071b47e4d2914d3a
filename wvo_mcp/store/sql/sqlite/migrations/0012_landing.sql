-- A merge queue per target branch (issue 22): rows, not process memory, so that several
-- autopilots, or one restarted after a SIGKILL, share it.
-- A landing: the target moved from `old` to `new`, whose tree passed `checks`. Written as an
-- intent before the ref moves, so whoever finds it after a crash completes or abandons it,
-- never lands it twice. `old` is '' for --merge leave (nothing moves: the task's own branch).
CREATE TABLE landings (
    id          INTEGER PRIMARY KEY,
    target      TEXT NOT NULL,
    old         TEXT NOT NULL,
    new         TEXT NOT NULL,
    tree        TEXT NOT NULL,
    checks      TEXT NOT NULL,          -- the passing checks, one line each
    state       TEXT NOT NULL CHECK (state IN ('intent', 'landed', 'abandoned')),
    run         TEXT NOT NULL,          -- the autopilot that landed it
    at          TEXT NOT NULL,
    landed_at   TEXT
);
CREATE INDEX landings_open ON landings (state) WHERE state = 'intent';
-- One entry per submission taken from a worker. A task has at most one open entry (review,
-- queued, testing, landing, held). It ends landed; returned to a worker (a conflict, a failed
-- check), or sent back by its review (changes); or closed, when a person moved the task.
-- `returns` counts the task's submissions the queue returned since a person last acted on it.
CREATE TABLE landing_entries (
    id          INTEGER PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    target      TEXT NOT NULL,          -- the branch it lands on; '' for --merge leave
    base        TEXT NOT NULL,          -- the commit its attempt started from
    commit_sha  TEXT NOT NULL,          -- the submitted tip, as taken from its author
    author      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN (
        'review', 'queued', 'testing', 'landing', 'landed', 'returned', 'changes', 'held',
        'closed')),
    position    INTEGER NOT NULL,       -- smaller lands first
    returns     INTEGER NOT NULL DEFAULT 0,
    entered_at  TEXT NOT NULL,
    queued_at   TEXT,                   -- after its review, where one applies
    finished_at TEXT,
    claimed_by  TEXT,                   -- the autopilot reviewing it (state review)
    claim_until TEXT,
    landing_id  INTEGER REFERENCES landings (id),
    reason      TEXT                    -- why it was returned, held or closed
);
CREATE UNIQUE INDEX landing_entry_open ON landing_entries (task_id)
    WHERE state IN ('review', 'queued', 'testing', 'landing', 'held');
CREATE INDEX landing_queue ON landing_entries (target, state, position);
CREATE INDEX landing_entries_of_task ON landing_entries (task_id, id);
-- Who lands a target's queue now: a lease with a fencing token, as a task's.
CREATE TABLE landing_targets (
    target      TEXT PRIMARY KEY,
    holder      TEXT,
    fence       INTEGER NOT NULL DEFAULT 0,
    until       TEXT
) WITHOUT ROWID;
