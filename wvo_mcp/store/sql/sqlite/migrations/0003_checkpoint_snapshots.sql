-- Git snapshots of the workspace taken with a checkpoint (NULL when none was taken).
ALTER TABLE checkpoints ADD COLUMN git_head TEXT;    -- HEAD when the checkpoint was taken
ALTER TABLE checkpoints ADD COLUMN git_commit TEXT;  -- snapshot commit of the working tree
ALTER TABLE checkpoints ADD COLUMN git_ref TEXT;     -- refs/wvo/checkpoints/<task>/<seq>
