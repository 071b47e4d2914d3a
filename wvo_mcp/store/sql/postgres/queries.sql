-- Every SQL statement wvo-mcp runs, by name: the PostgreSQL dialect of sqlite/queries.sql,
-- with the same names, parameters and result columns. Timestamps are ISO-8601 UTC text.
--
-- How this differs from the SQLite file, and why:
-- * Placeholders are psycopg's: `?` is %s, `:name` is %(name)s (a repeated name is sent
--   once), and a literal percent sign is %%. SQLite's numbered `?1 ... ?1` reuse has no
--   positional form here, so those queries read their parameters from a one-row VALUES
--   list under names, in the same order.
-- * A parameter PostgreSQL cannot type from its context (`%(x)s IS NULL`) is cast.
-- * INDEXED BY hints go: the planner picks the same partial indexes by itself.
-- * Flags and booleans come back as integers 0/1, as SQLite answers them (`(...)::int`);
--   sums of integers are cast back to bigint (PostgreSQL would answer numeric).
-- * JSON in text columns is read with the jsonb functions on `col::jsonb`.
-- * Orders that SQLite settles by its scan (ties, NULLs) are spelled out: NULLS FIRST /
--   LAST where a NULL could be seen, and `id` last where rows could tie.
-- * A claim's writes to tasks skip a row another session holds (SKIP LOCKED) rather than
--   wait on it: claims take turns, so one wait would stall them all (docs/postgres.md,
--   "Row locks"). SQLite has no row locks.

-- name: task_by_id
-- One task, every column.
SELECT * FROM tasks WHERE id = %s;

-- name: task_for_update
-- One task, every column, locked until the transaction ends (a TASK write decides on it).
SELECT * FROM tasks WHERE id = %s FOR UPDATE;

-- name: lock_expired_lease
-- A claim's expired candidate, locked for the take-over if it is still as the claim saw it;
-- a candidate another write holds (its holder's heartbeat, the monitor) is skipped.
SELECT * FROM tasks
WHERE id = %(id)s AND status = 'in_progress' AND lease_epoch = %(epoch)s
    AND lease_expires_at < %(now)s
FOR UPDATE SKIP LOCKED;

-- name: task_statuses
-- id and status of those of a JSON array of ids that exist.
SELECT id, status FROM tasks WHERE id IN (SELECT jsonb_array_elements_text(%s::jsonb));

-- name: insert_task
INSERT INTO tasks (
    id, title, description, epic_id, milestone_id, status, complexity, business_value,
    time_criticality, risk_reduction, job_size, due_at, tags, requires_approval, max_attempts,
    unmet_dependencies, dependents, effective_time_criticality, wsjf_score, metadata,
    verify_command, not_before, created_at, updated_at
) VALUES (
    %(id)s, %(title)s, %(description)s, %(epic_id)s, %(milestone_id)s, %(status)s,
    %(complexity)s, %(business_value)s, %(time_criticality)s, %(risk_reduction)s,
    %(job_size)s, %(due_at)s, %(tags)s, %(requires_approval)s, %(max_attempts)s,
    %(unmet_dependencies)s, %(dependents)s, %(effective_time_criticality)s, %(wsjf_score)s,
    %(metadata)s, %(verify_command)s, %(not_before)s, %(now)s, %(now)s
);

-- name: insert_dependency
INSERT INTO task_dependencies (task_id, depends_on_id) VALUES (%s, %s);

-- name: tasks_by_ids
-- Every column of those of a JSON array of ids that exist.
SELECT * FROM tasks WHERE id IN (SELECT jsonb_array_elements_text(%s::jsonb));

-- name: update_definition
-- A roadmap's new definition of a task (import --update); status and progress stay.
UPDATE tasks SET
    title = %(title)s, description = %(description)s, epic_id = %(epic_id)s,
    milestone_id = %(milestone_id)s, complexity = %(complexity)s,
    business_value = %(business_value)s, time_criticality = %(time_criticality)s,
    risk_reduction = %(risk_reduction)s, job_size = %(job_size)s, due_at = %(due_at)s,
    tags = %(tags)s, requires_approval = %(requires_approval)s,
    max_attempts = %(max_attempts)s, metadata = %(metadata)s,
    verify_command = %(verify_command)s, unmet_dependencies = %(unmet)s, updated_at = %(now)s
WHERE id = %(id)s;

-- name: delete_dependency
DELETE FROM task_dependencies WHERE task_id = %s AND depends_on_id = %s;

-- name: set_score
UPDATE tasks SET dependents = %s, effective_time_criticality = %s, wsjf_score = %s WHERE id = %s;

-- name: insert_event
INSERT INTO task_events (task_id, at, actor, kind, from_status, to_status, reason, lease_epoch)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s);

-- name: insert_event_if_granted
-- insert_event, only when the task's lease is the token the claim's grant (sent just before,
-- in the same transaction) gave: nothing when another write beat the grant.
INSERT INTO task_events (task_id, at, actor, kind, from_status, to_status, reason, lease_epoch)
SELECT %s::text, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text, %s::bigint
WHERE EXISTS (SELECT 1 FROM tasks WHERE id = %s AND lease_token = %s);

-- name: recent_events
-- Newest first; the caller reverses them into time order.
SELECT * FROM task_events WHERE task_id = %s ORDER BY id DESC LIMIT %s;

-- name: dependencies_of
SELECT t.id, t.status FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
WHERE d.task_id = %s ORDER BY t.id;

-- name: dependents_of
SELECT t.id, t.status FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
WHERE d.depends_on_id = %s ORDER BY t.id;

-- name: latest_checkpoint
SELECT * FROM checkpoints WHERE task_id = %s ORDER BY seq DESC LIMIT 1;

-- name: list_tasks
-- Keyset pagination by id; every filter optional.
SELECT * FROM tasks
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(epic_id)s::text IS NULL OR epic_id = %(epic_id)s)
  AND (%(milestone_id)s::text IS NULL OR milestone_id = %(milestone_id)s)
  AND (%(tag)s::text IS NULL OR EXISTS (
      SELECT 1 FROM jsonb_array_elements_text(tasks.tags::jsonb) AS tag (value)
      WHERE tag.value = %(tag)s))
  AND id > %(after)s
ORDER BY id LIMIT %(limit)s;

-- name: ready_ranked
-- The ready queue in WSJF order (ties: older first, then id), straight off the partial index.
SELECT * FROM tasks
WHERE status = 'pending' AND unmet_dependencies = 0
ORDER BY wsjf_score DESC, created_at, id;

-- name: ready_ranked_in_epic
SELECT * FROM tasks
WHERE status = 'pending' AND unmet_dependencies = 0 AND epic_id = %s
ORDER BY wsjf_score DESC, created_at, id;

-- name: expired_leases
-- In-progress tasks whose holder went silent: claimable again at once.
SELECT * FROM tasks
WHERE status = 'in_progress' AND lease_expires_at < %s
ORDER BY wsjf_score DESC, created_at, id;

-- name: expired_leases_to_take
-- A claim's: locked as they are read, in its first round trip, so a holder's write that
-- starts after it waits for it (and finds its lease taken over) instead of overtaking it
-- while the claim reads; a row another write holds is skipped, as lock_expired_lease does.
SELECT * FROM tasks
WHERE status = 'in_progress' AND lease_expires_at < %s
ORDER BY wsjf_score DESC, created_at, id
FOR UPDATE SKIP LOCKED;

-- name: queue_counts
-- In bucket order, as SQLite keeps the table (callers build ordered dicts from it).
SELECT bucket, tasks FROM queue_counts ORDER BY bucket;

-- name: backing_off_count
-- Ready by dependencies but waiting out a retry back-off.
SELECT count(*) FROM tasks
WHERE not_before > %s AND status = 'pending' AND unmet_dependencies = 0;

-- name: live_lease_counts
-- The leases live at %(now)s: all of them, and the agent's.
SELECT
    (SELECT count(*) FROM tasks
     WHERE status = 'in_progress' AND lease_expires_at >= %(now)s) AS global_used,
    (SELECT count(*) FROM tasks
     WHERE status = 'in_progress' AND assigned_to = %(agent)s
       AND lease_expires_at >= %(now)s) AS agent_used;

-- name: live_leases_by_epic
SELECT epic_id, count(*) AS n FROM tasks
WHERE status = 'in_progress' AND lease_expires_at >= %s
GROUP BY epic_id;

-- name: in_progress
-- A held task always has a lease end; NULLS FIRST is SQLite's order should one not. Ties
-- in creation order, as SQLite's index breaks them (by rowid).
SELECT * FROM tasks
WHERE status = 'in_progress'
ORDER BY lease_expires_at NULLS FIRST, created_at,
    (SELECT min(e.id) FROM task_events e WHERE e.task_id = tasks.id) NULLS LAST, id;

-- name: pending_with_due_date
-- The claim's re-ranking: each row is locked for its new score, and one another session
-- holds is skipped (it is re-ranked at the next refresh).
SELECT * FROM tasks WHERE due_at IS NOT NULL AND status = 'pending'
FOR NO KEY UPDATE SKIP LOCKED;

-- name: meta_get
SELECT value FROM settings_meta WHERE key = %s;

-- name: meta_set
INSERT INTO settings_meta (key, value) VALUES (%s, %s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: touch_agent
-- Parameters: (id, now, stale_before): written when the last sighting is older than that.
INSERT INTO agents (id, first_seen_at, last_seen_at)
SELECT p.id, p.now, p.now FROM (VALUES (%s::text, %s::text)) AS p (id, now)
ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
WHERE agents.last_seen_at < %s;

-- name: register_agent
-- Parameters: (id, client_name, now).
INSERT INTO agents (id, client_name, first_seen_at, last_seen_at)
SELECT p.id, p.client_name, p.now, p.now
FROM (VALUES (%s::text, %s::text, %s::text)) AS p (id, client_name, now)
ON CONFLICT (id) DO UPDATE SET client_name = excluded.client_name,
    last_seen_at = excluded.last_seen_at;

-- name: grant_lease
-- A new grant: fresh token, next epoch; the previous holder's token stops working. Only
-- on the epoch the claim read, and only if no other session holds the row (the lock the
-- UPDATE takes, taken first with SKIP LOCKED): no row means another write changed the task
-- first or another session holds it, and the claim takes its next candidate at once.
UPDATE tasks SET
    status = 'in_progress',
    assigned_to = %(agent)s,
    lease_token = %(token)s,
    lease_epoch = lease_epoch + 1,
    lease_seconds = %(lease_seconds)s,
    lease_expires_at = %(expires)s,
    claimed_at = %(now)s,
    last_heartbeat_at = %(now)s,
    not_before = NULL,
    updated_at = %(now)s
WHERE id = (SELECT id FROM tasks WHERE id = %(id)s FOR NO KEY UPDATE SKIP LOCKED)
    AND lease_epoch = %(epoch)s
RETURNING *;

-- name: count_lost_attempt
UPDATE tasks SET attempts = %s WHERE id = %s;

-- name: dead_letter
UPDATE tasks SET status = 'failed', attempts = %s, assigned_to = NULL, lease_token = NULL,
    lease_expires_at = NULL, updated_at = %s
WHERE id = %s;

-- name: renew_lease
-- Parameters: (lease_expires_at, lease_seconds, now, id).
UPDATE tasks SET lease_expires_at = p.expires, lease_seconds = p.lease_seconds,
    last_heartbeat_at = p.now, updated_at = p.now
FROM (VALUES (%s::text, %s::bigint, %s::text, %s::text)) AS p (expires, lease_seconds, now, id)
WHERE tasks.id = p.id;

-- name: next_checkpoint_seq
SELECT coalesce(max(seq), 0) + 1 FROM checkpoints WHERE task_id = %s;

-- name: insert_checkpoint
INSERT INTO checkpoints (task_id, seq, agent_id, lease_epoch, summary, next_steps, progress,
    files, created_at, git_head, git_commit, git_ref, sandbox_run)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s);

-- name: add_checkpoint
-- A holder's checkpoint, numbered here (the task's next seq; its row is locked, so no other
-- checkpoint of it is numbered meanwhile): insert_checkpoint and next_checkpoint_seq in one
-- statement. `ref_prefix`: the git ref without its seq (NULL: no ref).
INSERT INTO checkpoints (task_id, seq, agent_id, lease_epoch, summary, next_steps, progress,
    files, created_at, git_head, git_commit, git_ref, sandbox_run)
SELECT %(task_id)s::text, n.seq, %(agent_id)s::text, %(lease_epoch)s::bigint, %(summary)s::text,
    %(next_steps)s::text, %(progress)s::bigint, %(files)s::text, %(created_at)s::text,
    %(git_head)s::text, %(git_commit)s::text, %(ref_prefix)s::text || n.seq, %(sandbox_run)s::text
FROM (SELECT coalesce(max(seq), 0) + 1 AS seq FROM checkpoints WHERE task_id = %(task_id)s) AS n
RETURNING seq, git_ref;

-- name: prune_checkpoints
-- Keep a task's latest `kept` checkpoints (by seq; the newest is always among them): delete
-- those at or below the seq of the (kept + 1)-th newest. Nothing when there are no more.
-- Parameters: (task_id, kept).
DELETE FROM checkpoints
USING (VALUES (%s::text, %s::bigint)) AS p (task_id, kept)
WHERE checkpoints.task_id = p.task_id
    AND checkpoints.seq <= (
        SELECT c.seq FROM checkpoints c WHERE c.task_id = p.task_id
        ORDER BY c.seq DESC LIMIT 1 OFFSET p.kept);

-- name: last_sandbox_run
-- The latest sandbox run recorded on a task during one grant.
SELECT reason FROM task_events
WHERE task_id = %s AND kind = 'sandbox_run' AND lease_epoch = %s ORDER BY id DESC LIMIT 1;

-- name: task_runs
-- A task's sandbox runs and verifications (their one-line summaries and, when kept, their
-- output tails), newest first.
SELECT e.*, o.stdout, o.stderr FROM task_events e
LEFT JOIN run_outputs o ON o.event_id = e.id
WHERE e.task_id = %s AND e.kind IN ('sandbox_run', 'verified', 'verification_skipped')
ORDER BY e.id DESC LIMIT %s;

-- name: task_charges
-- What each autopilot run made for a task was charged (rules/run_charges.py), newest first.
SELECT * FROM task_events
WHERE task_id = %s AND kind = 'charged' ORDER BY id DESC LIMIT %s;

-- name: insert_run_output
-- The output tails of the event just recorded on a task (the writer lock is held, so it is
-- the task's newest event).
INSERT INTO run_outputs (event_id, stdout, stderr)
SELECT max(id), %(stdout)s, %(stderr)s FROM task_events WHERE task_id = %(task_id)s;

-- name: checkpoints_of
SELECT * FROM checkpoints WHERE task_id = %s ORDER BY seq;

-- name: checkpoint_by_seq
SELECT * FROM checkpoints WHERE task_id = %s AND seq = %s;

-- name: set_status
-- Leaving in_progress ends the lease, except a holder waiting for approval keeps its claim.
UPDATE tasks SET
    status = %(status)s,
    attempts = %(attempts)s,
    not_before = %(not_before)s,
    assigned_to = CASE WHEN %(keep_holder)s::bigint <> 0 THEN assigned_to END,
    lease_token = CASE WHEN %(keep_holder)s::bigint <> 0 THEN lease_token END,
    lease_expires_at = NULL,
    completed_at = coalesce(%(completed)s::text, completed_at),
    updated_at = %(now)s
WHERE id = %(id)s;

-- name: set_status_plain
UPDATE tasks SET status = %s, updated_at = %s WHERE id = %s;

-- name: release_dependents
-- A task is done: each dependent has one dependency fewer to wait for. In creation order,
-- as SQLite answers (it updates in rowid order): by created_at, then by the first event of
-- each (a batch's tasks are created, and their events written, in the batch's order).
WITH released AS (
    UPDATE tasks SET unmet_dependencies = unmet_dependencies - 1, updated_at = %s
    WHERE id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = %s)
    RETURNING id, status, unmet_dependencies, requires_approval, approved_by, created_at
)
SELECT id, status, unmet_dependencies, requires_approval, approved_by
FROM released
ORDER BY created_at,
    (SELECT min(e.id) FROM task_events e WHERE e.task_id = released.id) NULLS LAST, id;

-- name: dead_letters
SELECT * FROM tasks WHERE status = 'failed' ORDER BY updated_at DESC, id LIMIT %s;

-- name: all_tasks
SELECT * FROM tasks ORDER BY created_at, id;

-- name: all_dependencies
SELECT task_id, depends_on_id FROM task_dependencies ORDER BY task_id, depends_on_id;

-- name: set_approver
UPDATE tasks SET approved_by = %s WHERE id = %s;

-- name: completions
-- Who moved each task to done, from the audit trail (a task done twice would show twice).
SELECT task_id, actor FROM task_events WHERE to_status = 'done' ORDER BY id;

-- name: context_section
SELECT * FROM context_sections WHERE name = %s;

-- name: context_sections
-- Every section in a stable order: the order they were first written.
SELECT * FROM context_sections ORDER BY created_at, name;

-- name: context_total_bytes
-- Bytes of every section but the named one (the cap counts the section's new size instead).
SELECT coalesce(sum(octet_length(content)), 0)::bigint FROM context_sections WHERE name <> %s;

-- name: upsert_context_section
INSERT INTO context_sections (name, version, content, updated_by, updated_at, created_at)
VALUES (%(name)s, %(version)s, %(content)s, %(author)s, %(now)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET version = excluded.version, content = excluded.content,
    updated_by = excluded.updated_by, updated_at = excluded.updated_at;

-- name: insert_context_history
INSERT INTO context_history (name, version, mode, content, author, at)
VALUES (%(name)s, %(version)s, %(mode)s, %(content)s, %(author)s, %(now)s);

-- name: prune_context_history
DELETE FROM context_history WHERE name = %s AND version <= %s;

-- name: context_version
SELECT * FROM context_history WHERE name = %s AND version = %s;

-- name: context_history
SELECT name, version, mode, author, at, octet_length(content)::bigint AS size_bytes
FROM context_history WHERE name = %s ORDER BY version DESC LIMIT %s;

-- name: awaiting_approval
-- What waits for a person, oldest first, with the reason it was asked for.
SELECT t.id, t.title, t.assigned_to, t.updated_at,
    (SELECT reason FROM task_events e WHERE e.task_id = t.id ORDER BY e.id DESC LIMIT 1) AS reason
FROM tasks t
WHERE t.status = 'awaiting_approval' ORDER BY t.updated_at, t.id;

-- name: stopped_for_a_person
-- Blocked tasks and submissions the merge queue held: what stays put until a person acts,
-- oldest first, with the latest event's reason and whether a question waits for an answer.
SELECT t.id, t.title, t.status, t.updated_at,
    (SELECT reason FROM task_events e WHERE e.task_id = t.id ORDER BY e.id DESC LIMIT 1) AS reason,
    (EXISTS (SELECT 1 FROM task_notes q WHERE q.task_id = t.id AND q.kind = 'question'
        AND NOT EXISTS (SELECT 1 FROM task_notes a WHERE a.reply_to = q.id)))::integer AS asked
FROM tasks t
WHERE t.status IN ('blocked', 'needs_review') AND (t.status = 'blocked'
    OR (SELECT state FROM landing_entries l WHERE l.task_id = t.id ORDER BY l.id DESC LIMIT 1)
        = 'held')
ORDER BY t.updated_at, t.id LIMIT %s;

-- name: take_leadership
-- The holder renews its lease; anyone takes an expired one (a new holder starts a new term).
INSERT INTO monitor_leader (role, holder, term, acquired_at, renewed_at, expires_at)
VALUES (%(role)s, %(me)s, 1, %(now)s, %(now)s, %(expires)s)
ON CONFLICT (role) DO UPDATE SET
    term = monitor_leader.term + (monitor_leader.holder <> excluded.holder)::int,
    acquired_at = CASE WHEN monitor_leader.holder = excluded.holder
        THEN monitor_leader.acquired_at ELSE excluded.acquired_at END,
    holder = excluded.holder,
    renewed_at = excluded.renewed_at,
    expires_at = excluded.expires_at
WHERE monitor_leader.holder = excluded.holder
    OR monitor_leader.expires_at < excluded.renewed_at;

-- name: leadership
SELECT * FROM monitor_leader WHERE role = %s;

-- name: release_leadership
-- A leader shutting down lets the next process take over at its next tick.
UPDATE monitor_leader SET expires_at = %(now)s WHERE role = %(role)s AND holder = %(me)s;

-- name: done_since
SELECT count(*) FROM task_events WHERE to_status = 'done' AND at >= %s;

-- name: stale_tasks
-- Lease expired and no heartbeat or checkpoint (claiming counts) since the cut-off.
SELECT id, assigned_to AS holder, lease_epoch, lease_expires_at,
    last_heartbeat_at AS last_seen_at
FROM tasks
WHERE status = 'in_progress' AND lease_expires_at < %(now)s AND last_heartbeat_at < %(cutoff)s
-- Ties as SQLite's lease index leaves them: by lease end, then in creation order.
ORDER BY last_heartbeat_at, lease_expires_at, created_at,
    (SELECT min(e.id) FROM task_events e WHERE e.task_id = tasks.id) NULLS LAST, id
LIMIT %(limit)s;

-- name: agents_seen
-- Agents seen since the cut-off, and whether each holds a live lease (0 or 1).
SELECT a.id, EXISTS (
    SELECT 1 FROM tasks t
    WHERE t.status = 'in_progress' AND t.assigned_to = a.id AND t.lease_expires_at >= %(now)s
)::int AS busy
FROM agents a WHERE a.last_seen_at >= %(cutoff)s;

-- name: dashboard_agents
-- The dashboard's agents: identity, last seen, the task each holds (the first by id, its
-- last renewal, whether its lease is live: 0 or 1), how many tasks it has moved to done, and
-- its tokens and spend on `day`.
SELECT a.id, a.provider, a.model, a.last_seen_at,
    (SELECT t.id FROM tasks t
     WHERE t.status = 'in_progress' AND t.assigned_to = a.id ORDER BY t.id LIMIT 1) AS task_id,
    (SELECT t.title FROM tasks t
     WHERE t.status = 'in_progress' AND t.assigned_to = a.id ORDER BY t.id LIMIT 1) AS task_title,
    (SELECT t.last_heartbeat_at FROM tasks t
     WHERE t.status = 'in_progress' AND t.assigned_to = a.id ORDER BY t.id LIMIT 1) AS beat_at,
    EXISTS (
        SELECT 1 FROM tasks t
        WHERE t.status = 'in_progress' AND t.assigned_to = a.id AND t.lease_expires_at >= %(now)s
    )::int AS busy,
    (SELECT count(*) FROM task_events e
     WHERE e.to_status = 'done' AND e.actor = a.id) AS done,
    coalesce(u.input_tokens + u.output_tokens, 0) AS tokens_today,
    coalesce(u.cost, 0) AS cost_today
FROM agents a LEFT JOIN agent_usage u ON u.agent_id = a.id AND u.day = %(day)s
ORDER BY a.id LIMIT %(limit)s;

-- name: silent_agent_count
SELECT count(*) FROM agents WHERE last_seen_at < %s;

-- name: stuck_approvals
SELECT id, updated_at AS since FROM tasks
WHERE status = 'awaiting_approval' AND updated_at < %s ORDER BY updated_at, id LIMIT %s;

-- name: dead_letter_ids
SELECT id FROM tasks WHERE status = 'failed' ORDER BY id LIMIT %s;

-- name: dependency_drift
-- A slice of unfinished tasks (by id, after a cursor) whose stored count of unmet
-- dependencies differs from the real one; a tick checks one slice, not the whole graph.
SELECT id, stored, actual FROM (
    SELECT t.id, t.unmet_dependencies AS stored, (
        SELECT count(*) FROM task_dependencies d JOIN tasks p ON p.id = d.depends_on_id
        WHERE d.task_id = t.id AND p.status <> 'done'
    ) AS actual
    FROM tasks t
    WHERE t.id > %(after)s
        AND t.status IN ('pending', 'awaiting_approval', 'blocked', 'needs_review')
    ORDER BY t.id LIMIT %(slice)s
) AS slice
WHERE stored <> actual ORDER BY id LIMIT %(cap)s;

-- name: drift_slice_end
-- The last task id of that slice: where the next tick's check starts.
SELECT max(id) FROM (
    SELECT id FROM tasks
    WHERE id > %(after)s AND status IN ('pending', 'awaiting_approval', 'blocked', 'needs_review')
    ORDER BY id LIMIT %(slice)s
) AS slice;

-- name: open_anomaly_subjects
-- In subject order, as SQLite reads them off the open-anomaly index.
SELECT subject FROM health_anomalies WHERE kind = %s AND resolved_at IS NULL ORDER BY subject;

-- name: unmet_dependencies_of
SELECT count(*) FROM task_dependencies d JOIN tasks p ON p.id = d.depends_on_id
WHERE d.task_id = %s AND p.status <> 'done';

-- name: set_unmet_dependencies
UPDATE tasks SET unmet_dependencies = %s, updated_at = %s WHERE id = %s;

-- name: blocked_by_abandoned
-- Pending tasks waiting on a dependency that will never be done without a person.
SELECT DISTINCT d.task_id AS id FROM tasks p
JOIN task_dependencies d ON d.depends_on_id = p.id
JOIN tasks t ON t.id = d.task_id
WHERE p.status IN ('cancelled', 'failed') AND t.status = 'pending'
ORDER BY d.task_id LIMIT %s;

-- name: requeue_lost
-- The health monitor takes a silent holder's task back: pending again, lease ended.
UPDATE tasks SET status = 'pending', attempts = %s, not_before = %s, assigned_to = NULL,
    lease_token = NULL, lease_expires_at = NULL, updated_at = %s
WHERE id = %s;

-- name: insert_health_snapshot
INSERT INTO health_snapshots (at, leader, term, remediate, anomalies, actions, observation)
VALUES (%s, %s, %s, %s, %s, %s, %s);

-- name: latest_health_snapshot
SELECT * FROM health_snapshots ORDER BY id DESC LIMIT 1;

-- name: throughput_history
-- Completions per hour seen by earlier ticks: the baseline throughput is judged against.
-- (NULL where a snapshot lacks the count, as SQLite's json_extract answers.)
SELECT (observation::jsonb -> 'counts' ->> 'done_last_hour')::bigint AS done
FROM health_snapshots WHERE at >= %s AND at < %s ORDER BY at, id;

-- name: open_anomalies
SELECT * FROM health_anomalies WHERE resolved_at IS NULL
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, first_seen_at, id
LIMIT %s;

-- name: open_anomaly_keys
SELECT kind, subject FROM health_anomalies WHERE resolved_at IS NULL;

-- name: open_anomaly_count
SELECT count(*) FROM health_anomalies WHERE resolved_at IS NULL;

-- name: upsert_anomaly
INSERT INTO health_anomalies (kind, subject, severity, message, first_seen_at, last_seen_at)
VALUES (%(kind)s, %(subject)s, %(severity)s, %(message)s, %(now)s, %(now)s)
ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO UPDATE SET
    severity = excluded.severity, message = excluded.message, last_seen_at = excluded.last_seen_at;

-- name: resolve_anomaly
UPDATE health_anomalies SET resolved_at = %s
WHERE kind = %s AND subject = %s AND resolved_at IS NULL;

-- name: recent_monitor_actions
SELECT * FROM task_events
WHERE actor = 'health-monitor' ORDER BY id DESC LIMIT %s;

-- name: prune_health_snapshots
DELETE FROM health_snapshots WHERE at < %s;

-- name: prune_resolved_anomalies
DELETE FROM health_anomalies WHERE resolved_at < %s;

-- name: old_events
-- Events older than the cut-off, in time order after a cursor, with their task's status.
SELECT e.id, e.at, t.status FROM task_events e
JOIN tasks t ON t.id = e.task_id
WHERE e.at < %(cutoff)s AND (e.at, e.id) > (%(after_at)s::text, %(after_id)s::bigint)
ORDER BY e.at, e.id LIMIT %(batch)s;

-- name: delete_finished_events
-- Those of a JSON array of event ids whose task is (still) done or cancelled.
DELETE FROM task_events
WHERE id IN (SELECT (jsonb_array_elements_text(%s::jsonb))::bigint)
AND (SELECT status FROM tasks WHERE id = task_events.task_id) IN ('done', 'cancelled');

-- name: provider_window_usage
-- Tokens and spend per provider in the given hour and day periods.
SELECT provider, period, sum(input_tokens + output_tokens)::bigint AS tokens, sum(cost) AS cost
FROM provider_usage WHERE period IN (%s, %s) GROUP BY provider, period;

-- name: provider_tier_usage
SELECT provider, tier, period, input_tokens + output_tokens AS tokens, cost, calls, failures
FROM provider_usage WHERE period IN (%s, %s);

-- name: provider_load
-- In-flight tasks per provider, and the tokens still reserved for them.
SELECT routed_provider AS provider, count(*) AS in_flight,
    coalesce(sum(greatest(reserved_tokens - used_tokens, 0)), 0)::bigint AS reserved
FROM tasks
WHERE status = 'in_progress' AND routed_provider IS NOT NULL
GROUP BY routed_provider;

-- name: provider_breakers
-- Every stored breaker, and whether its half-open trial task is still out (0 or 1).
SELECT b.*,
    coalesce((t.status = 'in_progress' AND t.routed_provider = b.provider)::int, 0) AS probe_out
FROM provider_breakers b LEFT JOIN tasks t ON t.id = b.probe_task;

-- name: add_agent_usage
INSERT INTO agent_usage (agent_id, day, input_tokens, output_tokens, cost)
VALUES (%(agent_id)s, %(day)s, %(input)s, %(output)s, %(cost)s)
ON CONFLICT (agent_id, day) DO UPDATE SET
    input_tokens = agent_usage.input_tokens + excluded.input_tokens,
    output_tokens = agent_usage.output_tokens + excluded.output_tokens,
    cost = agent_usage.cost + excluded.cost;

-- name: add_usage
INSERT INTO provider_usage (provider, period, tier, input_tokens, output_tokens, cost, calls,
    failures)
VALUES (%(provider)s, %(period)s, %(tier)s, %(input)s, %(output)s, %(cost)s, 1, %(failed)s)
ON CONFLICT (provider, period, tier) DO UPDATE SET
    input_tokens = provider_usage.input_tokens + excluded.input_tokens,
    output_tokens = provider_usage.output_tokens + excluded.output_tokens,
    cost = provider_usage.cost + excluded.cost,
    calls = provider_usage.calls + 1,
    failures = provider_usage.failures + excluded.failures;

-- name: save_breaker
INSERT INTO provider_breakers (provider, state, failures, opens, reopens_at, probe_task, updated_at)
VALUES (%(provider)s, %(state)s, %(failures)s, %(opens)s, %(reopens_at)s, %(probe_task)s, %(now)s)
ON CONFLICT (provider) DO UPDATE SET state = excluded.state, failures = excluded.failures,
    opens = excluded.opens, reopens_at = excluded.reopens_at, probe_task = excluded.probe_task,
    updated_at = excluded.updated_at;

-- name: set_probe
-- The one task a half-open breaker lets through.
UPDATE provider_breakers SET probe_task = %s, updated_at = %s WHERE provider = %s;

-- name: set_route
-- What a grant was routed to, and the tokens reserved for it (NULLs: not routed).
UPDATE tasks SET routed_provider = %s, routed_tier = %s, reserved_tokens = %s, used_tokens = 0,
    used_cost = 0
WHERE id = %s;

-- name: add_task_usage
-- The current attempt's tokens and spend, when it runs on its routed provider.
UPDATE tasks SET used_tokens = used_tokens + %s, used_cost = used_cost + %s
WHERE id = %s AND routed_provider = %s;

-- name: requeue_pending
-- A person re-queues a pending task: routed afresh from its lowest tier, at once.
UPDATE tasks SET failed_provider = NULL, failed_tier = NULL, not_before = NULL, updated_at = %(now)s
WHERE id = %(id)s;

-- name: set_failed_tier
-- Where the attempt that just failed ran: the next attempt is routed one tier up.
UPDATE tasks SET failed_provider = %s, failed_tier = %s WHERE id = %s;

-- name: agent_identity
SELECT provider, model FROM agents WHERE id = %s;

-- name: set_agent_identity
-- Parameters: (id, provider, model, now).
INSERT INTO agents (id, provider, model, first_seen_at, last_seen_at)
SELECT p.id, p.provider, p.model, p.now, p.now
FROM (VALUES (%s::text, %s::text, %s::text, %s::text)) AS p (id, provider, model, now)
ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, model = excluded.model,
    last_seen_at = excluded.last_seen_at;

-- name: ready_ranked_with_complexity
-- The ready queue of one complexity, in WSJF order.
SELECT * FROM tasks
WHERE status = 'pending' AND unmet_dependencies = 0 AND complexity = %s
ORDER BY wsjf_score DESC, created_at, id;

-- name: ready_ranked_routed_alone
-- Ready tasks whose route depends on more than their complexity, in WSJF order (the
-- condition is the partial index's, word for word, so the planner can use it).
SELECT * FROM tasks
WHERE status = 'pending' AND unmet_dependencies = 0
    AND (failed_provider IS NOT NULL OR strpos(metadata, 'estimated_tokens') > 0)
ORDER BY wsjf_score DESC, created_at, id;

-- name: autopilot_start
INSERT INTO autopilot_runs (id, started_at, seen_at, state)
VALUES (%(id)s, %(now)s, %(now)s, 'running');

-- name: autopilot_beat
-- An autopilot's round: what it is doing now; answers what a person wants of it.
UPDATE autopilot_runs SET seen_at = %(now)s, state = %(state)s, report = %(report)s
WHERE id = %(id)s
RETURNING wanted, asked_by;

-- name: autopilot_heard
-- The request is acted on: forget it (unless another came meanwhile).
UPDATE autopilot_runs SET wanted = NULL WHERE id = %(id)s AND wanted = %(wanted)s;

-- name: autopilot_want
UPDATE autopilot_runs SET wanted = %(wanted)s, asked_by = %(by)s
WHERE state <> 'ended' AND (%(id)s::text IS NULL OR id = %(id)s);

-- name: autopilot_runs
SELECT * FROM autopilot_runs WHERE state <> 'ended' OR seen_at >= %(since)s
ORDER BY started_at, id;

-- name: token_insert
INSERT INTO api_tokens (id, secret_sha256, name, role, created_at, created_by, expires_at, scope,
    provider)
VALUES (%(id)s, %(secret_sha256)s, %(name)s, %(role)s, %(now)s, %(by)s, %(expires_at)s,
        %(scope)s, %(provider)s);

-- name: token_by_secret
-- A live (neither revoked nor expired) token by the digest of its secret.
SELECT * FROM api_tokens
WHERE secret_sha256 = %(digest)s AND revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > %(now)s);

-- name: token_extend
-- A run token lives on while its run does: its expiry moves on (never for a revoked one).
UPDATE api_tokens SET expires_at = %(expires_at)s WHERE id = %(id)s AND revoked_at IS NULL;

-- name: token_used
-- At most once every ten minutes per token, so verifying a request rarely writes.
UPDATE api_tokens SET last_used_at = %(now)s
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < %(stale_before)s);

-- name: tokens_all
SELECT id, name, role, created_at, created_by, last_used_at, revoked_at, expires_at, scope,
    provider
FROM api_tokens
ORDER BY created_at, id;

-- name: tokens_revoked
-- Tokens are never deleted nor revived, so this count changes exactly when one is revoked.
SELECT count(*) AS revoked FROM api_tokens WHERE revoked_at IS NOT NULL;

-- name: token_revoke
UPDATE api_tokens SET revoked_at = %(now)s WHERE id = %(id)s AND revoked_at IS NULL;

-- name: events_after
-- The dashboard's change cursor: events past an id, oldest first (the primary key).
SELECT id, task_id FROM task_events WHERE id > %s ORDER BY id LIMIT %s;

-- name: last_event_id
SELECT coalesce(max(id), 0)::bigint FROM task_events;

-- name: dashboard_marks
-- What the views other than the board show changes when these do (task moves are the
-- event log's): usage reports and breakers, the monitor's ticks, autopilot rounds. Each
-- reads a small table, one index range or the end of a primary key. The merge queue's
-- open entries, each with its state and place (a handful of rows), make the Autopilot
-- view's mark too: its Landing section shows them and the figures.
SELECT
    (SELECT coalesce(sum(calls), 0)::bigint FROM provider_usage
     WHERE period = %(day)s) AS usage,
    (SELECT coalesce(max(updated_at), '') FROM provider_breakers) AS breakers,
    (SELECT coalesce(max(id), 0) FROM health_snapshots) AS health,
    (SELECT coalesce(max(seen_at), '') FROM autopilot_runs) AS autopilot,
    (SELECT coalesce(string_agg(id::text || state || position::text, ',' ORDER BY id), '')
     FROM landing_entries
     WHERE state IN ('review', 'queued', 'testing', 'landing', 'held')) AS queue;

-- name: done_per_hour
-- Completions per hour ('YYYY-MM-DDTHH') since a time, for the health view's chart.
SELECT substr(at, 1, 13) AS hour, count(*) AS done FROM task_events
WHERE to_status = 'done' AND at >= %(since)s
GROUP BY substr(at, 1, 13) ORDER BY hour;

-- name: lease_beats
-- Held tasks and their last heartbeat or checkpoint (which write no event): WIP-limited.
SELECT id, last_heartbeat_at FROM tasks WHERE status = 'in_progress';

-- name: board_page
-- One status column of the dashboard, keyset-paged by id; every filter optional (search:
-- a pattern matched case-insensitively, as SQLite's LIKE does, over id and title).
SELECT t.id, t.title, t.status, t.epic_id, t.wsjf_score, t.assigned_to, t.lease_expires_at,
       t.attempts, t.unmet_dependencies,
       (SELECT c.progress FROM checkpoints c WHERE c.task_id = t.id
        ORDER BY c.seq DESC LIMIT 1) AS progress
FROM tasks t
WHERE t.status = %(status)s AND t.id > %(after)s
  AND (%(epic_id)s::text IS NULL OR t.epic_id = %(epic_id)s)
  AND (%(tag)s::text IS NULL OR EXISTS (
      SELECT 1 FROM jsonb_array_elements_text(t.tags::jsonb) AS tag (value)
      WHERE tag.value = %(tag)s))
  AND (%(agent)s::text IS NULL OR t.assigned_to = %(agent)s)
  AND (%(search)s::text IS NULL OR t.id ILIKE %(search)s ESCAPE '\'
       OR t.title ILIKE %(search)s ESCAPE '\')
ORDER BY t.id LIMIT %(limit)s;

-- name: board_cards
-- The dashboard's cards of a JSON array of ids, those that pass the filters.
SELECT t.id, t.title, t.status, t.epic_id, t.wsjf_score, t.assigned_to, t.lease_expires_at,
       t.attempts, t.unmet_dependencies,
       (SELECT c.progress FROM checkpoints c WHERE c.task_id = t.id
        ORDER BY c.seq DESC LIMIT 1) AS progress
FROM tasks t
WHERE t.id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb))
  AND (%(epic_id)s::text IS NULL OR t.epic_id = %(epic_id)s)
  AND (%(tag)s::text IS NULL OR EXISTS (
      SELECT 1 FROM jsonb_array_elements_text(t.tags::jsonb) AS tag (value)
      WHERE tag.value = %(tag)s))
  AND (%(agent)s::text IS NULL OR t.assigned_to = %(agent)s)
  AND (%(search)s::text IS NULL OR t.id ILIKE %(search)s ESCAPE '\'
       OR t.title ILIKE %(search)s ESCAPE '\')
ORDER BY t.id;

-- name: raise_gate
-- A task's gate only rises (none -> land -> review) short of a person.
UPDATE tasks SET gate = %(gate)s
WHERE id = %(id)s AND (gate IS NULL OR (gate = 'land' AND %(gate)s = 'review'));

-- name: mark_submitted
-- The holder submits its work: who wrote it is kept; the commit comes when the lander takes it.
UPDATE tasks SET submitted_by = %(author)s, submitted_commit = NULL WHERE id = %(id)s;

-- name: set_submitted_commit
UPDATE tasks SET submitted_commit = %(commit)s
WHERE id = %(id)s AND status = 'needs_review' AND submitted_by IS NOT NULL;

-- name: insert_review
INSERT INTO reviews (task_id, commit_sha, reviewer, verdict, notes, at)
VALUES (%(task_id)s, %(commit)s, %(reviewer)s, %(verdict)s, %(notes)s, %(now)s);

-- name: latest_review
-- The newest review of exactly this commit.
SELECT reviewer, verdict, notes, at FROM reviews
WHERE task_id = %(task_id)s AND commit_sha = %(commit)s ORDER BY id DESC LIMIT 1;

-- The merge queue (services/landing_queue.py).

-- name: latest_entry
SELECT * FROM landing_entries WHERE task_id = %(task_id)s ORDER BY id DESC LIMIT 1;

-- name: insert_entry
-- Queue order is one sequence over every target: a later entry lands later.
INSERT INTO landing_entries (task_id, target, base, commit_sha, author, state, position,
    returns, entered_at, queued_at)
VALUES (%(task_id)s, %(target)s, %(base)s, %(commit)s, %(author)s, %(state)s,
    (SELECT coalesce(max(position), 0) + 1 FROM landing_entries), %(returns)s, %(now)s, %(queued_at)s);


-- name: held_by_agents
-- Tasks in progress held by any of a JSON array of agents (a dead autopilot's workers).
SELECT id, assigned_to, lease_token FROM tasks
WHERE status = 'in_progress' AND assigned_to IN (SELECT jsonb_array_elements_text(%(agents)s::jsonb));

-- name: untaken_submissions
-- Gated tasks submitted to an autopilot whose commits nobody took yet.
SELECT id, submitted_by FROM tasks
WHERE status = 'needs_review' AND gate IS NOT NULL AND submitted_by IS NOT NULL
  AND submitted_commit IS NULL
ORDER BY updated_at;

-- name: entry_by_id
SELECT * FROM landing_entries WHERE id = %(id)s;

-- name: reviews_waiting
-- Submissions waiting for a reviewer nobody (alive) has been given yet.
SELECT * FROM landing_entries
WHERE state = 'review' AND (claimed_by IS NULL OR claim_until < %(now)s)
ORDER BY position LIMIT %(limit)s;

-- name: claim_review
UPDATE landing_entries SET claimed_by = %(run)s, claim_until = %(until)s
WHERE id = %(id)s AND state = 'review' AND (claimed_by IS NULL OR claim_until < %(now)s);

-- name: unclaim_review
-- Its reviewer gave no verdict: another is asked.
UPDATE landing_entries SET claimed_by = NULL, claim_until = NULL
WHERE id = %(id)s AND state = 'review';

-- name: renew_reviews
UPDATE landing_entries SET claim_until = %(until)s WHERE claimed_by = %(run)s AND state = 'review';

-- name: drop_reviews
UPDATE landing_entries SET claimed_by = NULL, claim_until = NULL
WHERE claimed_by = %(run)s AND state = 'review';

-- name: entry_approved
-- Approved: it joins the back of its queue.
UPDATE landing_entries SET state = 'queued', queued_at = %(now)s, claimed_by = NULL,
    claim_until = NULL, position = (SELECT coalesce(max(position), 0) + 1 FROM landing_entries)
WHERE id = %(id)s AND state = 'review';

-- name: entry_ends
UPDATE landing_entries SET state = %(state)s, reason = %(reason)s, finished_at = %(now)s,
    claimed_by = NULL, claim_until = NULL, landing_id = NULL
WHERE id = %(id)s AND state = %(from)s;

-- name: close_open_entries
-- A person moved the task out of needs_review: its submission leaves the queue (one whose
-- landing is under way is finished or abandoned by whoever completes that landing).
UPDATE landing_entries SET state = 'closed', reason = %(reason)s, finished_at = %(now)s,
    claimed_by = NULL, claim_until = NULL
WHERE task_id = %(task_id)s AND state IN ('review', 'queued', 'testing', 'held');

-- name: target_row
SELECT * FROM landing_targets WHERE target = %(target)s;

-- name: insert_target
INSERT INTO landing_targets (target, holder, fence, until) VALUES (%(target)s, NULL, 0, NULL)
ON CONFLICT (target) DO NOTHING;

-- name: take_target
-- A new holder: the fence rises, so anything the last one still writes is refused.
UPDATE landing_targets SET holder = %(run)s, fence = fence + 1, until = %(until)s
WHERE target = %(target)s AND fence = %(fence)s;

-- name: renew_target
UPDATE landing_targets SET until = %(until)s
WHERE target = %(target)s AND holder = %(run)s AND fence = %(fence)s;

-- name: renew_targets
-- A live holder's leases move on, each under the fence it holds.
UPDATE landing_targets SET until = %(until)s WHERE holder = %(run)s;

-- name: release_targets
UPDATE landing_targets SET holder = NULL, until = NULL WHERE holder = %(run)s;

-- name: queue_head
SELECT * FROM landing_entries WHERE target = %(target)s AND state = 'queued'
ORDER BY position, id LIMIT %(limit)s;

-- name: adopt_entries
-- Open entries queued under a target's name from before targets were named by repository.
UPDATE landing_entries SET target = %(new)s
WHERE target = %(old)s AND state IN ('review', 'queued', 'testing', 'landing', 'held');

-- name: adopt_landings
UPDATE landings SET target = %(new)s WHERE target = %(old)s AND state = 'intent';

-- name: queued_targets
SELECT DISTINCT target FROM landing_entries WHERE state IN ('queued', 'testing', 'landing');

-- name: entries_move
UPDATE landing_entries SET state = %(to)s
WHERE id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint) AND state = %(from)s;

-- name: entries_unstart
-- Entries a holder took into a batch and did not finish: back in the queue, where they were.
UPDATE landing_entries SET state = 'queued' WHERE target = %(target)s AND state = 'testing';

-- name: insert_landing
INSERT INTO landings (target, old, new, tree, checks, state, run, at)
VALUES (%(target)s, %(old)s, %(new)s, %(tree)s, %(checks)s, 'intent', %(run)s, %(now)s)
RETURNING id;

-- name: entries_landing
UPDATE landing_entries SET state = 'landing', landing_id = %(landing)s
WHERE id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint) AND state = 'testing';

-- name: landing_by_id
SELECT * FROM landings WHERE id = %(id)s;

-- name: landing_intents
SELECT * FROM landings WHERE target = %(target)s AND state = 'intent' ORDER BY id;

-- name: landing_ends
UPDATE landings SET state = %(state)s, landed_at = %(now)s WHERE id = %(id)s AND state = 'intent';

-- name: entries_of_landing
SELECT * FROM landing_entries WHERE landing_id = %(id)s AND state = 'landing' ORDER BY position;

-- name: entries_landed
UPDATE landing_entries SET state = 'landed', finished_at = %(now)s
WHERE landing_id = %(id)s AND state = 'landing';

-- name: entries_unland
UPDATE landing_entries SET state = 'queued', landing_id = NULL
WHERE landing_id = %(id)s AND state = 'landing';

-- name: entries_unland_some
-- Some entries of a landing (a batch narrowed): back in the queue, where they were.
UPDATE landing_entries SET state = 'queued', landing_id = NULL
WHERE landing_id = %(id)s AND state = 'landing'
  AND id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb)::bigint);

-- name: landings_since
-- A target's landings after one (by id), newest first.
SELECT * FROM landings WHERE target = %(target)s AND state = 'landed' AND id > %(after)s
ORDER BY id DESC;

-- name: queue_open
-- Every open entry, in queue order, with its task's title.
SELECT e.*, t.title FROM landing_entries e JOIN tasks t ON t.id = e.task_id
WHERE e.state IN ('review', 'queued', 'testing', 'landing', 'held')
ORDER BY e.target, e.position;

-- name: add_task_spend
-- A model call charged to a task, per provider and tier, over every attempt of the task.
INSERT INTO task_usage (task_id, provider, tier, input_tokens, output_tokens, cost, calls)
VALUES (%(task_id)s, %(provider)s, %(tier)s, %(input)s, %(output)s, %(cost)s, 1)
ON CONFLICT (task_id, provider, tier) DO UPDATE SET
    input_tokens = task_usage.input_tokens + excluded.input_tokens,
    output_tokens = task_usage.output_tokens + excluded.output_tokens,
    cost = task_usage.cost + excluded.cost,
    calls = task_usage.calls + 1;

-- name: ended_since
-- Entries landed or returned to a worker since a time (off landing_entries_ended).
SELECT state, queued_at, finished_at FROM landing_entries
WHERE state IN ('landed', 'returned') AND finished_at >= %(since)s;

-- name: landed_spend_since
-- What the tasks landed since a time cost, per provider and tier, over all their attempts.
SELECT provider, tier, count(*) AS changes, sum(input_tokens)::bigint AS input_tokens,
    sum(output_tokens)::bigint AS output_tokens, sum(cost) AS cost
FROM task_usage
WHERE task_id IN (SELECT task_id FROM landing_entries
                  WHERE state = 'landed' AND finished_at >= %(since)s)
GROUP BY provider, tier ORDER BY provider, tier;

-- name: landing_waits
-- One landing's entries: when each was queued and when it landed.
SELECT queued_at, finished_at FROM landing_entries WHERE landing_id = %(id)s AND state = 'landed';

-- name: landing_spend
-- What one landing's tasks cost, per provider and tier, over all their attempts.
SELECT provider, tier, count(*) AS changes, sum(input_tokens)::bigint AS input_tokens,
    sum(output_tokens)::bigint AS output_tokens, sum(cost) AS cost
FROM task_usage
WHERE task_id IN (SELECT task_id FROM landing_entries WHERE landing_id = %(id)s AND state = 'landed')
GROUP BY provider, tier ORDER BY provider, tier;

-- name: task_sent_back
-- How often the task's submissions came back, from the queue or a review: none, and its
-- landing is one on the first try.
SELECT count(*)::bigint FROM landing_entries
WHERE task_id = %(task_id)s AND state IN ('returned', 'changes');

-- name: record_route_outcome
-- One outcome of a route: it counts once in outcomes; every other sum fades by :keep, then
-- the increments are added (rules/learning.py). One statement: no writer loses an update.
INSERT INTO route_outcomes (provider, tier, task_class, outcomes, attempts, first_try_landed,
    landed, returned, failed, held, tokens, cost, updated_at)
VALUES (%(provider)s, %(tier)s, %(task_class)s, 1, %(attempts)s, %(first_try_landed)s,
    %(landed)s, %(returned)s, %(failed)s, %(held)s, %(tokens)s, %(cost)s, %(now)s)
ON CONFLICT (provider, tier, task_class) DO UPDATE SET
    outcomes = route_outcomes.outcomes + 1,
    attempts = route_outcomes.attempts * %(keep)s + excluded.attempts,
    first_try_landed = route_outcomes.first_try_landed * %(keep)s + excluded.first_try_landed,
    landed = route_outcomes.landed * %(keep)s + excluded.landed,
    returned = route_outcomes.returned * %(keep)s + excluded.returned,
    failed = route_outcomes.failed * %(keep)s + excluded.failed,
    held = route_outcomes.held * %(keep)s + excluded.held,
    tokens = route_outcomes.tokens * %(keep)s + excluded.tokens,
    cost = route_outcomes.cost * %(keep)s + excluded.cost,
    updated_at = excluded.updated_at;

-- name: usage_reports_noted
-- How many of an attempt's own usage reports are noted on its task (counted up to the cap).
SELECT count(*) AS noted FROM (
    SELECT 1 FROM task_events
    WHERE task_id = %s AND kind = 'usage_reported' AND lease_epoch = %s
    LIMIT %s
) AS kept;

-- name: add_route_cost
-- What an attempt cost after its outcome was counted: added to its route's tokens and cost
-- as part of that outcome (no outcome of its own, nothing faded).
INSERT INTO route_outcomes (provider, tier, task_class, outcomes, attempts, first_try_landed,
    landed, returned, failed, held, tokens, cost, updated_at)
VALUES (%(provider)s, %(tier)s, %(task_class)s, 0, 0, 0, 0, 0, 0, 0, %(tokens)s, %(cost)s, %(now)s)
ON CONFLICT (provider, tier, task_class) DO UPDATE SET
    tokens = route_outcomes.tokens + excluded.tokens,
    cost = route_outcomes.cost + excluded.cost,
    updated_at = excluded.updated_at;

-- name: route_outcomes_all
-- Every route's decayed sums, in one order.
SELECT provider, tier, task_class, outcomes, attempts, first_try_landed, landed, returned,
    failed, held, tokens, cost, updated_at
FROM route_outcomes ORDER BY provider, tier, task_class;

-- name: route_outcomes_of_provider
SELECT provider, tier, task_class, outcomes, attempts, first_try_landed, landed, returned,
    failed, held, tokens, cost, updated_at
FROM route_outcomes WHERE provider = %(provider)s ORDER BY tier, task_class;

-- name: add_note
-- A person's message, a pause, a redirect, a question or an answer on a task (task_notes).
INSERT INTO task_notes (task_id, kind, body, author, created_at, for_epoch, reply_to)
VALUES (%(task_id)s, %(kind)s, %(body)s, %(author)s, %(now)s, %(for_epoch)s, %(reply_to)s);

-- name: notes_due
-- Whether the agent's held tasks have notes it was not given yet (every tool call asks).
SELECT 1 AS due FROM tasks t JOIN task_notes n ON n.task_id = t.id
WHERE t.assigned_to = %s AND t.status = 'in_progress' AND n.delivered_epoch < t.lease_epoch
    AND (n.for_epoch IS NULL OR n.for_epoch = t.lease_epoch)
LIMIT 1;

-- name: deliver_notes
-- Those notes, marked given to their task's holder of now (its lease epoch).
UPDATE task_notes SET delivered_epoch = t.lease_epoch
FROM tasks t
WHERE t.id = task_notes.task_id AND t.assigned_to = %s AND t.status = 'in_progress'
    AND task_notes.delivered_epoch < t.lease_epoch
    AND (task_notes.for_epoch IS NULL OR task_notes.for_epoch = t.lease_epoch)
RETURNING task_notes.id, task_notes.task_id, task_notes.kind, task_notes.body,
    task_notes.author, task_notes.created_at;

-- name: notes_of
-- A task's notes, newest first.
SELECT * FROM task_notes WHERE task_id = %s ORDER BY id DESC LIMIT %s;

-- name: open_question
-- The task's newest question that no answer replies to.
SELECT * FROM task_notes q
WHERE q.task_id = %s AND q.kind = 'question'
    AND NOT EXISTS (SELECT 1 FROM task_notes a WHERE a.reply_to = q.id)
ORDER BY q.id DESC LIMIT 1;

-- name: open_questions
-- The inbox: questions no answer replies to, on tasks still waiting for one, oldest first.
SELECT q.task_id, q.body, q.author, q.created_at, t.title
FROM task_notes q JOIN tasks t ON t.id = q.task_id
WHERE q.kind = 'question' AND t.status = 'blocked'
    AND NOT EXISTS (SELECT 1 FROM task_notes a WHERE a.reply_to = q.id)
ORDER BY q.id LIMIT %s;

-- name: outsider_words
-- The inbox: the newest words of those who do not steer (issue 68), on tasks still open.
SELECT e.task_id, e.at, e.actor, e.reason, t.title
FROM task_events e JOIN tasks t ON t.id = e.task_id
WHERE e.kind = 'outsider' AND t.status NOT IN ('done', 'cancelled')
ORDER BY e.id DESC LIMIT %s;

-- name: held_tasks
-- Tasks in progress, with their holder's lease epoch (a fleet's pause or message).
SELECT id, epic_id, lease_epoch, assigned_to FROM tasks
WHERE status = 'in_progress' ORDER BY id;

-- name: epic_task_count
SELECT count(*) AS tasks FROM tasks WHERE epic_id = %s;

-- name: withdraw_pause_notes
-- A pause lifted before its holder heard of it: the holder is not told to stop.
UPDATE task_notes SET delivered_epoch = for_epoch
WHERE task_id = %s AND kind = 'pause' AND for_epoch IS NOT NULL AND delivered_epoch < for_epoch;

-- name: pauses
-- What a person paused (a handful of rows at most).
SELECT * FROM pauses ORDER BY created_at, scope, key;

-- name: add_pause
INSERT INTO pauses (scope, key, author, reason, created_at)
VALUES (%(scope)s, %(key)s, %(author)s, %(reason)s, %(now)s)
ON CONFLICT (scope, key) DO NOTHING
RETURNING scope;

-- name: remove_pause
DELETE FROM pauses WHERE scope = %s AND key = %s RETURNING author, created_at;

-- name: redirect_task
-- A person's new description or acceptance check for a task (NULL: keep it).
UPDATE tasks SET description = coalesce(%(description)s, description),
    verify_command = coalesce(%(verify_command)s, verify_command),
    updated_at = %(now)s
WHERE id = %(id)s;

-- name: savepoint_next_claim
-- plan_update's claim_next claims after its move in the same transaction, from here.
SAVEPOINT next_claim;

-- name: rollback_to_next_claim
-- A claim_next that failed is undone alone; the move before it stands.
ROLLBACK TO SAVEPOINT next_claim;

-- name: renew_held_lease
-- A heartbeat's renewal when the token holds the task in progress (no row: it does not,
-- and nothing changed); the lease from now, for the seconds asked or the task's own.
-- `notes_due`: notes_due's answer for the agent, asked in the same statement (one statement
-- fewer per heartbeat; the renewal changes nothing notes_due reads).
UPDATE tasks SET lease_seconds = coalesce(%(seconds)s::bigint, lease_seconds),
    lease_expires_at = to_char(
        (%(now)s::timestamptz AT TIME ZONE 'UTC')
            + make_interval(secs => coalesce(%(seconds)s::bigint, lease_seconds)),
        'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    last_heartbeat_at = %(now)s, updated_at = %(now)s
WHERE id = %(id)s AND lease_token = %(token)s AND status = 'in_progress'
RETURNING lease_expires_at,
    (SELECT 1 FROM tasks t JOIN task_notes n ON n.task_id = t.id
     WHERE t.assigned_to = %(agent)s AND t.status = 'in_progress' AND n.delivered_epoch < t.lease_epoch
         AND (n.for_epoch IS NULL OR n.for_epoch = t.lease_epoch)
     LIMIT 1) AS notes_due;

-- name: touch_agent_holding
-- touch_agent, only when the agent's token holds the task in progress (after
-- renew_held_lease in the same transaction: only when that renewed it).
INSERT INTO agents (id, first_seen_at, last_seen_at)
SELECT %(agent)s::text, %(now)s::text, %(now)s::text
WHERE EXISTS (SELECT 1 FROM tasks
              WHERE id = %(id)s AND lease_token = %(token)s AND status = 'in_progress')
ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
WHERE agents.last_seen_at < %(stale)s;

-- name: pull_of
-- A task's pull request onto a target.
SELECT * FROM pulls WHERE target = %(target)s AND task_id = %(task_id)s;

-- name: pull_opened
-- A task's pull request, opened or updated to carry a landing.
INSERT INTO pulls (target, task_id, number, url, branch, head, state, landing_id, waiting,
                   updated_at)
VALUES (%(target)s, %(task_id)s, %(number)s, %(url)s, %(branch)s, %(head)s, 'open', %(landing_id)s, '', %(now)s)
ON CONFLICT (target, task_id) DO UPDATE SET number = excluded.number, url = excluded.url,
    branch = excluded.branch, head = excluded.head, state = 'open',
    landing_id = excluded.landing_id, waiting = '', updated_at = excluded.updated_at;

-- name: pull_waits
-- What a pull request waits for now, as the views show it.
UPDATE pulls SET waiting = %(waiting)s, updated_at = %(now)s
WHERE target = %(target)s AND task_id = %(task_id)s;

-- name: pull_head
-- The head the autopilot pushed (or adopted) last: its next push is leased on it.
UPDATE pulls SET head = %(head)s, updated_at = %(now)s
WHERE target = %(target)s AND task_id = %(task_id)s;

-- name: pull_ends
-- A pull request merged or closed, or one whose task went back to a worker (state
-- stays open, and it carries no landing until the next submission).
UPDATE pulls SET state = %(state)s, landing_id = NULL, waiting = %(waiting)s, updated_at = %(now)s
WHERE target = %(target)s AND task_id = %(task_id)s;

-- name: pulls_shown
-- Pull requests open now, or merged or closed since a time, with their tasks' titles.
SELECT p.*, t.title FROM pulls p JOIN tasks t ON t.id = p.task_id
WHERE p.state = 'open' OR p.updated_at >= %(since)s ORDER BY p.target, p.number;

-- name: landing_moves
-- A pull request's landing, its head restacked or adopted: what it lands now.
UPDATE landings SET old = %(old)s, new = %(new)s, tree = %(tree)s, checks = %(checks)s
WHERE id = %(id)s AND state = 'intent';

-- name: task_spend
-- What one task cost so far, over all its attempts (a pull request's text says it).
SELECT coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
    coalesce(sum(output_tokens), 0)::bigint AS output_tokens, coalesce(sum(cost), 0) AS cost
FROM task_usage WHERE task_id = %(task_id)s;

-- name: record_delivery
-- A webhook delivery, unless its id was recorded before (0 rows: a replay).
INSERT INTO webhook_deliveries (id, event, at) VALUES (%(id)s, %(event)s, %(now)s)
ON CONFLICT (id) DO NOTHING;

-- name: tasks_with_prefix
-- Tasks whose id starts so (a LIKE pattern, `\` its escape), with their status.
SELECT id, status FROM tasks WHERE id LIKE %(prefix)s ESCAPE '\' ORDER BY id;

-- name: post_claim
-- A write on the forge claimed by this host: new, or left unfinished by a host gone since
-- (claimed before :stale). 0 rows: done, or another host is at it.
INSERT INTO forge_posts (key, claimed_at) VALUES (%(key)s, %(now)s)
ON CONFLICT (key) DO UPDATE SET claimed_at = excluded.claimed_at
WHERE forge_posts.done_at IS NULL AND forge_posts.claimed_at < %(stale)s;

-- name: post_done
-- The write made (or found made); `at` is the forge's time of it, or a cursor's place.
INSERT INTO forge_posts (key, claimed_at, done_at, at) VALUES (%(key)s, %(now)s, %(now)s, %(at)s)
ON CONFLICT (key) DO UPDATE SET done_at = excluded.done_at, at = excluded.at;

-- name: post_of
SELECT * FROM forge_posts WHERE key = %(key)s;

-- name: red_commits
-- The commits a red task was red at (its events of kind 'red'), oldest first.
SELECT reason FROM task_events WHERE task_id = %(task_id)s AND kind = 'red' ORDER BY id;

-- name: synced_repositories
-- The repositories `import github:` has synced here (their comment cursors).
SELECT substr(key, 10) AS repository FROM forge_posts WHERE key LIKE 'comments:%%';

-- name: unsynced_issues
-- The open issues the sync could not apply (edge/issue_sync.py), for `status`.
SELECT repository, number, task_id, why, made, since FROM unsynced_issues
ORDER BY repository, number;

-- name: unsynced_of
-- One repository's issues the sync could not apply, as its last pass left them.
SELECT number, task_id, why, made, since FROM unsynced_issues
WHERE repository = %(repository)s ORDER BY number;

-- name: unsynced_clear
DELETE FROM unsynced_issues WHERE repository = %(repository)s;

-- name: unsynced_add
INSERT INTO unsynced_issues (repository, number, task_id, why, made, since)
VALUES (%(repository)s, %(number)s, %(task_id)s, %(why)s, %(made)s, %(since)s);

-- name: questions_under
-- Open questions on tasks whose id starts so (a LIKE pattern), with whether and when the
-- sync posted each on its issue.
SELECT q.id, q.task_id, q.body, q.created_at, p.done_at AS posted, p.at AS posted_at
FROM task_notes q JOIN tasks t ON t.id = q.task_id
LEFT JOIN forge_posts p ON p.key = 'question:' || q.id
WHERE t.id LIKE %(prefix)s ESCAPE '\' AND q.kind = 'question' AND t.status = 'blocked'
    AND NOT EXISTS (SELECT 1 FROM task_notes a WHERE a.reply_to = q.id)
ORDER BY q.id;

-- name: task_landed
-- What a done task's newest landing put on its target, and its pull request if it merged.
SELECT e.commit_sha, e.target, l.new, p.url
FROM landing_entries e LEFT JOIN landings l ON l.id = e.landing_id
LEFT JOIN pulls p ON p.task_id = e.task_id AND p.target = e.target AND p.state = 'merged'
WHERE e.task_id = %(task_id)s AND e.state = 'landed'
ORDER BY e.id DESC LIMIT 1;

-- name: landed_untold
-- Done tasks whose id starts so (a LIKE pattern) whose issue the sync has not yet told of
-- its landing (no finished `landed:` write): whoever closed the issue, the merge or a person.
SELECT t.id FROM tasks t LEFT JOIN forge_posts p ON p.key = 'landed:' || t.id
WHERE t.id LIKE %(prefix)s ESCAPE '\' AND t.status = 'done' AND p.done_at IS NULL
ORDER BY t.id;

-- name: pulls_open_under
-- The open pull requests of tasks whose id starts so: a closed issue's may be closed by its
-- merge, which the autopilot has not seen yet.
SELECT task_id, number, url FROM pulls
WHERE task_id LIKE %(prefix)s ESCAPE '\' AND state = 'open'
ORDER BY task_id, number;

-- name: post_release
-- A claim given up unfinished (the forge failed): any host's next pass tries again.
DELETE FROM forge_posts WHERE key = %(key)s AND done_at IS NULL;

-- name: schedule_of
SELECT * FROM schedules WHERE id = %(id)s;

-- name: schedule_insert
INSERT INTO schedules (id, every, spec, last_task, next_at)
VALUES (%(id)s, %(every)s, %(spec)s, %(id)s, %(next_at)s);

-- name: schedule_update
-- An edited roadmap's schedule: its definition, and its next time when `every` changed.
UPDATE schedules SET every = %(every)s, spec = %(spec)s, next_at = %(next_at)s,
    stopped_at = NULL
WHERE id = %(id)s;

-- name: schedules_due
-- Schedules whose time came and whose last task is over (or gone).
SELECT s.* FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task
WHERE s.stopped_at IS NULL AND s.next_at <= %(now)s
    AND (t.status IS NULL OR t.status IN ('done', 'cancelled'))
ORDER BY s.next_at LIMIT 100;

-- name: schedule_made
-- The task a schedule made, moved from the one this host read (0 rows: another did it).
UPDATE schedules SET last_task = %(task)s, next_at = %(next_at)s
WHERE id = %(id)s AND last_task = %(was)s AND stopped_at IS NULL;

-- name: schedules_listed
SELECT s.id, s.every, s.last_task, s.next_at, s.stopped_at, t.status AS last_status
FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task
ORDER BY s.stopped_at IS NOT NULL, s.next_at, s.id LIMIT %(limit)s;

-- name: schedule_stop
UPDATE schedules SET stopped_at = %(now)s WHERE id = %(id)s AND stopped_at IS NULL;

-- name: check_counted
-- One first run of a landing check (issue 57): whether it failed, whether that failure was
-- a flake, and the reruns it took.
INSERT INTO check_figures (command, runs, failures, flakes, reruns, rerun_seconds)
VALUES (%(command)s, 1, %(failed)s, %(flaked)s, %(reruns)s, %(seconds)s)
ON CONFLICT (command) DO UPDATE SET runs = check_figures.runs + 1,
    failures = check_figures.failures + excluded.failures,
    flakes = check_figures.flakes + excluded.flakes,
    reruns = check_figures.reruns + excluded.reruns,
    rerun_seconds = check_figures.rerun_seconds + excluded.rerun_seconds;

-- name: check_figures_all
SELECT * FROM check_figures ORDER BY command;

-- name: flake_insert
INSERT INTO check_flakes (target, command, tree, tests, reruns, output, at)
VALUES (%(target)s, %(command)s, %(tree)s, %(tests)s, %(reruns)s, %(output)s, %(at)s);

-- name: flakes_recent
SELECT * FROM check_flakes ORDER BY id DESC LIMIT %(limit)s;

-- name: flakes_on_target
-- A target's flakes recorded since since, newest first (issue 69): what is known to flake
-- there. Flakes are few, and each is recorded once proven, so the scan stays small.
SELECT command, tests FROM check_flakes WHERE target = %(target)s AND at >= %(since)s
ORDER BY id DESC LIMIT %(limit)s;

-- name: quarantine_put
INSERT INTO quarantine (test, evidence, added_by, added_at, expires_at)
VALUES (%(test)s, %(evidence)s, %(added_by)s, %(now)s, %(expires_at)s)
ON CONFLICT (test) DO UPDATE SET evidence = excluded.evidence, added_by = excluded.added_by,
    added_at = excluded.added_at, expires_at = excluded.expires_at;

-- name: quarantine_drop
DELETE FROM quarantine WHERE test = %(test)s;

-- name: quarantine_listed
-- Every entry, live ones (not expired at now) first.
SELECT *, (expires_at > %(now)s)::int AS live FROM quarantine
ORDER BY expires_at <= %(now)s, test
LIMIT 1000;

-- name: news_add
-- What a webhook delivery said of a pull request (services/pull_news.py).
INSERT INTO pull_news (forge, repository, number, sha, what, name, state, at)
VALUES (%(forge)s, %(repository)s, %(number)s, %(sha)s, %(what)s, %(name)s, %(state)s,
        %(now)s);

-- name: news_told
-- News written: every autopilot listening (Database.notified) wakes, once it commits.
SELECT 1 AS told FROM (SELECT pg_notify('wvo_pull_news', '')) AS sent;

-- name: news_since
-- A repository's news heard at `since` or later, oldest first.
SELECT id, number, sha, what, name, state, at FROM pull_news
WHERE repository = %(repository)s AND forge = %(forge)s AND at >= %(since)s ORDER BY at, id;

-- name: news_latest
-- When a repository's last news was heard (NULL: none kept).
SELECT max(at) AS at FROM pull_news WHERE repository = %(repository)s AND forge = %(forge)s AND at >= %(since)s;

-- name: news_forget
DELETE FROM pull_news WHERE at < %(before)s;
