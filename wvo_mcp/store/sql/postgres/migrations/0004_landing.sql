-- A merge queue per target branch (issue 22; SQLite 0012): rows, not process memory, so
-- that several autopilots, or one restarted after a SIGKILL, share it.
-- A landing: the target moved from `old` to `new`, whose tree passed `checks`. Written as an
-- intent before the ref moves, so whoever finds it after a crash completes or abandons it,
-- never lands it twice. `old` is '' for --merge leave (nothing moves: the task's own branch).
CREATE TABLE landings (
    id          bigserial PRIMARY KEY,
    target      text COLLATE "C" NOT NULL,
    old         text COLLATE "C" NOT NULL,
    new         text COLLATE "C" NOT NULL,
    tree        text COLLATE "C" NOT NULL,
    checks      text NOT NULL,                      -- the passing checks, one line each
    state       text COLLATE "C" NOT NULL CHECK (state IN ('intent', 'landed', 'abandoned')),
    run         text COLLATE "C" NOT NULL,          -- the autopilot that landed it
    at          text COLLATE "C" NOT NULL,
    landed_at   text COLLATE "C"
);
CREATE INDEX landings_open ON landings (state) WHERE state = 'intent';
-- One entry per submission taken from a worker. A task has at most one open entry (review,
-- queued, testing, landing, held). It ends landed; returned to a worker (a conflict, a failed
-- check), or sent back by its review (changes); or closed, when a person moved the task.
-- `returns` counts the task's submissions the queue returned since a person last acted on it.
CREATE TABLE landing_entries (
    id          bigserial PRIMARY KEY,
    task_id     text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    target      text COLLATE "C" NOT NULL,          -- the branch it lands on; '' for leave
    base        text COLLATE "C" NOT NULL,          -- the commit its attempt started from
    commit_sha  text COLLATE "C" NOT NULL,          -- the submitted tip, taken from its author
    author      text COLLATE "C" NOT NULL,
    state       text COLLATE "C" NOT NULL CHECK (state IN (
        'review', 'queued', 'testing', 'landing', 'landed', 'returned', 'changes', 'held',
        'closed')),
    position    bigint NOT NULL,                    -- smaller lands first
    returns     integer NOT NULL DEFAULT 0,
    entered_at  text COLLATE "C" NOT NULL,
    queued_at   text COLLATE "C",                   -- after its review, where one applies
    finished_at text COLLATE "C",
    claimed_by  text COLLATE "C",                   -- the autopilot reviewing it (review)
    claim_until text COLLATE "C",
    landing_id  bigint REFERENCES landings (id),
    reason      text                                -- why it was returned, held or closed
);
CREATE UNIQUE INDEX landing_entry_open ON landing_entries (task_id)
    WHERE state IN ('review', 'queued', 'testing', 'landing', 'held');
CREATE INDEX landing_queue ON landing_entries (target, state, position);
CREATE INDEX landing_entries_of_task ON landing_entries (task_id, id);
-- Who lands a target's queue now: a lease with a fencing token, as a task's.
CREATE TABLE landing_targets (
    target      text COLLATE "C" PRIMARY KEY,
    holder      text COLLATE "C",
    fence       bigint NOT NULL DEFAULT 0,
    until       text COLLATE "C"
);
