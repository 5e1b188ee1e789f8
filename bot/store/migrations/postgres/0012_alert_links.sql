-- Alert groups linked to incidents, reopened within a set time (with a flap count), declared automatically once.
ALTER TABLE alert_groups ADD COLUMN declaring_incident_id BIGINT;   -- declared from this group; linked once declared
ALTER TABLE alert_groups ADD COLUMN flaps INTEGER NOT NULL DEFAULT 0;  -- times it fired again after resolving
ALTER TABLE alert_groups ADD COLUMN resolved_at TIMESTAMPTZ;         -- when every alert of it resolved (NULL: firing)
ALTER TABLE alert_groups ADD COLUMN turned_in TEXT;                  -- the delivery that last turned it firing/resolved
ALTER TABLE alert_groups ADD COLUMN auto_declared_at TIMESTAMPTZ;    -- the auto-declare rule's claim: once, ever
CREATE INDEX alert_groups_created ON alert_groups (created_at);
