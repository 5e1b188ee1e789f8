"""crontab lines in a runbook (`echo "0 2 * * * /opt/backup.sh" | crontab -`, or a `# 0 2 * * * …` comment beside
`crontab -e`) as schedules: the five fields and the command they run.

Not responsible for what the scheduled command is (`assemble` finds the script or the command's own elements).
"""

from __future__ import annotations

import re

from bot.importing.model import CronFinding, Found
from bot.importing.pipeline import Pipeline

_FIELD = r"(?:\*|\d+)(?:[-/,](?:\*|\d+))*(?:/\d+)?"
_NAMED = r"(?:[A-Za-z]{3}(?:-[A-Za-z]{3})?(?:,[A-Za-z]{3})*)"
_CRON = re.compile(rf"(?P<cron>{_FIELD}\s+{_FIELD}\s+{_FIELD}\s+(?:{_FIELD}|{_NAMED})\s+(?:{_FIELD}|{_NAMED}))"
                   r"\s+(?P<command>[/~.$\w].*)$")
_NICKNAMES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
              "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def cron_line(text: str, line: int) -> CronFinding | None:
    """`0 2 * * * /srv/backup.sh >> /var/log/backup.log 2>&1` → 0 2 * * * and the command."""
    text = text.strip()
    nickname = text.split(" ", 1)
    if nickname[0] in _NICKNAMES and len(nickname) == 2:
        return CronFinding(_NICKNAMES[nickname[0]], nickname[1].strip(), line)
    match = _CRON.search(text)
    if match is None or not _valid(match["cron"]):
        return None
    return CronFinding(" ".join(match["cron"].split()), match["command"].strip(), line)


def in_comments(code: str, first_line: int) -> list[CronFinding]:
    """Cron lines written as comments (`# Add line: 0 2 * * * /srv/backup.sh`)."""
    found = []
    for offset, text in enumerate(code.splitlines()):
        stripped = text.strip()
        if stripped.startswith("#") and not stripped.startswith("#!"):
            cron = cron_line(stripped.lstrip("#"), first_line + offset)
            if cron is not None:
                found.append(cron)
    return found


def recognise(p: Pipeline) -> Found | None:
    """`echo "<cron line>" | crontab -`; `crontab -e` / `-l` alone is answered by the block's comments."""
    crontab = p.program == "crontab" or any(command.program == "crontab" for command in p.rest)
    if not crontab:
        return None
    if p.program in ("echo", "printf") and p.first.literal and len(p.words) >= 2:
        cron = cron_line(" ".join(p.words[1:]), p.statement.first_line)
        if cron is not None:
            return Found(crons=(cron,))
    return None


def _valid(cron: str) -> bool:
    fields = cron.split()
    limits = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for value, (lowest, highest) in zip(fields, limits, strict=True):
        for number in re.findall(r"\d+", value.split("/")[0]):
            if not lowest <= int(number) <= highest:
                return False
    return True
