-- One run engine (issue 16): `action_runs` and `action_steps` become `runs` and `run_steps` (the foreign keys of
-- approval_decisions follow the rename), and a run's typed plan moves out of `params.plan` into its step rows: a
-- row with `kind` set is a plan step (kind, service, args as JSON, undo in words, on_failure, timeout, retries, the
-- planning probe); an undo row a Roll back appends has no kind. `undo` keeps what an undo needs (JSON data), so
-- the words are `undo_words`. `runs.outcome_data` is how a run ended as data (JSON of bot.runs.outcomes.RunOutcome);
-- runs that ended before have none and keep their `outcome` text.
ALTER TABLE action_runs RENAME TO runs;
ALTER TABLE action_steps RENAME TO run_steps;
ALTER TABLE runs ADD COLUMN outcome_data TEXT;
ALTER TABLE run_steps ADD COLUMN kind TEXT, ADD COLUMN service TEXT, ADD COLUMN args TEXT, ADD COLUMN undo_words TEXT,
    ADD COLUMN on_failure TEXT, ADD COLUMN timeout DOUBLE PRECISION, ADD COLUMN retries INTEGER, ADD COLUMN probe TEXT;

-- Plain actions asked for before actions were plans (no `params.plan`) and not finished get the built-in plan
-- bot/runs/builtin.py makes: the action, then the health check (a backup: retention). Their old rows named the
-- executor's sub-steps; the last one named "Check the health of …" / "Apply retention …" was the gate. The titles
-- are the builtin's without the target's words (which need the catalog). Not started: fresh plan rows, the old
-- titles kept as "what it does". Running or interrupted: the action step is running (its effect unknown: it was
-- cut short), unless no old row started (waiting) or every old action row succeeded (succeeded, the gate step
-- then takes the old gate row's state); the old rows go into the action step's detail.
CREATE TABLE legacy_runs AS
SELECT r.id AS run_id, r.kind AS kind, r.service AS service, r.state AS run_state, r.params::jsonb AS params,
       (SELECT max(s.position) FROM run_steps s WHERE s.run_id = r.id
          AND s.title LIKE (CASE r.kind WHEN 'backup' THEN 'Apply retention%' ELSE 'Check the health of %' END)) AS gate_at
FROM runs r
WHERE r.kind IN ('restart', 'rollback', 'backup', 'restore') AND (r.params::jsonb -> 'plan') IS NULL
  AND r.state IN ('draft', 'pending', 'approved', 'handed_over', 'running', 'interrupted');

CREATE TABLE legacy_phases AS
SELECT l.*,
       CASE
         WHEN l.run_state NOT IN ('running', 'interrupted') THEN 'fresh'
         WHEN NOT EXISTS (SELECT 1 FROM run_steps s WHERE s.run_id = l.run_id AND s.state <> 'waiting') THEN 'fresh'
         WHEN EXISTS (SELECT 1 FROM run_steps s WHERE s.run_id = l.run_id AND s.position < coalesce(l.gate_at, 1000000))
          AND NOT EXISTS (SELECT 1 FROM run_steps s WHERE s.run_id = l.run_id
                            AND s.position < coalesce(l.gate_at, 1000000) AND s.state <> 'succeeded') THEN 'done'
         ELSE 'cut'
       END AS phase,
       (SELECT string_agg(s.title, '; ' ORDER BY s.position) FROM run_steps s WHERE s.run_id = l.run_id
          AND s.position < coalesce(l.gate_at, 1000000)) AS does,
       (SELECT string_agg(s.title || ' (' || s.state || CASE WHEN s.detail <> '' THEN ': ' || s.detail ELSE '' END || ')',
                          '; ' ORDER BY s.position)
          FROM run_steps s WHERE s.run_id = l.run_id) AS history,
       (SELECT min(s.started_at) FROM run_steps s WHERE s.run_id = l.run_id
          AND s.position < coalesce(l.gate_at, 1000000)) AS action_started,
       (SELECT max(s.finished_at) FROM run_steps s WHERE s.run_id = l.run_id
          AND s.position < coalesce(l.gate_at, 1000000)) AS action_finished,
       g.state AS gate_state, g.detail AS gate_detail, g.started_at AS gate_started, g.finished_at AS gate_finished,
       g.effect AS gate_effect
FROM legacy_runs l LEFT JOIN run_steps g ON g.run_id = l.run_id AND g.position = l.gate_at;

CREATE TABLE legacy_plan_rows AS
SELECT run_id, 0 AS position,
       CASE kind
         WHEN 'restart' THEN 'Restart ' || service
         WHEN 'rollback' THEN 'Roll ' || service || ' back to ' || coalesce(params ->> 'to', 'the previous image')
         WHEN 'backup' THEN 'Back up ' || service || ' (verified)'
         ELSE 'Restore ' || service || ' from backup ' || coalesce(params ->> 'backup_id', '?')
              || ' (a safety backup is taken first)'
       END AS title,
       CASE phase WHEN 'fresh' THEN 'waiting' WHEN 'done' THEN 'succeeded' ELSE 'running' END AS state,
       CASE phase WHEN 'fresh' THEN '' ELSE 'before this run became a plan its steps were: ' || coalesce(history, 'none') END
         AS detail,
       CASE phase WHEN 'fresh' THEN NULL ELSE action_started END AS started_at,
       CASE phase WHEN 'done' THEN action_finished ELSE NULL END AS finished_at,
       kind, service,
       (CASE kind
          WHEN 'rollback' THEN jsonb_build_object('to', params -> 'to')
          WHEN 'restore' THEN jsonb_build_object('backup', params -> 'backup_id')
          ELSE '{}'::jsonb
        END)::text AS args,
       CASE kind WHEN 'rollback' THEN 'deploy the image it ran before'
                 WHEN 'restore' THEN 'restore the safety backup taken first' ELSE NULL END AS undo_words,
       'stop' AS on_failure,
       (CASE WHEN kind IN ('backup', 'restore') THEN 21600.0 ELSE 3600.0 END)::double precision AS timeout,
       0 AS retries,
       CASE WHEN does IS NULL THEN '' ELSE 'what it does: ' || does END AS probe,
       NULL::text AS effect
FROM legacy_phases
UNION ALL
SELECT run_id, 1,
       CASE kind WHEN 'backup' THEN 'Apply retention' ELSE 'Check the health of ' || service || ', up to 3 tries 2 s apart' END,
       CASE WHEN phase = 'done' AND gate_state IS NOT NULL THEN gate_state ELSE 'waiting' END,
       CASE WHEN phase = 'done' AND gate_state IS NOT NULL THEN gate_detail ELSE '' END,
       CASE WHEN phase = 'done' THEN gate_started ELSE NULL END,
       CASE WHEN phase = 'done' THEN gate_finished ELSE NULL END,
       CASE kind WHEN 'backup' THEN 'retention' ELSE 'check' END, service,
       (CASE kind WHEN 'backup' THEN '{}'::jsonb ELSE jsonb_build_object('attempts', 3, 'interval', 2.0) END)::text,
       NULL,
       CASE kind WHEN 'backup' THEN 'continue' ELSE 'stop' END,
       CASE kind WHEN 'backup' THEN 3600.0 ELSE 600.0 END,
       0, '',
       CASE WHEN phase = 'done' THEN gate_effect ELSE NULL END
FROM legacy_phases;

DELETE FROM run_steps WHERE run_id IN (SELECT run_id FROM legacy_runs);
INSERT INTO run_steps (run_id, position, title, state, detail, started_at, finished_at, kind, service, args, undo_words,
                       on_failure, timeout, retries, probe, effect)
SELECT run_id, position, title, state, detail, started_at, finished_at, kind, service, args, undo_words, on_failure,
       timeout, retries, probe, effect
FROM legacy_plan_rows ORDER BY run_id, position;
UPDATE runs SET params = (jsonb_build_object('mode', 'run') || params::jsonb)::text
WHERE id IN (SELECT run_id FROM legacy_runs);
DROP TABLE legacy_plan_rows;
DROP TABLE legacy_phases;
DROP TABLE legacy_runs;

-- Every other run with a plan in params: the plan into its rows (a plan step with no row yet gets a waiting one),
-- then out of params.
INSERT INTO run_steps (run_id, position, title, state, detail, kind, service, args, undo_words, on_failure, timeout,
                       retries, probe)
SELECT r.id, (p.ordinality - 1)::integer, p.value ->> 'title', 'waiting', '', p.value ->> 'kind', p.value ->> 'service',
       coalesce(p.value -> 'args', '{}'::jsonb)::text, p.value ->> 'undo', p.value ->> 'on_failure',
       (p.value ->> 'timeout')::double precision, (p.value ->> 'retries')::integer, coalesce(p.value ->> 'probe', '')
FROM runs r CROSS JOIN LATERAL jsonb_array_elements(r.params::jsonb -> 'plan') WITH ORDINALITY AS p(value, ordinality)
WHERE jsonb_typeof(r.params::jsonb -> 'plan') = 'array'
ON CONFLICT (run_id, position) DO UPDATE SET kind = excluded.kind, service = excluded.service, args = excluded.args,
  undo_words = excluded.undo_words, on_failure = excluded.on_failure, timeout = excluded.timeout,
  retries = excluded.retries, probe = excluded.probe;
UPDATE runs SET params = ((params::jsonb) - 'plan')::text WHERE (params::jsonb -> 'plan') IS NOT NULL;
