"""The checker: reads what the targets themselves recorded (the HTTP target's effects, the backup archives on disk, the
fake Slack's channels and posts), the store's rows and the replicas' logs, and lists every broken guarantee.

Not responsible for producing the history (workload.py, nemesis.py): it only judges it, after the faults stopped
and the chores had time to settle.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from playground.slack_api import FakeSlack
from tests.faults.workload import EffectTarget, History, OpKind

# States a run may rest in once the faults stopped: finished, waiting for people, or interrupted (resumable).
RESTING = {"draft", "pending", "succeeded", "failed", "denied", "expired", "interrupted", "cancelled"}
# The runbooks' effect steps (workload.catalog): a at position 0, b at 2 (after a wait).
STEP_POSITIONS = {"a": 0, "b": 2}
# audit_trail.refused's line: all that is kept of a request refused because the store could not take its entry.
REFUSED_LOG = re.compile(r"request refused and not in the audit log \(.*?\): (\S+) (\S+) by (\S+) in \S+ at \S+, "
                         r"args ('.*'|\".*\")(?: \[[^\]]*\])?$")


@dataclass(frozen=True)
class Run:
    id: int
    kind: str
    state: str
    token: str | None
    requested_by: str
    approvals_needed: int
    expires_at: datetime
    started_at: datetime | None
    approvals: tuple[tuple[str, datetime], ...]  # (approver, at)
    steps: tuple[str, ...] = ()  # each step's state, by position
    service: str = ""


async def _runs(connection: asyncpg.Connection) -> list[Run]:
    rows = await connection.fetch("SELECT id, service, kind, state, params, requested_by, approvals_needed, expires_at, "
                                  "started_at FROM runs ORDER BY id")
    decisions = await connection.fetch("SELECT run_id, user_id, decision, at FROM approval_decisions")
    step_rows = await connection.fetch("SELECT run_id, position, state FROM run_steps ORDER BY run_id, position")
    steps: dict[int, list[str]] = {}
    for step in step_rows:
        steps.setdefault(step["run_id"], []).append(step["state"])
    approvals: dict[int, list[tuple[str, datetime]]] = {}
    for decision in decisions:
        if decision["decision"] == "approve":
            approvals.setdefault(decision["run_id"], []).append((decision["user_id"], decision["at"]))
    runs = []
    for row in rows:
        params = json.loads(row["params"])
        values = params.get("values") if isinstance(params, dict) else None
        token = values.get("token") if isinstance(values, dict) else None
        runs.append(Run(row["id"], row["kind"], row["state"], token, row["requested_by"], row["approvals_needed"],
                        row["expires_at"], row["started_at"], tuple(approvals.get(row["id"], [])),
                        tuple(steps.get(row["id"], [])), row["service"]))
    return runs


@dataclass(frozen=True)
class Verdict:
    problems: list[str]
    rested: Counter[str]  # how the runs, backups and incidents ended, for the summary


async def check(dsn: str, history: History, effects: EffectTarget, slack: FakeSlack, backups: Path,
                logs: list[Path], bot_channels: set[str]) -> Verdict:
    connection = await asyncpg.connect(dsn)
    try:
        runs = await _runs(connection)
        backup_rows = await connection.fetch("SELECT id, run_id, path, label, deleted_at FROM backups")
        incidents = await connection.fetch("SELECT id, title, channel_id, channel_name, declare_stage FROM incidents")
        audits = await connection.fetch("SELECT kind, name, actor_id, args, outcome FROM audit_log")
    finally:
        await connection.close()
    problems: list[str] = []
    problems += _effects(history, effects, runs)
    problems += _runs_rest(runs)
    problems += _backups(runs, [dict(row) for row in backup_rows], backups)
    problems += _incidents([dict(row) for row in incidents], slack, bot_channels)
    problems += _audited(history, [dict(row) for row in audits], logs)
    problems += _mentions(history, slack)
    rested = Counter(f"runs {run.state}" for run in runs)
    rested["backup archives"] = len(backup_rows)
    rested["incidents declared"] = sum(1 for row in incidents if row["declare_stage"] == "declared")
    rested["approvals given"] = sum(len(run.approvals) for run in runs)
    return Verdict(problems, rested)


def _effects(history: History, effects: EffectTarget, runs: list[Run]) -> list[str]:
    problems = []
    by_token = {run.token: run for run in runs if run.token is not None and run.started_at is not None}
    counted = Counter((effect.runbook, effect.step, effect.token) for effect in effects.effects)
    problems += [f"effect {runbook}/{step} for {token} happened {n} times" for (runbook, step, token), n in counted.items()
                 if n > 1]
    # Nothing lost: a run the store says succeeded had each of its effects on the target.
    tokens = {token for _, _, token in counted}
    problems += [f"run #{run.id} succeeded, but its target saw no effect for {run.token}" for run in runs
                 if run.token is not None and run.state == "succeeded" and run.token not in tokens]
    for effect in effects.effects:
        run = by_token.get(effect.token)
        if run is None:
            problems.append(f"effect {effect.runbook}/{effect.step} for {effect.token}: no started run asked for it")
            continue
        approvers = [(user, at) for user, at in run.approvals if user != run.requested_by]
        valid = [at for _, at in approvers if at <= run.expires_at and at <= effect.at]
        # The store must know a step acted (it ran, or is running): one it holds as never started would run again on
        # Resume, a second effect. A paused replica acting after its lease lapsed would show here.
        position = STEP_POSITIONS[effect.step]
        if position < len(run.steps) and run.steps[position] in ("waiting", "skipped"):
            problems.append(f"effect {effect.runbook}/{effect.step} of run #{run.id} ({run.state}): the store holds that "
                            f"step as {run.steps[position]}, so a resume would act again")
        if len({user for user, _ in approvers}) < run.approvals_needed or len(valid) < run.approvals_needed:
            problems.append(f"effect {effect.runbook}/{effect.step} of run #{run.id} without its {run.approvals_needed} "
                            f"approval(s) inside expiry: {approvers}")
    return problems


def _runs_rest(runs: list[Run]) -> list[str]:
    return [f"run #{run.id} ({run.kind}) left {run.state}: neither finished nor resumable" for run in runs
            if run.state not in RESTING]


def _backups(runs: list[Run], rows: list[dict[str, Any]], directory: Path) -> list[str]:
    problems = []
    per_run = Counter(row["run_id"] for row in rows if row["label"] == "manual")
    problems += [f"backup run #{run_id} made {n} archives" for run_id, n in per_run.items() if n > 1]
    known = {Path(row["path"]).name for row in rows}
    problems += [f"backup #{row['id']} (run #{row['run_id']}): its archive {row['path']} is missing" for row in rows
                 if row["deleted_at"] is None and not Path(row["path"]).exists()]
    on_disk = [p for p in directory.rglob("*") if p.is_file() and not p.name.endswith(".partial")]
    for path in on_disk:
        if path.name not in known:
            # The runs of that directory's service, to tell how it happened.
            service = path.name.split("-manual-")[0]
            near = [f"#{run.id} {run.state}" for run in runs if run.kind == "backup" and run.service == service]
            problems.append(f"archive {path.name} on disk is known to no backup row (runs on {service}: {near})")
    succeeded = {run.id for run in runs if run.kind == "backup" and run.state == "succeeded"}
    problems += [f"backup run #{run_id} succeeded without an archive" for run_id in succeeded if per_run[run_id] == 0]
    return problems


def _incidents(rows: list[dict[str, Any]], slack: FakeSlack, bot_channels: set[str]) -> list[str]:
    problems = []
    linked = set()
    for row in rows:
        if row["declare_stage"] != "declared":
            problems.append(f"incident #{row['id']} ({row['title']}) left half-made: {row['declare_stage']}")
        channel = slack.channels.get(row["channel_id"] or "")
        if channel is None or channel.get("archived"):
            problems.append(f"incident #{row['id']} ({row['title']}) has no channel ({row['channel_id']})")
        linked.add(row["channel_id"])
    made = {c["id"]: c["name"] for c in slack.channels.values() if c["id"] not in bot_channels and not c.get("archived")}
    for cid, name in made.items():
        if cid not in linked:
            # What the store holds for the same declaration (its title is in the channel's name), to tell how it happened.
            same = [f"#{r['id']} {r['declare_stage']} channel {r['channel_id']} {r['channel_name']}" for r in rows
                    if r["title"].replace(" ", "-") in name]
            problems.append(f"channel {name} ({cid}) belongs to no incident (the store holds for it: {same or 'nothing'})")
    return problems


def _audited(history: History, audits: list[dict[str, Any]], logs: list[Path]) -> list[str]:
    """Each acknowledged request has an entry; one the bot refused because its store was down has the log line that
    is all it can keep (and the person was told nothing was done)."""
    entries = Counter((a["kind"], a["name"], a["actor_id"], a["args"]) for a in audits)
    refused: Counter[tuple[str, str, str, str]] = Counter()
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            found = REFUSED_LOG.search(line)
            if found:
                refused[(found[1], found[2], found[3], str(ast.literal_eval(found[4])))] += 1
    acked: Counter[tuple[str, str, str, str]] = Counter()
    for sent in history.sent:
        key = (sent.kind, sent.name, sent.actor, sent.args[:500])
        acked[key] += sent.delivery.acks
    problems = []
    for key, n in acked.items():
        kind, name, actor, args = key
        have = entries[key] + refused[key]
        if kind == "event":  # a retried delivery is audited as a duplicate, under its event id
            event_id = next(s.event_id for s in history.sent if s.args == args)
            have += entries[(kind, name, actor, event_id)] + refused[(kind, name, actor, event_id)]
        if have < n:
            problems.append(f"{kind} {name} by {actor} ({args[:80]}): acknowledged {n}×, audited {have}×")
    return problems


def _mentions(history: History, slack: FakeSlack) -> list[str]:
    replies = Counter(str(c.args.get("thread_ts")) for c in slack.of("chat.postMessage")
                      if c.args.get("thread_ts") in history.mentions)
    return [f"mention {history.mentions[ts]} answered {n} times" for ts, n in replies.items() if n > 1]


def summary(history: History, effects: EffectTarget, seed: int, rested: Counter[str]) -> str:
    lines = [f"fault suite, seed {seed} (OPSBOT_FAULTS_SEED={seed} replays it)",
             (f"  requests sent: {history.requests} (acknowledged {sum(1 for s in history.sent if s.delivery.acked)}, "
              f"delivered more than once {sum(1 for s in history.sent if len(s.delivery.attempts) > 1)})"),
             "  operations: " + ", ".join(f"{k} {n}" for k, n in sorted(history.ops.items())),
             "  faults: " + ", ".join(f"{k}: {n}" for k, n in sorted(history.faults.items())),
             "  outcomes: " + ", ".join(f"{k} {n}" for k, n in sorted(history.outcomes.items())),
             (f"  effects on the target: {len(effects.effects)} "
              f"({sum(1 for t in history.tokens.values() if t in (OpKind.APPROVAL, OpKind.RUNBOOK))} runbook ops)"),
             "  at rest: " + ", ".join(f"{k} {n}" for k, n in sorted(rested.items()))]
    return "\n".join(lines)
