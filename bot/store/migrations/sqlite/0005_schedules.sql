-- The scheduler: each job's cursor (the latest due time it has recorded), one row per occurrence with its
-- state, and the messages scheduled work posted (so a retried post is not a second message).
CREATE TABLE schedule_jobs (
    job         TEXT PRIMARY KEY,
    cursor      TEXT NOT NULL
);

CREATE TABLE schedule_occurrences (
    job          TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    state        TEXT NOT NULL,        -- pending, running, done, failed, skipped
    attempt      INTEGER NOT NULL DEFAULT 0,
    owner        TEXT,
    started_at   TEXT,
    finished_at  TEXT,
    detail       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job, due_at)
);
CREATE INDEX schedule_occurrences_state ON schedule_occurrences (state, due_at);

CREATE TABLE posted_messages (
    key         TEXT PRIMARY KEY,
    channel_id  TEXT NOT NULL,
    ts          TEXT,
    created_at  TEXT NOT NULL
);
