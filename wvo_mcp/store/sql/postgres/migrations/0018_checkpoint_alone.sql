-- Issue 85. A holder's plain checkpoint (no git snapshot, no sandbox run attached) as one
-- statement of its own (autocommit), as heartbeat_held (0016) is a heartbeat: the store sent
-- nine (BEGIN, the locks, the task's row, add_checkpoint, prune_checkpoints, renew_lease,
-- touch_agent, notes_due, COMMIT), and at a fleet's heartbeat and checkpoint periods these
-- were half of the statements its servers sent. It does what they did, in their order: the
-- world lock shared, as a TASK write takes it (waiting at most p_lock_wait, then for a row
-- at most p_row_wait); the task's row locked, if the token holds it in progress or awaiting
-- approval (no row otherwise: nothing changed, and services/leases.checkpoint says why); the
-- checkpoint numbered and added, the task's oldest past p_kept pruned; the lease renewed
-- unless the task awaits approval; the agent's sighting; whether notes are due to it.
-- Idempotent, as a store may send it again after a lost connection: a checkpoint of this
-- lease, agent, time and summary already there is the one answered, and nothing is added.
CREATE FUNCTION checkpoint_held(
    p_world_lock bigint, p_lock_wait text, p_row_wait text,
    p_id text, p_token text, p_agent text, p_summary text, p_next_steps text,
    p_progress bigint, p_files text, p_now text, p_kept bigint, p_stale text
) RETURNS TABLE (seq bigint, lease_expires_at text, notes_due integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_epoch bigint;
    v_seconds bigint;
    v_seq bigint;
    v_expires text;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_wait, true);
    PERFORM pg_advisory_xact_lock_shared(p_world_lock);
    PERFORM set_config('lock_timeout', p_row_wait, true);
    SELECT t.status, t.lease_epoch, t.lease_seconds INTO v_status, v_epoch, v_seconds
    FROM tasks t
    WHERE t.id = p_id AND t.lease_token = p_token
        AND t.status IN ('in_progress', 'awaiting_approval')
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT c.seq INTO v_seq FROM checkpoints c
    WHERE c.task_id = p_id AND c.lease_epoch = v_epoch AND c.agent_id = p_agent
        AND c.created_at = p_now AND c.summary = p_summary;
    IF v_seq IS NULL THEN
        INSERT INTO checkpoints (task_id, seq, agent_id, lease_epoch, summary, next_steps,
            progress, files, created_at)
        SELECT p_id, coalesce(max(c.seq), 0) + 1, p_agent, v_epoch, p_summary, p_next_steps,
            p_progress, p_files, p_now
        FROM checkpoints c WHERE c.task_id = p_id
        RETURNING checkpoints.seq INTO v_seq;
        DELETE FROM checkpoints
        WHERE checkpoints.task_id = p_id
            AND checkpoints.seq <= (
                SELECT c.seq FROM checkpoints c WHERE c.task_id = p_id
                ORDER BY c.seq DESC LIMIT 1 OFFSET p_kept);
    END IF;
    IF v_status = 'in_progress' THEN
        v_expires := to_char(
            (p_now::timestamptz AT TIME ZONE 'UTC') + make_interval(secs => v_seconds),
            'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
        UPDATE tasks SET lease_expires_at = v_expires, last_heartbeat_at = p_now,
            updated_at = p_now
        WHERE tasks.id = p_id;
    END IF;
    INSERT INTO agents (id, first_seen_at, last_seen_at) VALUES (p_agent, p_now, p_now)
    ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
    WHERE agents.last_seen_at < p_stale;
    RETURN QUERY SELECT v_seq, v_expires,
        (SELECT 1 FROM tasks t JOIN task_notes n ON n.task_id = t.id
         WHERE t.assigned_to = p_agent AND t.status = 'in_progress'
             AND n.delivered_epoch < t.lease_epoch
             AND (n.for_epoch IS NULL OR n.for_epoch = t.lease_epoch)
         LIMIT 1);
END;
$$;
