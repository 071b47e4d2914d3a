-- A person's hand on a running fleet (issue 46).
-- Notes on a task: a person's message (tell), a pause, a redirect, an agent's question and a
-- person's answer. Each reaches the task's holder with the answer to its next call, once per
-- holder (delivered_epoch: the lease epoch it was last given to); for_epoch, when set, limits
-- it to that one holder (a pause or a redirect of the attempt under way).
CREATE TABLE task_notes (
    id              INTEGER PRIMARY KEY,
    task_id         TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,     -- tell, pause, redirect, question, answer
    body            TEXT NOT NULL,
    author          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    for_epoch       INTEGER,
    delivered_epoch INTEGER NOT NULL DEFAULT 0,
    reply_to        INTEGER REFERENCES task_notes (id)
);
CREATE INDEX task_notes_by_task ON task_notes (task_id, id);

-- What a person paused: a task, an epic, or the whole fleet (scope 'fleet', key ''). A paused
-- task is not claimable; its holder is told to checkpoint and stop.
CREATE TABLE pauses (
    scope           TEXT NOT NULL,     -- task, epic or fleet
    key             TEXT NOT NULL,
    author          TEXT NOT NULL,
    reason          TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
