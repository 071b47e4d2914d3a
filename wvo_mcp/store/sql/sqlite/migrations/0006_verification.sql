-- The verification gate: a command (JSON: an argv list, or a string for /bin/sh -c) that must
-- pass in the sandbox before the holder's `done` is accepted; and, on a checkpoint, the
-- summary of the sandbox run it attached.
ALTER TABLE tasks ADD COLUMN verify_command TEXT;
ALTER TABLE checkpoints ADD COLUMN sandbox_run TEXT;
