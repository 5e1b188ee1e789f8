-- Alert groups: the version their Slack message last showed (a repeated delivery catches a message that fell behind
-- up), the result of the run started from the group's Run button, and silences that wait for a second person's
-- approval (`alerts.silence_approvals`), each person's decision once.
ALTER TABLE alert_groups ADD COLUMN shown_version INTEGER NOT NULL DEFAULT 0;
UPDATE alert_groups SET shown_version = version;  -- messages already posted show what they show
ALTER TABLE alert_groups ADD COLUMN run_state TEXT;     -- the linked run's final state, once it ended
ALTER TABLE alert_groups ADD COLUMN run_ending TEXT;    -- its one-line ending (mrkdwn)
ALTER TABLE alert_groups ADD COLUMN run_link TEXT;      -- a permalink to the run's message
CREATE INDEX alert_groups_run ON alert_groups (run_id);
CREATE TABLE alert_silence_requests (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id          BIGINT NOT NULL REFERENCES alert_groups (id),
    state             TEXT NOT NULL,          -- pending | approved | silenced | failed | denied | withdrawn | expired
    requested_by      TEXT NOT NULL,
    ends_at           TIMESTAMPTZ,            -- "until…": the silence ends then
    lasts_seconds     INTEGER,                -- 1 h / 4 h: the silence lasts this long from its approval
    comment           TEXT NOT NULL,
    approvals_needed  INTEGER NOT NULL,
    approvers         TEXT NOT NULL DEFAULT '[]',  -- JSON [Slack user or group id]; empty: anyone but the requester
    created_at        TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    channel_id        TEXT NOT NULL,
    message_ts        TEXT,
    decided_by        TEXT,
    decided_at        TIMESTAMPTZ,
    silence_id        TEXT,
    problem           TEXT,                   -- failed: why Alertmanager did not take it
    CHECK ((ends_at IS NULL) <> (lasts_seconds IS NULL))
);
-- One open request per group: a second Silence is told about the first.
CREATE UNIQUE INDEX alert_silence_requests_open ON alert_silence_requests (group_id) WHERE state IN ('pending', 'approved');
CREATE INDEX alert_silence_requests_state ON alert_silence_requests (state, expires_at);
CREATE TABLE alert_silence_decisions (
    request_id  BIGINT NOT NULL REFERENCES alert_silence_requests (id),
    user_id     TEXT NOT NULL,
    decision    TEXT NOT NULL,                -- approve | deny
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (request_id, user_id)
);
