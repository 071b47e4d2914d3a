-- A declared agent's claim reads only the ready tasks routing can send to its tier: those of
-- the complexities that route there now, plus the few whose route is their own (escalated
-- after a failure, or carrying their own token estimate).
CREATE INDEX tasks_ready_by_complexity ON tasks (complexity, wsjf_score DESC, created_at, id)
    WHERE status = 'pending' AND unmet_dependencies = 0;
CREATE INDEX tasks_ready_routed_alone ON tasks (wsjf_score DESC, created_at, id)
    WHERE status = 'pending' AND unmet_dependencies = 0
    AND (failed_provider IS NOT NULL OR instr(metadata, 'estimated_tokens') > 0);
