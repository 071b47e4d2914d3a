-- Landing through pull requests (issue 54): each task's pull request on a forge, one per
-- task and target. It outlives a submission: a task sent back keeps its pull request open,
-- and its next submission updates it. `head` is what the autopilot last pushed to its branch
-- (every later push is leased on it, so a person's commit there is never overwritten);
-- `landing_id` the intent it carries now (NULL while the task is with a worker); `waiting`
-- what it waits for, as the views show it.
CREATE TABLE pulls (
    target      TEXT NOT NULL,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    url         TEXT NOT NULL,
    branch      TEXT NOT NULL,
    head        TEXT NOT NULL,
    state       TEXT NOT NULL,     -- open, merged, closed
    landing_id  INTEGER REFERENCES landings (id),
    waiting     TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (target, task_id)
);
CREATE INDEX pulls_of_landing ON pulls (landing_id);
