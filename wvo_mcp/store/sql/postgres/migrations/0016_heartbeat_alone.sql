-- Issue 73. A heartbeat whose token holds its task, as one statement of its own (autocommit):
-- the store sent five (BEGIN, the locks, renew_held_lease, touch_agent_holding, COMMIT), and
-- each cost the server a turn of psycopg. PostgreSQL only: SQLite's transaction is one local
-- call already (store.base.Alone). It does what those statements did, in their order: the
-- world lock shared, as a TASK write takes it (waiting at most p_lock_wait, then for a row at
-- most p_row_wait); the renewal (renew_held_lease: no row when the token does not hold the
-- task in progress, and then nothing changed); the agent's sighting (touch_agent_holding).
-- Each statement in it sees every commit before it, as each statement of the transaction
-- did (READ COMMITTED: a volatile function's statements take snapshots of their own).
CREATE FUNCTION heartbeat_held(
    p_world_lock bigint, p_lock_wait text, p_row_wait text,
    p_id text, p_token text, p_seconds bigint, p_now text, p_agent text, p_stale text
) RETURNS TABLE (lease_expires_at text, notes_due integer)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_wait, true);
    PERFORM pg_advisory_xact_lock_shared(p_world_lock);
    PERFORM set_config('lock_timeout', p_row_wait, true);
    RETURN QUERY
    UPDATE tasks SET lease_seconds = coalesce(p_seconds, tasks.lease_seconds),
        lease_expires_at = to_char(
            (p_now::timestamptz AT TIME ZONE 'UTC')
                + make_interval(secs => coalesce(p_seconds, tasks.lease_seconds)),
            'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        last_heartbeat_at = p_now, updated_at = p_now
    WHERE tasks.id = p_id AND tasks.lease_token = p_token AND tasks.status = 'in_progress'
    RETURNING tasks.lease_expires_at::text,
        (SELECT 1 FROM tasks t JOIN task_notes n ON n.task_id = t.id
         WHERE t.assigned_to = p_agent AND t.status = 'in_progress'
             AND n.delivered_epoch < t.lease_epoch
             AND (n.for_epoch IS NULL OR n.for_epoch = t.lease_epoch)
         LIMIT 1);
    IF FOUND THEN
        INSERT INTO agents (id, first_seen_at, last_seen_at) VALUES (p_agent, p_now, p_now)
        ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
        WHERE agents.last_seen_at < p_stale;
    END IF;
END;
$$;
