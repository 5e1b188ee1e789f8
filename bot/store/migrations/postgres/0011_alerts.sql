-- Alerts from Alertmanager and Grafana: one row per alert group (one Slack message), one per alert (its latest
-- state), and one per state change (fingerprint, status, startsAt): a delivery seen before inserts nothing.
CREATE TABLE alert_groups (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           TEXT NOT NULL,
    key_hash         TEXT NOT NULL,       -- sha256 of source and group key: the key itself may be long
    group_key        TEXT NOT NULL,
    group_labels     TEXT NOT NULL,       -- JSON {label: value}: the silence's matchers
    channel_id       TEXT NOT NULL,
    message_ts       TEXT,
    status           TEXT NOT NULL,
    route_index      INTEGER,
    service          TEXT,
    runbook          TEXT,
    run_values       TEXT NOT NULL DEFAULT '{}',  -- JSON {parameter: value} rendered from the alert
    run_problem      TEXT,                -- why the Run button is disabled
    external_url     TEXT NOT NULL DEFAULT '',
    first_starts_at  TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    version          INTEGER NOT NULL DEFAULT 0,
    acked_by         TEXT,
    acked_at         TIMESTAMPTZ,
    silence_id       TEXT,
    silenced_by      TEXT,
    silenced_until   TIMESTAMPTZ,
    run_id           BIGINT,
    incident_id      BIGINT,
    health_run_id    BIGINT,
    UNIQUE (source, key_hash)
);
CREATE INDEX alert_groups_status ON alert_groups (status, updated_at);
CREATE TABLE alerts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES alert_groups (id),
    source       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       TEXT NOT NULL,
    starts_at    TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ,
    labels       TEXT NOT NULL,
    annotations  TEXT NOT NULL,
    links        TEXT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (source, fingerprint)
);
CREATE INDEX alerts_group ON alerts (group_id);
CREATE TABLE alert_events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       TEXT NOT NULL,
    starts_at    TIMESTAMPTZ NOT NULL,
    group_id     BIGINT NOT NULL REFERENCES alert_groups (id),
    delivery     TEXT NOT NULL,           -- the delivery that recorded it first
    received_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (source, fingerprint, status, starts_at)
);
CREATE INDEX alert_events_delivery ON alert_events (delivery);
