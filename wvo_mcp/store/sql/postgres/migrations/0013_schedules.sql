-- Tasks that come back (issue 55): a roadmap entry with `every:` (cron, or an interval) is
-- a schedule. Each time it comes, once its last task is done or cancelled, it makes a new
-- task from its definition; the write that makes it moves last_task only from the one it
-- read, so two hosts never make two.
CREATE TABLE schedules (
    id          text COLLATE "C" PRIMARY KEY,
    every       text NOT NULL,
    spec        text NOT NULL,  -- the definition each task copies (JSON, no id)
    last_task   text COLLATE "C" NOT NULL,  -- the newest task it made (the first has its own id)
    next_at     text COLLATE "C" NOT NULL,  -- when the next comes (once last_task is over)
    stopped_at  text COLLATE "C"  -- a person stopped it: it makes no more
);
CREATE INDEX schedules_next ON schedules (next_at) WHERE stopped_at IS NULL;
