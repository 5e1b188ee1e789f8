-- Incidents, their timelines and follow-up action items.
CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    title             TEXT NOT NULL,
    severity          TEXT NOT NULL,
    status            TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    services          TEXT NOT NULL,      -- JSON list
    declared_by       TEXT NOT NULL,
    declared_at       TEXT NOT NULL,
    channel_id        TEXT UNIQUE,
    channel_name      TEXT,
    header_ts         TEXT,
    announce_channel  TEXT,
    announce_ts       TEXT,
    roles             TEXT NOT NULL,      -- JSON {role: user}
    acknowledged_at   TEXT,
    acknowledged_by   TEXT,
    mitigated_at      TEXT,
    resolved_at       TEXT,
    last_update_at    TEXT,
    summary           TEXT NOT NULL DEFAULT '',
    ack_reminded_at   TEXT,
    nudged_at         TEXT
);
CREATE INDEX incidents_status ON incidents (status);

CREATE TABLE timeline_entries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    text         TEXT NOT NULL,
    author       TEXT,
    permalink    TEXT,
    source_ts    TEXT,
    edited_by    TEXT,
    deleted      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX timeline_entries_incident ON timeline_entries (incident_id, at);
-- One live entry per pinned message: a reaction delivered twice adds it once.
CREATE UNIQUE INDEX timeline_entries_pin ON timeline_entries (incident_id, source_ts) WHERE source_ts IS NOT NULL AND deleted = 0;

CREATE TABLE incident_action_items (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    text         TEXT NOT NULL,
    owner        TEXT,
    due          TEXT,                    -- ISO date
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    done_at      TEXT
);
