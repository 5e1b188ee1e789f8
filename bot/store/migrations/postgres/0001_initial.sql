-- Health runs with per-check results, the audit log, and idempotency keys.
CREATE TABLE health_runs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope         TEXT NOT NULL,          -- JSON list of service names; [] means all
    services      TEXT NOT NULL,          -- JSON list of the services actually checked
    status        TEXT NOT NULL,
    requested_by  TEXT,
    channel_id    TEXT,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX health_runs_started_at ON health_runs (started_at);

CREATE TABLE health_results (
    run_id       BIGINT NOT NULL REFERENCES health_runs (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    service      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    check_name   TEXT NOT NULL,
    check_type   TEXT NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    latency_ms   DOUBLE PRECISION NOT NULL,
    checked_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX health_results_service ON health_results (service, checked_at);

CREATE TABLE audit_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    actor_id     TEXT,
    channel_id   TEXT,
    args         TEXT NOT NULL DEFAULT '',
    detail       TEXT,
    duration_ms  DOUBLE PRECISION
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL
);
