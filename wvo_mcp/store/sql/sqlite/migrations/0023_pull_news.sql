-- Issue 84. What a forge's webhook said of a pull request (rules/pull_news.py): read by the
-- merge queue that follows it, which looks at the forge when the news is worth a look. Kept
-- a day: a queue that starts reads what came since, and whether deliveries come at all.
CREATE TABLE pull_news (
    id          INTEGER PRIMARY KEY,
    forge       TEXT NOT NULL,      -- github, gitlab
    repository  TEXT NOT NULL,      -- owner/name (GitLab: group/sub/project), lowercase
    number      INTEGER NOT NULL,   -- 0: it names none (a status: by its commit)
    sha         TEXT NOT NULL,
    what        TEXT NOT NULL,      -- pull, check, suite, review, queue
    name        TEXT NOT NULL,
    state       TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX pull_news_heard ON pull_news (repository, at);
CREATE INDEX pull_news_at ON pull_news (at);
