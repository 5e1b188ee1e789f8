-- A person's answer to a `manual` step (Done / Skip / Failed): who pressed it and when; the first press wins.
ALTER TABLE run_steps ADD COLUMN answer TEXT;        -- done | skipped | failed (NULL: not answered)
ALTER TABLE run_steps ADD COLUMN answered_by TEXT;   -- the Slack user who pressed it
ALTER TABLE run_steps ADD COLUMN answered_at TIMESTAMPTZ;
