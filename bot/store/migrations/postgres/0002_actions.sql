-- Action runs and their steps, approval decisions, backups, Docker deploy history, leases.
CREATE TABLE action_runs (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service           TEXT NOT NULL,
    kind              TEXT NOT NULL,
    state             TEXT NOT NULL,
    environment       TEXT NOT NULL,
    target            TEXT NOT NULL,
    params            TEXT NOT NULL,      -- JSON
    requested_by      TEXT NOT NULL,
    reason            TEXT NOT NULL DEFAULT '',
    approvals_needed  INTEGER NOT NULL,
    approvers         TEXT NOT NULL,      -- JSON list of user/group IDs
    channel_id        TEXT,
    message_ts        TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    outcome           TEXT NOT NULL DEFAULT '',
    target_state      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX action_runs_service ON action_runs (service, created_at);
CREATE INDEX action_runs_state ON action_runs (state);

CREATE TABLE action_steps (
    run_id       BIGINT NOT NULL REFERENCES action_runs (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    title        TEXT NOT NULL,
    state        TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (run_id, position)
);

CREATE TABLE approval_decisions (
    run_id    BIGINT NOT NULL REFERENCES action_runs (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    decision  TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, user_id)
);

CREATE TABLE backups (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    path         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    label        TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    verified_at TIMESTAMPTZ,
    run_id       BIGINT,
    deleted_at TIMESTAMPTZ
);
CREATE INDEX backups_service ON backups (service, created_at);

CREATE TABLE deploy_history (
    service     TEXT NOT NULL,
    image       TEXT NOT NULL,
    digest      TEXT,
    first_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (service, image)
);

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    token       BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
