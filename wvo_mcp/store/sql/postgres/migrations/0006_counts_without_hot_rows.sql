-- Queue counts without hot rows (issue 24). Writes to different tasks now run side by side,
-- and each status change used to UPDATE two or three of nine shared count rows: every such
-- transaction queued on those rows until the one before it committed, and two that took
-- them in opposite orders (a claim: pending then in_progress; a re-queue: in_progress then
-- pending) deadlocked. A change now INSERTs its deltas, which lock nothing; queue_counts is
-- a view that adds them to a base, and the store folds the deltas into the base now and
-- then (fold_queue_counts), in a transaction of its own that only it runs.
ALTER TABLE queue_counts RENAME TO queue_count_base;

CREATE TABLE queue_count_deltas (
    bucket  text COLLATE "C" NOT NULL,
    tasks   bigint NOT NULL
);

CREATE VIEW queue_counts AS
    SELECT b.bucket, (b.tasks + coalesce(sum(d.tasks), 0))::bigint AS tasks
    FROM queue_count_base b LEFT JOIN queue_count_deltas d ON d.bucket = b.bucket
    GROUP BY b.bucket, b.tasks;

CREATE OR REPLACE FUNCTION tasks_counted_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_count_deltas (bucket, tasks) VALUES (NEW.status, 1);
    IF NEW.status = 'pending' AND NEW.unmet_dependencies = 0 THEN
        INSERT INTO queue_count_deltas (bucket, tasks) VALUES ('ready', 1);
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION tasks_counted_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_ready constant boolean := OLD.status = 'pending' AND OLD.unmet_dependencies = 0;
    is_ready constant boolean := NEW.status = 'pending' AND NEW.unmet_dependencies = 0;
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status THEN
        INSERT INTO queue_count_deltas (bucket, tasks) VALUES (OLD.status, -1), (NEW.status, 1);
    END IF;
    IF was_ready IS DISTINCT FROM is_ready THEN
        INSERT INTO queue_count_deltas (bucket, tasks)
            VALUES ('ready', is_ready::int - was_ready::int);
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION tasks_counted_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_count_deltas (bucket, tasks) VALUES (OLD.status, -1);
    IF OLD.status = 'pending' AND OLD.unmet_dependencies = 0 THEN
        INSERT INTO queue_count_deltas (bucket, tasks) VALUES ('ready', -1);
    END IF;
    RETURN NULL;
END;
$$;

-- The deltas folded into the base in one statement: a reader sees the counts before or after
-- it, never between. It locks only base rows, which nothing else writes.
CREATE FUNCTION fold_queue_counts() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM queue_count_deltas RETURNING bucket, tasks),
    sums AS (SELECT bucket, sum(tasks) AS tasks FROM gone GROUP BY bucket)
    UPDATE queue_count_base b SET tasks = b.tasks + s.tasks FROM sums s WHERE b.bucket = s.bucket;
$$;
