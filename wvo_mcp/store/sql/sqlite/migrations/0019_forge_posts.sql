-- What a tracker's sync writes on the forge (issue 55): an agent's question as a comment on
-- its issue, a landed task's issue commented on and closed. One host claims a key before it
-- writes and marks it done after, so two hosts never both write it; a claim never finished
-- (its host died) may be taken again after ten minutes, and the taker first looks for what
-- the dead one may have written. A cursor (`comments:<repository>`) keeps where the reading
-- of new comments got to.
CREATE TABLE forge_posts (
    key         TEXT PRIMARY KEY,   -- question:<note id>, landed:<task id>, comments:<repo>
    claimed_at  TEXT NOT NULL,
    done_at     TEXT,
    at          TEXT                -- the forge's time of what was written, or the cursor
);
