-- Issue 68. Words from someone who does not steer the fleet (a reader's review or comment on
-- the forge) are task events of kind 'outsider', listed in the person's inbox.
CREATE INDEX task_events_outsiders ON task_events (id) WHERE kind = 'outsider';

-- The open issues `import github:` could not apply (tracker.py): a cycle, an unknown
-- dependency, a body over the cap, a label by someone who does not steer. Each pass replaces
-- its repository's rows; `wvo-mcp status` lists them.
CREATE TABLE unsynced_issues (
    repository  TEXT NOT NULL,
    number      INTEGER NOT NULL,
    task_id     TEXT NOT NULL,
    why         TEXT NOT NULL,
    made        INTEGER NOT NULL,   -- 1: its task exists, and stays as it was
    since       TEXT NOT NULL,
    PRIMARY KEY (repository, number)
);
