-- Autopilot workers are tenants (issue 21).
-- A task's gate: NULL (its holder may finish it), 'land' (the autopilot lands the holder's
-- submitted commit, verified, then marks it done) or 'review' (as 'land', after an agent
-- other than the author approved exactly that commit). Raised by claims, never lowered by an
-- agent.
ALTER TABLE tasks ADD COLUMN gate TEXT CHECK (gate IN ('land', 'review'));
-- The commit the holder submitted (taken from its own repository by the autopilot) and who
-- wrote it: a review approves exactly this commit, and its author may not approve it.
ALTER TABLE tasks ADD COLUMN submitted_commit TEXT;
ALTER TABLE tasks ADD COLUMN submitted_by TEXT;
CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    commit_sha  TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('approve', 'changes')),
    notes       TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX reviews_of_commit ON reviews (task_id, commit_sha);
-- Run tokens: an agent token the autopilot makes for one worker or reviewer run. It expires
-- (renewed while the run lives, revoked when it ends) and is scoped to one task (JSON:
-- {"task": id, "as": "worker" | "reviewer", "commit": sha}).
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN scope TEXT;
