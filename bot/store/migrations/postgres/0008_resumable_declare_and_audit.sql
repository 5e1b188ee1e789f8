-- Declaring an incident is resumable: the row records the last step done (creating → channel → invited → pinned
-- → declared, or rolling-back), so the chores finish or undo a declaration the store or the process cut short.
-- Rows from before were declared in one go.
ALTER TABLE incidents ADD COLUMN declare_stage TEXT NOT NULL DEFAULT 'declared';
CREATE INDEX incidents_unfinished ON incidents (declare_stage) WHERE declare_stage <> 'declared';
-- Every request is audited before its work ("requested") and its outcome written after; the incident or run a
-- request made keeps the request's audit id, so an outcome that could not be written is completed from it.
ALTER TABLE incidents ADD COLUMN audit_id BIGINT;
ALTER TABLE action_runs ADD COLUMN audit_id BIGINT;
CREATE INDEX incidents_audit ON incidents (audit_id) WHERE audit_id IS NOT NULL;
CREATE INDEX action_runs_audit ON action_runs (audit_id) WHERE audit_id IS NOT NULL;
-- An outcome the chores inferred (from the run or incident, or "unknown") rather than one the request wrote.
ALTER TABLE audit_log ADD COLUMN inferred BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX audit_log_requested ON audit_log (at) WHERE outcome = 'requested';
