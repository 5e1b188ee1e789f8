-- Runbook runs: what each step's undo needs (captured before the step changes anything, so a rollback after a
-- crash still knows the previous image or replica count), and a Cancel that any replica can ask for.
ALTER TABLE action_steps ADD COLUMN undo TEXT;
ALTER TABLE action_runs ADD COLUMN cancel_requested_by TEXT;
-- An interrupted runbook run is resumed or rolled back once: the run that follows it up, claimed by compare-and-set.
ALTER TABLE action_runs ADD COLUMN followed_by INTEGER;
