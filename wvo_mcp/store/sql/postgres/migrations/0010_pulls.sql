-- Landing through pull requests (issue 54): each task's pull request on a forge, one per
-- task and target. It outlives a submission: a task sent back keeps its pull request open,
-- and its next submission updates it. `head` is what the autopilot last pushed to its branch
-- (every later push is leased on it, so a person's commit there is never overwritten);
-- `landing_id` the intent it carries now (NULL while the task is with a worker); `waiting`
-- what it waits for, as the views show it.
CREATE TABLE pulls (
    target      text COLLATE "C" NOT NULL,
    task_id     text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    number      bigint NOT NULL,
    url         text NOT NULL,
    branch      text COLLATE "C" NOT NULL,
    head        text COLLATE "C" NOT NULL,
    state       text NOT NULL,
    landing_id  bigint REFERENCES landings (id),
    waiting     text NOT NULL DEFAULT '',
    updated_at  text COLLATE "C" NOT NULL,
    PRIMARY KEY (target, task_id)
);
CREATE INDEX pulls_of_landing ON pulls (landing_id);
