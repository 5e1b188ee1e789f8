-- Who is running an action and when it last said so: recovery interrupts only runs whose heartbeat is stale.
ALTER TABLE action_runs ADD COLUMN lease_owner TEXT;
ALTER TABLE action_runs ADD COLUMN heartbeat_at TIMESTAMPTZ;
