-- Every SQL statement wvo-mcp runs, by name. Timestamps are ISO-8601 UTC text.

-- name: task_by_id
-- One task, every column.
SELECT * FROM tasks WHERE id = ?;

-- name: task_for_update
-- One task, every column, locked until the transaction ends (a TASK write decides on it).
SELECT * FROM tasks WHERE id = ?;

-- name: lock_expired_lease
-- A claim's expired candidate, locked for the take-over if it is still as the claim saw it;
-- a candidate another write holds (its holder's heartbeat, the monitor) is skipped.
SELECT * FROM tasks
WHERE id = :id AND status = 'in_progress' AND lease_epoch = :epoch
    AND lease_expires_at < :now;

-- name: task_statuses
-- id and status of those of a JSON array of ids that exist.
SELECT id, status FROM tasks WHERE id IN (SELECT value FROM json_each(?));

-- name: insert_task
INSERT INTO tasks (
    id, title, description, epic_id, milestone_id, status, complexity, business_value,
    time_criticality, risk_reduction, job_size, due_at, tags, requires_approval, max_attempts,
    unmet_dependencies, dependents, effective_time_criticality, wsjf_score, metadata,
    verify_command, not_before, created_at, updated_at
) VALUES (
    :id, :title, :description, :epic_id, :milestone_id, :status, :complexity, :business_value,
    :time_criticality, :risk_reduction, :job_size, :due_at, :tags, :requires_approval,
    :max_attempts, :unmet_dependencies, :dependents, :effective_time_criticality, :wsjf_score,
    :metadata, :verify_command, :not_before, :now, :now
);

-- name: insert_dependency
INSERT INTO task_dependencies (task_id, depends_on_id) VALUES (?, ?);

-- name: tasks_by_ids
-- Every column of those of a JSON array of ids that exist.
SELECT * FROM tasks WHERE id IN (SELECT value FROM json_each(?));

-- name: update_definition
-- A roadmap's new definition of a task (import --update); status and progress stay.
UPDATE tasks SET
    title = :title, description = :description, epic_id = :epic_id,
    milestone_id = :milestone_id, complexity = :complexity, business_value = :business_value,
    time_criticality = :time_criticality, risk_reduction = :risk_reduction,
    job_size = :job_size, due_at = :due_at, tags = :tags,
    requires_approval = :requires_approval, max_attempts = :max_attempts,
    metadata = :metadata, verify_command = :verify_command, unmet_dependencies = :unmet,
    updated_at = :now
WHERE id = :id;

-- name: delete_dependency
DELETE FROM task_dependencies WHERE task_id = ? AND depends_on_id = ?;

-- name: set_score
UPDATE tasks SET dependents = ?, effective_time_criticality = ?, wsjf_score = ? WHERE id = ?;

-- name: insert_event
INSERT INTO task_events (task_id, at, actor, kind, from_status, to_status, reason, lease_epoch)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_event_if_granted
-- insert_event, only when the task's lease is the token the claim's grant (sent just before,
-- in the same transaction) gave: nothing when another write beat the grant.
INSERT INTO task_events (task_id, at, actor, kind, from_status, to_status, reason, lease_epoch)
SELECT ?, ?, ?, ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ? AND lease_token = ?);

-- name: recent_events
-- Newest first; the caller reverses them into time order.
SELECT * FROM task_events WHERE task_id = ? ORDER BY id DESC LIMIT ?;

-- name: dependencies_of
SELECT t.id, t.status FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on_id
WHERE d.task_id = ? ORDER BY t.id;

-- name: dependents_of
SELECT t.id, t.status FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
WHERE d.depends_on_id = ? ORDER BY t.id;

-- name: latest_checkpoint
SELECT * FROM checkpoints WHERE task_id = ? ORDER BY seq DESC LIMIT 1;

-- name: list_tasks
-- Keyset pagination by id; every filter optional.
SELECT * FROM tasks
WHERE (:status IS NULL OR status = :status)
  AND (:epic_id IS NULL OR epic_id = :epic_id)
  AND (:milestone_id IS NULL OR milestone_id = :milestone_id)
  AND (:tag IS NULL OR EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = :tag))
  AND id > :after
ORDER BY id LIMIT :limit;

-- name: ready_ranked
-- The ready queue in WSJF order (ties: older first, then id), straight off the partial index.
SELECT * FROM tasks INDEXED BY tasks_ready
WHERE status = 'pending' AND unmet_dependencies = 0
ORDER BY wsjf_score DESC, created_at, id;

-- name: ready_ranked_in_epic
SELECT * FROM tasks INDEXED BY tasks_ready_by_epic
WHERE status = 'pending' AND unmet_dependencies = 0 AND epic_id = ?
ORDER BY wsjf_score DESC, created_at, id;

-- name: expired_leases
-- In-progress tasks whose holder went silent: claimable again at once.
SELECT * FROM tasks INDEXED BY tasks_leases
WHERE status = 'in_progress' AND lease_expires_at < ?
ORDER BY wsjf_score DESC, created_at, id;

-- name: expired_leases_to_take
-- A claim's: the one writer holds them all already.
SELECT * FROM tasks INDEXED BY tasks_leases
WHERE status = 'in_progress' AND lease_expires_at < ?
ORDER BY wsjf_score DESC, created_at, id;

-- name: queue_counts
SELECT bucket, tasks FROM queue_counts;

-- name: backing_off_count
-- Ready by dependencies but waiting out a retry back-off.
SELECT count(*) FROM tasks INDEXED BY tasks_backing_off
WHERE not_before > ? AND status = 'pending' AND unmet_dependencies = 0;

-- name: live_lease_counts
-- The leases live at :now: all of them, and the agent's.
SELECT
    (SELECT count(*) FROM tasks INDEXED BY tasks_leases
     WHERE status = 'in_progress' AND lease_expires_at >= :now) AS global_used,
    (SELECT count(*) FROM tasks INDEXED BY tasks_holders
     WHERE status = 'in_progress' AND assigned_to = :agent
       AND lease_expires_at >= :now) AS agent_used;

-- name: live_leases_by_epic
SELECT epic_id, count(*) AS n FROM tasks INDEXED BY tasks_leases
WHERE status = 'in_progress' AND lease_expires_at >= ?
GROUP BY epic_id;

-- name: in_progress
SELECT * FROM tasks INDEXED BY tasks_leases
WHERE status = 'in_progress' ORDER BY lease_expires_at;

-- name: pending_with_due_date
SELECT * FROM tasks INDEXED BY tasks_due WHERE due_at IS NOT NULL AND status = 'pending';

-- name: meta_get
SELECT value FROM settings_meta WHERE key = ?;

-- name: meta_set
INSERT INTO settings_meta (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: touch_agent
-- The agent was seen now: written when its last sighting is older than ?3 (a row written
-- on every call would cost every heartbeat a page write; "silent" is judged in minutes).
INSERT INTO agents (id, first_seen_at, last_seen_at) VALUES (?1, ?2, ?2)
ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
WHERE agents.last_seen_at < ?3;

-- name: register_agent
INSERT INTO agents (id, client_name, first_seen_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)
ON CONFLICT (id) DO UPDATE SET client_name = excluded.client_name,
    last_seen_at = excluded.last_seen_at;

-- name: grant_lease
-- A new grant: fresh token, next epoch; the previous holder's token stops working. Only
-- on the epoch the claim read: no row means another write changed the task first.
UPDATE tasks SET
    status = 'in_progress',
    assigned_to = :agent,
    lease_token = :token,
    lease_epoch = lease_epoch + 1,
    lease_seconds = :lease_seconds,
    lease_expires_at = :expires,
    claimed_at = :now,
    last_heartbeat_at = :now,
    not_before = NULL,
    updated_at = :now
WHERE id = :id AND lease_epoch = :epoch
RETURNING *;

-- name: count_lost_attempt
UPDATE tasks SET attempts = ? WHERE id = ?;

-- name: dead_letter
UPDATE tasks SET status = 'failed', attempts = ?, assigned_to = NULL, lease_token = NULL,
    lease_expires_at = NULL, updated_at = ?
WHERE id = ?;

-- name: renew_lease
UPDATE tasks SET lease_expires_at = ?, lease_seconds = ?, last_heartbeat_at = ?3, updated_at = ?3
WHERE id = ?4;

-- name: next_checkpoint_seq
SELECT coalesce(max(seq), 0) + 1 FROM checkpoints WHERE task_id = ?;

-- name: insert_checkpoint
INSERT INTO checkpoints (task_id, seq, agent_id, lease_epoch, summary, next_steps, progress,
    files, created_at, git_head, git_commit, git_ref, sandbox_run)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: add_checkpoint
-- A holder's checkpoint, numbered here (the task's next seq; its row is locked, so no other
-- checkpoint of it is numbered meanwhile): insert_checkpoint and next_checkpoint_seq in one
-- statement. `ref_prefix`: the git ref without its seq (NULL: no ref).
INSERT INTO checkpoints (task_id, seq, agent_id, lease_epoch, summary, next_steps, progress,
    files, created_at, git_head, git_commit, git_ref, sandbox_run)
SELECT :task_id, n.seq, :agent_id, :lease_epoch, :summary, :next_steps,
    :progress, :files, :created_at, :git_head, :git_commit,
    :ref_prefix || n.seq, :sandbox_run
FROM (SELECT coalesce(max(seq), 0) + 1 AS seq FROM checkpoints WHERE task_id = :task_id) AS n
RETURNING seq, git_ref;

-- name: prune_checkpoints
-- Keep a task's latest ?2 checkpoints (by seq; the newest is always among them): delete
-- those at or below the seq of the (?2 + 1)-th newest. Nothing when there are no more.
DELETE FROM checkpoints
WHERE task_id = ?1
    AND seq <= (SELECT seq FROM checkpoints WHERE task_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2);

-- name: last_sandbox_run
-- The latest sandbox run recorded on a task during one grant.
SELECT reason FROM task_events INDEXED BY task_events_by_task
WHERE task_id = ? AND kind = 'sandbox_run' AND lease_epoch = ? ORDER BY id DESC LIMIT 1;

-- name: task_runs
-- A task's sandbox runs and verifications (their one-line summaries and, when kept, their
-- output tails), newest first.
SELECT e.*, o.stdout, o.stderr FROM task_events e INDEXED BY task_events_by_task
LEFT JOIN run_outputs o ON o.event_id = e.id
WHERE e.task_id = ? AND e.kind IN ('sandbox_run', 'verified', 'verification_skipped')
ORDER BY e.id DESC LIMIT ?;

-- name: task_charges
-- What each autopilot run made for a task was charged (rules/run_charges.py), newest first.
SELECT * FROM task_events INDEXED BY task_events_by_task
WHERE task_id = ? AND kind = 'charged' ORDER BY id DESC LIMIT ?;

-- name: insert_run_output
-- The output tails of the event just recorded on a task (the writer lock is held, so it is
-- the task's newest event).
INSERT INTO run_outputs (event_id, stdout, stderr)
SELECT max(id), :stdout, :stderr FROM task_events WHERE task_id = :task_id;

-- name: checkpoints_of
SELECT * FROM checkpoints WHERE task_id = ? ORDER BY seq;

-- name: checkpoint_by_seq
SELECT * FROM checkpoints WHERE task_id = ? AND seq = ?;

-- name: set_status
-- Leaving in_progress ends the lease, except a holder waiting for approval keeps its claim.
UPDATE tasks SET
    status = :status,
    attempts = :attempts,
    not_before = :not_before,
    assigned_to = CASE WHEN :keep_holder THEN assigned_to END,
    lease_token = CASE WHEN :keep_holder THEN lease_token END,
    lease_expires_at = NULL,
    completed_at = coalesce(:completed, completed_at),
    updated_at = :now
WHERE id = :id;

-- name: set_status_plain
UPDATE tasks SET status = ?, updated_at = ? WHERE id = ?;

-- name: release_dependents
-- A task is done: each dependent has one dependency fewer to wait for.
UPDATE tasks SET unmet_dependencies = unmet_dependencies - 1, updated_at = ?
WHERE id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = ?)
RETURNING id, status, unmet_dependencies, requires_approval, approved_by;

-- name: dead_letters
SELECT * FROM tasks WHERE status = 'failed' ORDER BY updated_at DESC LIMIT ?;

-- name: all_tasks
SELECT * FROM tasks ORDER BY created_at, id;

-- name: all_dependencies
SELECT task_id, depends_on_id FROM task_dependencies ORDER BY task_id, depends_on_id;

-- name: set_approver
UPDATE tasks SET approved_by = ? WHERE id = ?;

-- name: completions
-- Who moved each task to done, from the audit trail (a task done twice would show twice).
SELECT task_id, actor FROM task_events WHERE to_status = 'done' ORDER BY id;

-- name: context_section
SELECT * FROM context_sections WHERE name = ?;

-- name: context_sections
-- Every section in a stable order: the order they were first written.
SELECT * FROM context_sections ORDER BY created_at, name;

-- name: context_total_bytes
-- Bytes of every section but the named one (the cap counts the section's new size instead).
SELECT coalesce(sum(length(CAST(content AS BLOB))), 0) FROM context_sections WHERE name != ?;

-- name: upsert_context_section
INSERT INTO context_sections (name, version, content, updated_by, updated_at, created_at)
VALUES (:name, :version, :content, :author, :now, :now)
ON CONFLICT (name) DO UPDATE SET version = excluded.version, content = excluded.content,
    updated_by = excluded.updated_by, updated_at = excluded.updated_at;

-- name: insert_context_history
INSERT INTO context_history (name, version, mode, content, author, at)
VALUES (:name, :version, :mode, :content, :author, :now);

-- name: prune_context_history
DELETE FROM context_history WHERE name = ? AND version <= ?;

-- name: context_version
SELECT * FROM context_history WHERE name = ? AND version = ?;

-- name: context_history
SELECT name, version, mode, author, at, length(CAST(content AS BLOB)) AS size_bytes
FROM context_history WHERE name = ? ORDER BY version DESC LIMIT ?;

-- name: awaiting_approval
-- What waits for a person, oldest first, with the reason it was asked for.
SELECT t.id, t.title, t.assigned_to, t.updated_at,
    (SELECT reason FROM task_events e WHERE e.task_id = t.id ORDER BY e.id DESC LIMIT 1) AS reason
FROM tasks t INDEXED BY tasks_status
WHERE t.status = 'awaiting_approval' ORDER BY t.updated_at;

-- name: stopped_for_a_person
-- Blocked tasks and submissions the merge queue held: what stays put until a person acts,
-- oldest first, with the latest event's reason and whether a question waits for an answer.
SELECT t.id, t.title, t.status, t.updated_at,
    (SELECT reason FROM task_events e WHERE e.task_id = t.id ORDER BY e.id DESC LIMIT 1) AS reason,
    EXISTS (SELECT 1 FROM task_notes q WHERE q.task_id = t.id AND q.kind = 'question'
        AND NOT EXISTS (SELECT 1 FROM task_notes a WHERE a.reply_to = q.id)) AS asked
FROM tasks t INDEXED BY tasks_status
WHERE t.status IN ('blocked', 'needs_review') AND (t.status = 'blocked'
    OR (SELECT state FROM landing_entries l WHERE l.task_id = t.id ORDER BY l.id DESC LIMIT 1)
        = 'held')
ORDER BY t.updated_at, t.id LIMIT ?;

-- name: take_leadership
-- The holder renews its lease; anyone takes an expired one (a new holder starts a new term).
INSERT INTO monitor_leader (role, holder, term, acquired_at, renewed_at, expires_at)
VALUES (:role, :me, 1, :now, :now, :expires)
ON CONFLICT (role) DO UPDATE SET
    term = term + (holder != excluded.holder),
    acquired_at = CASE WHEN holder = excluded.holder THEN acquired_at ELSE excluded.acquired_at END,
    holder = excluded.holder,
    renewed_at = excluded.renewed_at,
    expires_at = excluded.expires_at
WHERE holder = excluded.holder OR expires_at < excluded.renewed_at;

-- name: leadership
SELECT * FROM monitor_leader WHERE role = ?;

-- name: release_leadership
-- A leader shutting down lets the next process take over at its next tick.
UPDATE monitor_leader SET expires_at = :now WHERE role = :role AND holder = :me;

-- name: done_since
SELECT count(*) FROM task_events INDEXED BY task_events_done WHERE to_status = 'done' AND at >= ?;

-- name: stale_tasks
-- Lease expired and no heartbeat or checkpoint (claiming counts) since the cut-off.
SELECT id, assigned_to AS holder, lease_epoch, lease_expires_at,
    last_heartbeat_at AS last_seen_at
FROM tasks INDEXED BY tasks_leases
WHERE status = 'in_progress' AND lease_expires_at < :now AND last_heartbeat_at < :cutoff
ORDER BY last_heartbeat_at LIMIT :limit;

-- name: agents_seen
-- Agents seen since the cut-off, and whether each holds a live lease.
SELECT a.id, EXISTS (
    SELECT 1 FROM tasks t INDEXED BY tasks_holders
    WHERE t.status = 'in_progress' AND t.assigned_to = a.id AND t.lease_expires_at >= :now
) AS busy
FROM agents a WHERE a.last_seen_at >= :cutoff;

-- name: dashboard_agents
-- The dashboard's agents: identity, last seen, the task each holds (the first by id, its
-- last renewal, whether its lease is live: 0 or 1), how many tasks it has moved to done, and
-- its tokens and spend on `day`.
SELECT a.id, a.provider, a.model, a.last_seen_at,
    (SELECT t.id FROM tasks t INDEXED BY tasks_holders
     WHERE t.status = 'in_progress' AND t.assigned_to = a.id ORDER BY t.id LIMIT 1) AS task_id,
    (SELECT t.title FROM tasks t INDEXED BY tasks_holders
     WHERE t.status = 'in_progress' AND t.assigned_to = a.id ORDER BY t.id LIMIT 1) AS task_title,
    (SELECT t.last_heartbeat_at FROM tasks t INDEXED BY tasks_holders
     WHERE t.status = 'in_progress' AND t.assigned_to = a.id ORDER BY t.id LIMIT 1) AS beat_at,
    EXISTS (
        SELECT 1 FROM tasks t INDEXED BY tasks_holders
        WHERE t.status = 'in_progress' AND t.assigned_to = a.id AND t.lease_expires_at >= :now
    ) AS busy,
    (SELECT count(*) FROM task_events e INDEXED BY task_events_done_by_actor
     WHERE e.to_status = 'done' AND e.actor = a.id) AS done,
    coalesce(u.input_tokens + u.output_tokens, 0) AS tokens_today,
    coalesce(u.cost, 0) AS cost_today
FROM agents a LEFT JOIN agent_usage u ON u.agent_id = a.id AND u.day = :day
ORDER BY a.id LIMIT :limit;

-- name: silent_agent_count
SELECT count(*) FROM agents WHERE last_seen_at < ?;

-- name: stuck_approvals
SELECT id, updated_at AS since FROM tasks INDEXED BY tasks_status
WHERE status = 'awaiting_approval' AND updated_at < ? ORDER BY updated_at LIMIT ?;

-- name: dead_letter_ids
SELECT id FROM tasks INDEXED BY tasks_status WHERE status = 'failed' ORDER BY id LIMIT ?;

-- name: dependency_drift
-- A slice of unfinished tasks (by id, after a cursor) whose stored count of unmet
-- dependencies differs from the real one; a tick checks one slice, not the whole graph.
SELECT id, stored, actual FROM (
    SELECT t.id, t.unmet_dependencies AS stored, (
        SELECT count(*) FROM task_dependencies d JOIN tasks p ON p.id = d.depends_on_id
        WHERE d.task_id = t.id AND p.status != 'done'
    ) AS actual
    FROM tasks t
    WHERE t.id > :after AND t.status IN ('pending', 'awaiting_approval', 'blocked', 'needs_review')
    ORDER BY t.id LIMIT :slice
)
WHERE stored != actual ORDER BY id LIMIT :cap;

-- name: drift_slice_end
-- The last task id of that slice: where the next tick's check starts.
SELECT max(id) FROM (
    SELECT id FROM tasks
    WHERE id > :after AND status IN ('pending', 'awaiting_approval', 'blocked', 'needs_review')
    ORDER BY id LIMIT :slice
);

-- name: open_anomaly_subjects
SELECT subject FROM health_anomalies WHERE kind = ? AND resolved_at IS NULL;

-- name: unmet_dependencies_of
SELECT count(*) FROM task_dependencies d JOIN tasks p ON p.id = d.depends_on_id
WHERE d.task_id = ? AND p.status != 'done';

-- name: set_unmet_dependencies
UPDATE tasks SET unmet_dependencies = ?, updated_at = ? WHERE id = ?;

-- name: blocked_by_abandoned
-- Pending tasks waiting on a dependency that will never be done without a person.
SELECT DISTINCT d.task_id AS id FROM tasks p INDEXED BY tasks_status
JOIN task_dependencies d INDEXED BY task_dependencies_reverse ON d.depends_on_id = p.id
JOIN tasks t ON t.id = d.task_id
WHERE p.status IN ('cancelled', 'failed') AND t.status = 'pending'
ORDER BY d.task_id LIMIT ?;

-- name: requeue_lost
-- The health monitor takes a silent holder's task back: pending again, lease ended.
UPDATE tasks SET status = 'pending', attempts = ?, not_before = ?, assigned_to = NULL,
    lease_token = NULL, lease_expires_at = NULL, updated_at = ?
WHERE id = ?;

-- name: insert_health_snapshot
INSERT INTO health_snapshots (at, leader, term, remediate, anomalies, actions, observation)
VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: latest_health_snapshot
SELECT * FROM health_snapshots ORDER BY id DESC LIMIT 1;

-- name: throughput_history
-- Completions per hour seen by earlier ticks: the baseline throughput is judged against.
SELECT json_extract(observation, '$.counts.done_last_hour') AS done
FROM health_snapshots WHERE at >= ? AND at < ?;

-- name: open_anomalies
SELECT * FROM health_anomalies WHERE resolved_at IS NULL
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, first_seen_at, id
LIMIT ?;

-- name: open_anomaly_keys
SELECT kind, subject FROM health_anomalies WHERE resolved_at IS NULL;

-- name: open_anomaly_count
SELECT count(*) FROM health_anomalies WHERE resolved_at IS NULL;

-- name: upsert_anomaly
INSERT INTO health_anomalies (kind, subject, severity, message, first_seen_at, last_seen_at)
VALUES (:kind, :subject, :severity, :message, :now, :now)
ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO UPDATE SET
    severity = excluded.severity, message = excluded.message, last_seen_at = excluded.last_seen_at;

-- name: resolve_anomaly
UPDATE health_anomalies SET resolved_at = ? WHERE kind = ? AND subject = ? AND resolved_at IS NULL;

-- name: recent_monitor_actions
SELECT * FROM task_events INDEXED BY task_events_by_monitor
WHERE actor = 'health-monitor' ORDER BY id DESC LIMIT ?;

-- name: prune_health_snapshots
DELETE FROM health_snapshots WHERE at < ?;

-- name: prune_resolved_anomalies
DELETE FROM health_anomalies WHERE resolved_at < ?;

-- name: old_events
-- Events older than the cut-off, in time order after a cursor, with their task's status.
SELECT e.id, e.at, t.status FROM task_events e INDEXED BY task_events_at
JOIN tasks t ON t.id = e.task_id
WHERE e.at < :cutoff AND (e.at, e.id) > (:after_at, :after_id)
ORDER BY e.at, e.id LIMIT :batch;

-- name: delete_finished_events
-- Those of a JSON array of event ids whose task is (still) done or cancelled.
DELETE FROM task_events WHERE id IN (SELECT value FROM json_each(?))
AND (SELECT status FROM tasks WHERE id = task_events.task_id) IN ('done', 'cancelled');

-- name: provider_window_usage
-- Tokens and spend per provider in the given hour and day periods.
SELECT provider, period, sum(input_tokens + output_tokens) AS tokens, sum(cost) AS cost
FROM provider_usage WHERE period IN (?, ?) GROUP BY provider, period;

-- name: provider_tier_usage
SELECT provider, tier, period, input_tokens + output_tokens AS tokens, cost, calls, failures
FROM provider_usage WHERE period IN (?, ?);

-- name: provider_load
-- In-flight tasks per provider, and the tokens still reserved for them.
SELECT routed_provider AS provider, count(*) AS in_flight,
    coalesce(sum(max(reserved_tokens - used_tokens, 0)), 0) AS reserved
FROM tasks INDEXED BY tasks_routed
WHERE status = 'in_progress' AND routed_provider IS NOT NULL
GROUP BY routed_provider;

-- name: provider_breakers
-- Every stored breaker, and whether its half-open trial task is still out.
SELECT b.*, coalesce(t.status = 'in_progress' AND t.routed_provider = b.provider, 0) AS probe_out
FROM provider_breakers b LEFT JOIN tasks t ON t.id = b.probe_task;

-- name: add_agent_usage
INSERT INTO agent_usage (agent_id, day, input_tokens, output_tokens, cost)
VALUES (:agent_id, :day, :input, :output, :cost)
ON CONFLICT (agent_id, day) DO UPDATE SET
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cost = cost + excluded.cost;

-- name: add_usage
INSERT INTO provider_usage (provider, period, tier, input_tokens, output_tokens, cost, calls,
    failures)
VALUES (:provider, :period, :tier, :input, :output, :cost, 1, :failed)
ON CONFLICT (provider, period, tier) DO UPDATE SET
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cost = cost + excluded.cost,
    calls = calls + 1,
    failures = failures + excluded.failures;

-- name: save_breaker
INSERT INTO provider_breakers (provider, state, failures, opens, reopens_at, probe_task, updated_at)
VALUES (:provider, :state, :failures, :opens, :reopens_at, :probe_task, :now)
ON CONFLICT (provider) DO UPDATE SET state = excluded.state, failures = excluded.failures,
    opens = excluded.opens, reopens_at = excluded.reopens_at, probe_task = excluded.probe_task,
    updated_at = excluded.updated_at;

-- name: set_probe
-- The one task a half-open breaker lets through.
UPDATE provider_breakers SET probe_task = ?, updated_at = ? WHERE provider = ?;

-- name: set_route
-- What a grant was routed to, and the tokens reserved for it (NULLs: not routed).
UPDATE tasks SET routed_provider = ?, routed_tier = ?, reserved_tokens = ?, used_tokens = 0,
    used_cost = 0
WHERE id = ?;

-- name: add_task_usage
-- The current attempt's tokens and spend, when it runs on its routed provider.
UPDATE tasks SET used_tokens = used_tokens + ?, used_cost = used_cost + ?
WHERE id = ? AND routed_provider = ?;

-- name: requeue_pending
-- A person re-queues a pending task: routed afresh from its lowest tier, at once.
UPDATE tasks SET failed_provider = NULL, failed_tier = NULL, not_before = NULL, updated_at = :now
WHERE id = :id;

-- name: set_failed_tier
-- Where the attempt that just failed ran: the next attempt is routed one tier up.
UPDATE tasks SET failed_provider = ?, failed_tier = ? WHERE id = ?;

-- name: agent_identity
SELECT provider, model FROM agents WHERE id = ?;

-- name: set_agent_identity
INSERT INTO agents (id, provider, model, first_seen_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)
ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, model = excluded.model,
    last_seen_at = excluded.last_seen_at;

-- name: ready_ranked_with_complexity
-- The ready queue of one complexity, in WSJF order.
SELECT * FROM tasks INDEXED BY tasks_ready_by_complexity
WHERE status = 'pending' AND unmet_dependencies = 0 AND complexity = ?
ORDER BY wsjf_score DESC, created_at, id;

-- name: ready_ranked_routed_alone
-- Ready tasks whose route depends on more than their complexity, in WSJF order.
SELECT * FROM tasks INDEXED BY tasks_ready_routed_alone
WHERE status = 'pending' AND unmet_dependencies = 0
    AND (failed_provider IS NOT NULL OR instr(metadata, 'estimated_tokens') > 0)
ORDER BY wsjf_score DESC, created_at, id;

-- name: autopilot_start
INSERT INTO autopilot_runs (id, started_at, seen_at, state) VALUES (:id, :now, :now, 'running');

-- name: autopilot_beat
-- An autopilot's round: what it is doing now; answers what a person wants of it.
UPDATE autopilot_runs SET seen_at = :now, state = :state, report = :report WHERE id = :id
RETURNING wanted, asked_by;

-- name: autopilot_heard
-- The request is acted on: forget it (unless another came meanwhile).
UPDATE autopilot_runs SET wanted = NULL WHERE id = :id AND wanted = :wanted;

-- name: autopilot_want
UPDATE autopilot_runs SET wanted = :wanted, asked_by = :by
WHERE state != 'ended' AND (:id IS NULL OR id = :id);

-- name: autopilot_runs
SELECT * FROM autopilot_runs WHERE state != 'ended' OR seen_at >= :since ORDER BY started_at;

-- name: token_insert
INSERT INTO api_tokens (id, secret_sha256, name, role, created_at, created_by, expires_at, scope,
    provider)
VALUES (:id, :secret_sha256, :name, :role, :now, :by, :expires_at, :scope, :provider);

-- name: token_by_secret
-- A live (neither revoked nor expired) token by the digest of its secret.
SELECT * FROM api_tokens
WHERE secret_sha256 = :digest AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > :now);

-- name: token_extend
-- A run token lives on while its run does: its expiry moves on (never for a revoked one).
UPDATE api_tokens SET expires_at = :expires_at WHERE id = :id AND revoked_at IS NULL;

-- name: token_used
-- At most once every ten minutes per token, so verifying a request rarely writes.
UPDATE api_tokens SET last_used_at = :now
WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :stale_before);

-- name: tokens_all
SELECT id, name, role, created_at, created_by, last_used_at, revoked_at, expires_at, scope,
    provider
FROM api_tokens
ORDER BY created_at, id;

-- name: tokens_revoked
-- Tokens are never deleted nor revived, so this count changes exactly when one is revoked.
SELECT count(*) AS revoked FROM api_tokens WHERE revoked_at IS NOT NULL;

-- name: token_revoke
UPDATE api_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL;

-- name: events_after
-- The dashboard's change cursor: events past an id, oldest first (the primary key).
SELECT id, task_id FROM task_events WHERE id > ? ORDER BY id LIMIT ?;

-- name: last_event_id
SELECT coalesce(max(id), 0) FROM task_events;

-- name: dashboard_marks
-- What the views other than the board show changes when these do (task moves are the
-- event log's): usage reports and breakers, the monitor's ticks, autopilot rounds. Each
-- reads a small table, one index range or the end of a primary key. The merge queue's
-- open entries, each with its state and place (a handful of rows), make the Autopilot
-- view's mark too: its Landing section shows them and the figures.
SELECT
    (SELECT coalesce(sum(calls), 0) FROM provider_usage
     WHERE period = :day) AS usage,
    (SELECT coalesce(max(updated_at), '') FROM provider_breakers) AS breakers,
    (SELECT coalesce(max(id), 0) FROM health_snapshots) AS health,
    (SELECT coalesce(max(seen_at), '') FROM autopilot_runs) AS autopilot,
    (SELECT coalesce(group_concat(e, ','), '') FROM (
        SELECT id || state || position AS e FROM landing_entries INDEXED BY landing_entry_open
        WHERE state IN ('review', 'queued', 'testing', 'landing', 'held') ORDER BY id)) AS queue;

-- name: done_per_hour
-- Completions per hour ('YYYY-MM-DDTHH') since a time, for the health view's chart.
SELECT substr(at, 1, 13) AS hour, count(*) AS done FROM task_events INDEXED BY task_events_done
WHERE to_status = 'done' AND at >= :since
GROUP BY substr(at, 1, 13) ORDER BY hour;

-- name: lease_beats
-- Held tasks and their last heartbeat or checkpoint (which write no event): WIP-limited.
SELECT id, last_heartbeat_at FROM tasks INDEXED BY tasks_holders WHERE status = 'in_progress';

-- name: board_page
-- One status column of the dashboard, keyset-paged by id off tasks_status; every filter
-- optional (search: a LIKE pattern over id and title). progress: the latest checkpoint's.
SELECT t.id, t.title, t.status, t.epic_id, t.wsjf_score, t.assigned_to, t.lease_expires_at,
       t.attempts, t.unmet_dependencies,
       (SELECT c.progress FROM checkpoints c WHERE c.task_id = t.id
        ORDER BY c.seq DESC LIMIT 1) AS progress
FROM tasks t INDEXED BY tasks_status
WHERE t.status = :status AND t.id > :after
  AND (:epic_id IS NULL OR t.epic_id = :epic_id)
  AND (:tag IS NULL OR EXISTS (SELECT 1 FROM json_each(t.tags) WHERE value = :tag))
  AND (:agent IS NULL OR t.assigned_to = :agent)
  AND (:search IS NULL OR t.id LIKE :search ESCAPE '\' OR t.title LIKE :search ESCAPE '\')
ORDER BY t.id LIMIT :limit;

-- name: board_cards
-- The dashboard's cards of a JSON array of ids, those that pass the filters.
SELECT t.id, t.title, t.status, t.epic_id, t.wsjf_score, t.assigned_to, t.lease_expires_at,
       t.attempts, t.unmet_dependencies,
       (SELECT c.progress FROM checkpoints c WHERE c.task_id = t.id
        ORDER BY c.seq DESC LIMIT 1) AS progress
FROM tasks t
WHERE t.id IN (SELECT value FROM json_each(:ids))
  AND (:epic_id IS NULL OR t.epic_id = :epic_id)
  AND (:tag IS NULL OR EXISTS (SELECT 1 FROM json_each(t.tags) WHERE value = :tag))
  AND (:agent IS NULL OR t.assigned_to = :agent)
  AND (:search IS NULL OR t.id LIKE :search ESCAPE '\' OR t.title LIKE :search ESCAPE '\')
ORDER BY t.id;

-- name: raise_gate
-- A task's gate only rises (none -> land -> review) short of a person.
UPDATE tasks SET gate = :gate
WHERE id = :id AND (gate IS NULL OR (gate = 'land' AND :gate = 'review'));

-- name: mark_submitted
-- The holder submits its work: who wrote it is kept; the commit comes when the lander takes it.
UPDATE tasks SET submitted_by = :author, submitted_commit = NULL WHERE id = :id;

-- name: set_submitted_commit
UPDATE tasks SET submitted_commit = :commit
WHERE id = :id AND status = 'needs_review' AND submitted_by IS NOT NULL;

-- name: insert_review
INSERT INTO reviews (task_id, commit_sha, reviewer, verdict, notes, at)
VALUES (:task_id, :commit, :reviewer, :verdict, :notes, :now);

-- name: latest_review
-- The newest review of exactly this commit.
SELECT reviewer, verdict, notes, at FROM reviews
WHERE task_id = :task_id AND commit_sha = :commit ORDER BY id DESC LIMIT 1;

-- The merge queue (services/landing_queue.py).

-- name: latest_entry
SELECT * FROM landing_entries WHERE task_id = :task_id ORDER BY id DESC LIMIT 1;

-- name: insert_entry
-- Queue order is one sequence over every target: a later entry lands later.
INSERT INTO landing_entries (task_id, target, base, commit_sha, author, state, position,
    returns, entered_at, queued_at)
VALUES (:task_id, :target, :base, :commit, :author, :state,
    (SELECT coalesce(max(position), 0) + 1 FROM landing_entries), :returns, :now, :queued_at);


-- name: held_by_agents
-- Tasks in progress held by any of a JSON array of agents (a dead autopilot's workers).
SELECT id, assigned_to, lease_token FROM tasks
WHERE status = 'in_progress' AND assigned_to IN (SELECT value FROM json_each(:agents));

-- name: untaken_submissions
-- Gated tasks submitted to an autopilot whose commits nobody took yet.
SELECT id, submitted_by FROM tasks
WHERE status = 'needs_review' AND gate IS NOT NULL AND submitted_by IS NOT NULL
  AND submitted_commit IS NULL
ORDER BY updated_at;

-- name: entry_by_id
SELECT * FROM landing_entries WHERE id = :id;

-- name: reviews_waiting
-- Submissions waiting for a reviewer nobody (alive) has been given yet.
SELECT * FROM landing_entries
WHERE state = 'review' AND (claimed_by IS NULL OR claim_until < :now)
ORDER BY position LIMIT :limit;

-- name: claim_review
UPDATE landing_entries SET claimed_by = :run, claim_until = :until
WHERE id = :id AND state = 'review' AND (claimed_by IS NULL OR claim_until < :now);

-- name: unclaim_review
-- Its reviewer gave no verdict: another is asked.
UPDATE landing_entries SET claimed_by = NULL, claim_until = NULL
WHERE id = :id AND state = 'review';

-- name: renew_reviews
UPDATE landing_entries SET claim_until = :until WHERE claimed_by = :run AND state = 'review';

-- name: drop_reviews
UPDATE landing_entries SET claimed_by = NULL, claim_until = NULL
WHERE claimed_by = :run AND state = 'review';

-- name: entry_approved
-- Approved: it joins the back of its queue.
UPDATE landing_entries SET state = 'queued', queued_at = :now, claimed_by = NULL,
    claim_until = NULL, position = (SELECT coalesce(max(position), 0) + 1 FROM landing_entries)
WHERE id = :id AND state = 'review';

-- name: entry_ends
UPDATE landing_entries SET state = :state, reason = :reason, finished_at = :now,
    claimed_by = NULL, claim_until = NULL, landing_id = NULL
WHERE id = :id AND state = :from;

-- name: close_open_entries
-- A person moved the task out of needs_review: its submission leaves the queue (one whose
-- landing is under way is finished or abandoned by whoever completes that landing).
UPDATE landing_entries SET state = 'closed', reason = :reason, finished_at = :now,
    claimed_by = NULL, claim_until = NULL
WHERE task_id = :task_id AND state IN ('review', 'queued', 'testing', 'held');

-- name: target_row
SELECT * FROM landing_targets WHERE target = :target;

-- name: insert_target
INSERT INTO landing_targets (target, holder, fence, until) VALUES (:target, NULL, 0, NULL)
ON CONFLICT (target) DO NOTHING;

-- name: take_target
-- A new holder: the fence rises, so anything the last one still writes is refused.
UPDATE landing_targets SET holder = :run, fence = fence + 1, until = :until
WHERE target = :target AND fence = :fence;

-- name: renew_target
UPDATE landing_targets SET until = :until
WHERE target = :target AND holder = :run AND fence = :fence;

-- name: renew_targets
-- A live holder's leases move on, each under the fence it holds.
UPDATE landing_targets SET until = :until WHERE holder = :run;

-- name: release_targets
UPDATE landing_targets SET holder = NULL, until = NULL WHERE holder = :run;

-- name: queue_head
SELECT * FROM landing_entries WHERE target = :target AND state = 'queued'
ORDER BY position, id LIMIT :limit;

-- name: adopt_entries
-- Open entries queued under a target's name from before targets were named by repository.
UPDATE landing_entries SET target = :new
WHERE target = :old AND state IN ('review', 'queued', 'testing', 'landing', 'held');

-- name: adopt_landings
UPDATE landings SET target = :new WHERE target = :old AND state = 'intent';

-- name: queued_targets
SELECT DISTINCT target FROM landing_entries WHERE state IN ('queued', 'testing', 'landing');

-- name: entries_move
UPDATE landing_entries SET state = :to
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = :from;

-- name: entries_unstart
-- Entries a holder took into a batch and did not finish: back in the queue, where they were.
UPDATE landing_entries SET state = 'queued' WHERE target = :target AND state = 'testing';

-- name: insert_landing
INSERT INTO landings (target, old, new, tree, checks, state, run, at)
VALUES (:target, :old, :new, :tree, :checks, 'intent', :run, :now)
RETURNING id;

-- name: entries_landing
UPDATE landing_entries SET state = 'landing', landing_id = :landing
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'testing';

-- name: landing_by_id
SELECT * FROM landings WHERE id = :id;

-- name: landing_intents
SELECT * FROM landings WHERE target = :target AND state = 'intent' ORDER BY id;

-- name: landing_ends
UPDATE landings SET state = :state, landed_at = :now WHERE id = :id AND state = 'intent';

-- name: entries_of_landing
SELECT * FROM landing_entries WHERE landing_id = :id AND state = 'landing' ORDER BY position;

-- name: entries_landed
UPDATE landing_entries SET state = 'landed', finished_at = :now
WHERE landing_id = :id AND state = 'landing';

-- name: entries_unland
UPDATE landing_entries SET state = 'queued', landing_id = NULL
WHERE landing_id = :id AND state = 'landing';

-- name: entries_unland_some
-- Some entries of a landing (a batch narrowed): back in the queue, where they were.
UPDATE landing_entries SET state = 'queued', landing_id = NULL
WHERE landing_id = :id AND state = 'landing' AND id IN (SELECT value FROM json_each(:ids));

-- name: landings_since
-- A target's landings after one (by id), newest first.
SELECT * FROM landings WHERE target = :target AND state = 'landed' AND id > :after
ORDER BY id DESC;

-- name: queue_open
-- Every open entry, in queue order, with its task's title.
SELECT e.*, t.title FROM landing_entries e JOIN tasks t ON t.id = e.task_id
WHERE e.state IN ('review', 'queued', 'testing', 'landing', 'held')
ORDER BY e.target, e.position;

-- name: add_task_spend
-- A model call charged to a task, per provider and tier, over every attempt of the task.
INSERT INTO task_usage (task_id, provider, tier, input_tokens, output_tokens, cost, calls)
VALUES (:task_id, :provider, :tier, :input, :output, :cost, 1)
ON CONFLICT (task_id, provider, tier) DO UPDATE SET
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cost = cost + excluded.cost,
    calls = calls + 1;

-- name: ended_since
-- Entries landed or returned to a worker since a time (off landing_entries_ended).
SELECT state, queued_at, finished_at FROM landing_entries
WHERE state IN ('landed', 'returned') AND finished_at >= :since;

-- name: landed_spend_since
-- What the tasks landed since a time cost, per provider and tier, over all their attempts.
SELECT provider, tier, count(*) AS changes, sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens, sum(cost) AS cost
FROM task_usage
WHERE task_id IN (SELECT task_id FROM landing_entries
                  WHERE state = 'landed' AND finished_at >= :since)
GROUP BY provider, tier ORDER BY provider, tier;

-- name: landing_waits
-- One landing's entries: when each was queued and when it landed.
SELECT queued_at, finished_at FROM landing_entries WHERE landing_id = :id AND state = 'landed';

-- name: landing_spend
-- What one landing's tasks cost, per provider and tier, over all their attempts.
SELECT provider, tier, count(*) AS changes, sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens, sum(cost) AS cost
FROM task_usage
WHERE task_id IN (SELECT task_id FROM landing_entries WHERE landing_id = :id AND state = 'landed')
GROUP BY provider, tier ORDER BY provider, tier;

-- name: task_sent_back
-- How often the task's submissions came back, from the queue or a review: none, and its
-- landing is one on the first try.
SELECT count(*) FROM landing_entries
WHERE task_id = :task_id AND state IN ('returned', 'changes');

-- name: record_route_outcome
-- One outcome of a route: it counts once in outcomes; every other sum fades by :keep, then
-- the outcome's increments are added (rules/learning.py). One statement, so writers on one route never lose an update.
INSERT INTO route_outcomes (provider, tier, task_class, outcomes, attempts, first_try_landed,
    landed, returned, failed, held, tokens, cost, updated_at)
VALUES (:provider, :tier, :task_class, 1, :attempts, :first_try_landed,
    :landed, :returned, :failed, :held, :tokens, :cost, :now)
ON CONFLICT (provider, tier, task_class) DO UPDATE SET
    outcomes = outcomes + 1,
    attempts = attempts * :keep + excluded.attempts,
    first_try_landed = first_try_landed * :keep + excluded.first_try_landed,
    landed = landed * :keep + excluded.landed,
    returned = returned * :keep + excluded.returned,
    failed = failed * :keep + excluded.failed,
    held = held * :keep + excluded.held,
    tokens = tokens * :keep + excluded.tokens,
    cost = cost * :keep + excluded.cost,
    updated_at = excluded.updated_at;

-- name: usage_reports_noted
-- How many of an attempt's own usage reports are noted on its task (counted up to the cap).
SELECT count(*) AS noted FROM (
    SELECT 1 FROM task_events
    WHERE task_id = ? AND kind = 'usage_reported' AND lease_epoch = ?
    LIMIT ?
) AS kept;

-- name: add_route_cost
-- What an attempt cost after its outcome was counted: added to its route's tokens and cost
-- as part of that outcome (no outcome of its own, nothing faded).
INSERT INTO route_outcomes (provider, tier, task_class, outcomes, attempts, first_try_landed,
    landed, returned, failed, held, tokens, cost, updated_at)
VALUES (:provider, :tier, :task_class, 0, 0, 0, 0, 0, 0, 0, :tokens, :cost, :now)
ON CONFLICT (provider, tier, task_class) DO UPDATE SET
    tokens = tokens + excluded.tokens,
    cost = cost + excluded.cost,
    updated_at = excluded.updated_at;

-- name: route_outcomes_all
-- Every route's decayed sums, in one order.
SELECT provider, tier, task_class, outcomes, attempts, first_try_landed, landed, returned,
    failed, held, tokens, cost, updated_at
FROM route_outcomes ORDER BY provider, tier, task_class;

-- name: route_outcomes_of_provider
SELECT provider, tier, task_class, outcomes, attempts, first_try_landed, landed, returned,
    failed, held, tokens, cost, updated_at
FROM route_outcomes WHERE provider = :provider ORDER BY tier, task_class;

-- name: add_note
-- A person's message, a pause, a redirect, a question or an answer on a task (task_notes).
INSERT INTO task_notes (task_id, kind, body, author, created_at, for_epoch, reply_to)
VALUES (:task_id, :kind, :body, :author, :now, :for_epoch, :reply_to);

-- name: notes_due
-- Whether the agent's held tasks have notes it was not given yet (every tool call asks).
SELECT 1 AS due FROM tasks t INDEXED BY tasks_holders JOIN task_notes n ON n.task_id = t.id
WHERE t.assigned_to = ? AND t.status = 'in_progress' AND n.delivered_epoch < t.lease_epoch
    AND (n.for_epoch IS NULL OR n.for_epoch = t.lease_epoch)
LIMIT 1;

-- name: deliver_notes
-- Those notes, marked given to their task's holder of now (its lease epoch).
UPDATE task_notes SET delivered_epoch = t.lease_epoch
FROM tasks t
WHERE t.id = task_notes.task_id AND t.assigned_to = ? AND t.status = 'in_progress'
    AND task_notes.delivered_epoch < t.lease_epoch
    AND (task_notes.for_epoch IS NULL OR task_notes.for_epoch = t.lease_epoch)
RETURNING task_notes.id, task_notes.task_id, task_notes.kind, task_notes.body,
    task_notes.author, task_notes.created_at;

-- name: notes_of
-- A task's notes, newest first.
SELECT * FROM task_notes WHERE task_id = ? ORDER BY id DESC LIMIT ?;

-- name: open_question
-- The task's newest question that no answer replies to.
SELECT * FROM task_notes q
WHERE q.task_id = ? AND q.kind = 'question'
    AND NOT EXISTS (SELECT 1 FROM task_notes a WHERE a.reply_to = q.id)
ORDER BY q.id DESC LIMIT 1;

-- name: open_questions
-- The inbox: questions no answer replies to, on tasks still waiting for one, oldest first.
SELECT q.task_id, q.body, q.author, q.created_at, t.title
FROM task_notes q JOIN tasks t ON t.id = q.task_id
WHERE q.kind = 'question' AND t.status = 'blocked'
    AND NOT EXISTS (SELECT 1 FROM task_notes a WHERE a.reply_to = q.id)
ORDER BY q.id LIMIT ?;

-- name: outsider_words
-- The inbox: the newest words of those who do not steer (issue 68), on tasks still open.
SELECT e.task_id, e.at, e.actor, e.reason, t.title
FROM task_events e JOIN tasks t ON t.id = e.task_id
WHERE e.kind = 'outsider' AND t.status NOT IN ('done', 'cancelled')
ORDER BY e.id DESC LIMIT ?;

-- name: held_tasks
-- Tasks in progress, with their holder's lease epoch (a fleet's pause or message).
SELECT id, epic_id, lease_epoch, assigned_to FROM tasks INDEXED BY tasks_holders
WHERE status = 'in_progress' ORDER BY id;

-- name: epic_task_count
SELECT count(*) AS tasks FROM tasks WHERE epic_id = ?;

-- name: withdraw_pause_notes
-- A pause lifted before its holder heard of it: the holder is not told to stop.
UPDATE task_notes SET delivered_epoch = for_epoch
WHERE task_id = ? AND kind = 'pause' AND for_epoch IS NOT NULL AND delivered_epoch < for_epoch;

-- name: pauses
-- What a person paused (a handful of rows at most).
SELECT * FROM pauses ORDER BY created_at, scope, key;

-- name: add_pause
INSERT INTO pauses (scope, key, author, reason, created_at)
VALUES (:scope, :key, :author, :reason, :now)
ON CONFLICT (scope, key) DO NOTHING
RETURNING scope;

-- name: remove_pause
DELETE FROM pauses WHERE scope = ? AND key = ? RETURNING author, created_at;

-- name: redirect_task
-- A person's new description or acceptance check for a task (NULL: keep it).
UPDATE tasks SET description = coalesce(:description, description),
    verify_command = coalesce(:verify_command, verify_command),
    updated_at = :now
WHERE id = :id;

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
UPDATE tasks SET lease_seconds = coalesce(:seconds, lease_seconds),
    lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', :now,
                                '+' || coalesce(:seconds, lease_seconds) || ' seconds'),
    last_heartbeat_at = :now, updated_at = :now
WHERE id = :id AND lease_token = :token AND status = 'in_progress'
RETURNING lease_expires_at,
    (SELECT 1 FROM tasks t INDEXED BY tasks_holders JOIN task_notes n ON n.task_id = t.id
     WHERE t.assigned_to = :agent AND t.status = 'in_progress' AND n.delivered_epoch < t.lease_epoch
         AND (n.for_epoch IS NULL OR n.for_epoch = t.lease_epoch)
     LIMIT 1) AS notes_due;

-- name: touch_agent_holding
-- touch_agent, only when the agent's token holds the task in progress (after
-- renew_held_lease in the same transaction: only when that renewed it).
INSERT INTO agents (id, first_seen_at, last_seen_at)
SELECT :agent, :now, :now
WHERE EXISTS (SELECT 1 FROM tasks
              WHERE id = :id AND lease_token = :token AND status = 'in_progress')
ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
WHERE agents.last_seen_at < :stale;

-- name: pull_of
-- A task's pull request onto a target.
SELECT * FROM pulls WHERE target = :target AND task_id = :task_id;

-- name: pull_opened
-- A task's pull request, opened or updated to carry a landing.
INSERT INTO pulls (target, task_id, number, url, branch, head, state, landing_id, waiting,
                   updated_at)
VALUES (:target, :task_id, :number, :url, :branch, :head, 'open', :landing_id, '', :now)
ON CONFLICT (target, task_id) DO UPDATE SET number = excluded.number, url = excluded.url,
    branch = excluded.branch, head = excluded.head, state = 'open',
    landing_id = excluded.landing_id, waiting = '', updated_at = excluded.updated_at;

-- name: pull_waits
-- What a pull request waits for now, as the views show it.
UPDATE pulls SET waiting = :waiting, updated_at = :now
WHERE target = :target AND task_id = :task_id;

-- name: pull_head
-- The head the autopilot pushed (or adopted) last: its next push is leased on it.
UPDATE pulls SET head = :head, updated_at = :now
WHERE target = :target AND task_id = :task_id;

-- name: pull_ends
-- A pull request merged or closed, or one whose task went back to a worker (state
-- stays open, and it carries no landing until the next submission).
UPDATE pulls SET state = :state, landing_id = NULL, waiting = :waiting, updated_at = :now
WHERE target = :target AND task_id = :task_id;

-- name: pulls_shown
-- Pull requests open now, or merged or closed since a time, with their tasks' titles.
SELECT p.*, t.title FROM pulls p JOIN tasks t ON t.id = p.task_id
WHERE p.state = 'open' OR p.updated_at >= :since ORDER BY p.target, p.number;

-- name: landing_moves
-- A pull request's landing, its head restacked or adopted: what it lands now.
UPDATE landings SET old = :old, new = :new, tree = :tree, checks = :checks
WHERE id = :id AND state = 'intent';

-- name: task_spend
-- What one task cost so far, over all its attempts (a pull request's text says it).
SELECT coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost), 0) AS cost
FROM task_usage WHERE task_id = :task_id;

-- name: record_delivery
-- A webhook delivery, unless its id was recorded before (0 rows: a replay).
INSERT INTO webhook_deliveries (id, event, at) VALUES (:id, :event, :now)
ON CONFLICT (id) DO NOTHING;

-- name: tasks_with_prefix
-- Tasks whose id starts so (a LIKE pattern, `\` its escape), with their status.
SELECT id, status FROM tasks WHERE id LIKE :prefix ESCAPE '\' ORDER BY id;

-- name: post_claim
-- A write on the forge claimed by this host: new, or left unfinished by a host gone since
-- (claimed before :stale). 0 rows: done, or another host is at it.
INSERT INTO forge_posts (key, claimed_at) VALUES (:key, :now)
ON CONFLICT (key) DO UPDATE SET claimed_at = excluded.claimed_at
WHERE forge_posts.done_at IS NULL AND forge_posts.claimed_at < :stale;

-- name: post_done
-- The write made (or found made); `at` is the forge's time of it, or a cursor's place.
INSERT INTO forge_posts (key, claimed_at, done_at, at) VALUES (:key, :now, :now, :at)
ON CONFLICT (key) DO UPDATE SET done_at = excluded.done_at, at = excluded.at;

-- name: post_of
SELECT * FROM forge_posts WHERE key = :key;

-- name: red_commits
-- The commits a red task was red at (its events of kind 'red'), oldest first.
SELECT reason FROM task_events WHERE task_id = :task_id AND kind = 'red' ORDER BY id;

-- name: synced_repositories
-- The repositories `import github:` has synced here (their comment cursors).
SELECT substr(key, 10) AS repository FROM forge_posts WHERE key LIKE 'comments:%';

-- name: unsynced_issues
-- The open issues the sync could not apply (edge/issue_sync.py), for `status`.
SELECT repository, number, task_id, why, made, since FROM unsynced_issues
ORDER BY repository, number;

-- name: unsynced_of
-- One repository's issues the sync could not apply, as its last pass left them.
SELECT number, task_id, why, made, since FROM unsynced_issues
WHERE repository = :repository ORDER BY number;

-- name: unsynced_clear
DELETE FROM unsynced_issues WHERE repository = :repository;

-- name: unsynced_add
INSERT INTO unsynced_issues (repository, number, task_id, why, made, since)
VALUES (:repository, :number, :task_id, :why, :made, :since);

-- name: questions_under
-- Open questions on tasks whose id starts so (a LIKE pattern), with whether and when the
-- sync posted each on its issue.
SELECT q.id, q.task_id, q.body, q.created_at, p.done_at AS posted, p.at AS posted_at
FROM task_notes q JOIN tasks t ON t.id = q.task_id
LEFT JOIN forge_posts p ON p.key = 'question:' || q.id
WHERE t.id LIKE :prefix ESCAPE '\' AND q.kind = 'question' AND t.status = 'blocked'
    AND NOT EXISTS (SELECT 1 FROM task_notes a WHERE a.reply_to = q.id)
ORDER BY q.id;

-- name: task_landed
-- What a done task's newest landing put on its target, and its pull request if it merged.
SELECT e.commit_sha, e.target, l.new, p.url
FROM landing_entries e LEFT JOIN landings l ON l.id = e.landing_id
LEFT JOIN pulls p ON p.task_id = e.task_id AND p.target = e.target AND p.state = 'merged'
WHERE e.task_id = :task_id AND e.state = 'landed'
ORDER BY e.id DESC LIMIT 1;

-- name: landed_untold
-- Done tasks whose id starts so (a LIKE pattern) whose issue the sync has not yet told of
-- its landing (no finished `landed:` write): whoever closed the issue, the merge or a person.
SELECT t.id FROM tasks t LEFT JOIN forge_posts p ON p.key = 'landed:' || t.id
WHERE t.id LIKE :prefix ESCAPE '\' AND t.status = 'done' AND p.done_at IS NULL
ORDER BY t.id;

-- name: pulls_open_under
-- The open pull requests of tasks whose id starts so: a closed issue's may be closed by its
-- merge, which the autopilot has not seen yet.
SELECT task_id, number, url FROM pulls
WHERE task_id LIKE :prefix ESCAPE '\' AND state = 'open'
ORDER BY task_id, number;

-- name: post_release
-- A claim given up unfinished (the forge failed): any host's next pass tries again.
DELETE FROM forge_posts WHERE key = :key AND done_at IS NULL;

-- name: schedule_of
SELECT * FROM schedules WHERE id = :id;

-- name: schedule_insert
INSERT INTO schedules (id, every, spec, last_task, next_at)
VALUES (:id, :every, :spec, :id, :next_at);

-- name: schedule_update
-- An edited roadmap's schedule: its definition, and its next time when `every` changed.
UPDATE schedules SET every = :every, spec = :spec, next_at = :next_at, stopped_at = NULL
WHERE id = :id;

-- name: schedules_due
-- Schedules whose time came and whose last task is over (or gone).
SELECT s.* FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task
WHERE s.stopped_at IS NULL AND s.next_at <= :now
    AND (t.status IS NULL OR t.status IN ('done', 'cancelled'))
ORDER BY s.next_at LIMIT 100;

-- name: schedule_made
-- The task a schedule made, moved from the one this host read (0 rows: another did it).
UPDATE schedules SET last_task = :task, next_at = :next_at
WHERE id = :id AND last_task = :was AND stopped_at IS NULL;

-- name: schedules_listed
SELECT s.id, s.every, s.last_task, s.next_at, s.stopped_at, t.status AS last_status
FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task
ORDER BY s.stopped_at IS NOT NULL, s.next_at, s.id LIMIT :limit;

-- name: schedule_stop
UPDATE schedules SET stopped_at = :now WHERE id = :id AND stopped_at IS NULL;

-- name: check_counted
-- One first run of a landing check (issue 57): whether it failed, whether that failure was
-- a flake, and the reruns it took.
INSERT INTO check_figures (command, runs, failures, flakes, reruns, rerun_seconds)
VALUES (:command, 1, :failed, :flaked, :reruns, :seconds)
ON CONFLICT (command) DO UPDATE SET runs = check_figures.runs + 1,
    failures = check_figures.failures + excluded.failures,
    flakes = check_figures.flakes + excluded.flakes,
    reruns = check_figures.reruns + excluded.reruns,
    rerun_seconds = check_figures.rerun_seconds + excluded.rerun_seconds;

-- name: check_figures_all
SELECT * FROM check_figures ORDER BY command;

-- name: flake_insert
INSERT INTO check_flakes (target, command, tree, tests, reruns, output, at)
VALUES (:target, :command, :tree, :tests, :reruns, :output, :at);

-- name: flakes_recent
SELECT * FROM check_flakes ORDER BY id DESC LIMIT :limit;

-- name: flakes_on_target
-- A target's flakes recorded since :since, newest first (issue 69): what is known to flake
-- there. Flakes are few, and each is recorded once proven, so the scan stays small.
SELECT command, tests FROM check_flakes WHERE target = :target AND at >= :since
ORDER BY id DESC LIMIT :limit;

-- name: quarantine_put
INSERT INTO quarantine (test, evidence, added_by, added_at, expires_at)
VALUES (:test, :evidence, :added_by, :now, :expires_at)
ON CONFLICT (test) DO UPDATE SET evidence = excluded.evidence, added_by = excluded.added_by,
    added_at = excluded.added_at, expires_at = excluded.expires_at;

-- name: quarantine_drop
DELETE FROM quarantine WHERE test = :test;

-- name: quarantine_listed
-- Every entry, live ones (not expired at :now) first.
SELECT *, expires_at > :now AS live FROM quarantine ORDER BY expires_at <= :now, test
LIMIT 1000;

-- name: news_add
-- What a webhook delivery said of a pull request (services/pull_news.py).
INSERT INTO pull_news (forge, repository, number, sha, what, name, state, at)
VALUES (:forge, :repository, :number, :sha, :what, :name, :state, :now);

-- name: news_told
-- News written: SQLite wakes no one (each autopilot reads the database every pass).
SELECT 1 AS told;

-- name: news_since
-- A repository's news heard at `since` or later, oldest first.
SELECT id, number, sha, what, name, state, at FROM pull_news
WHERE repository = :repository AND forge = :forge AND at >= :since ORDER BY at, id;

-- name: news_latest
-- When a repository's last news was heard (NULL: none kept).
SELECT max(at) AS at FROM pull_news WHERE repository = :repository AND forge = :forge AND at >= :since;

-- name: news_forget
DELETE FROM pull_news WHERE at < :before;
