-- One live record per backup file: a record written twice for the same archive (a replica that resumes after the
-- chores already recorded the archive it left, see bot/actions/partials.py) becomes one. Deleted records keep
-- their path, which a later backup may reuse.
CREATE UNIQUE INDEX backups_live_path ON backups (path) WHERE deleted_at IS NULL;
