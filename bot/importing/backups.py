"""Commands that take or put back a backup, as the catalog's `backup:` blocks and backup/restore steps:
`pg_dump | gzip > DIR/…` → postgres, `mysqldump` → mysql, `redis-cli --rdb` / `BGSAVE` → redis, `tar czf` → directory;
`find DIR -mtime +N -delete` → retention; `psql < dump`, `… | psql`, `pg_restore`, `tar xzf` → restore.

Not responsible for where the backups' retention and schedule land (`assemble`: they may be lines apart).
"""

from __future__ import annotations

import posixpath
import re

from bot.importing.argv import option, positionals
from bot.importing.model import HIGH, BackupFinding, Confidence, Data, Found, RetentionFinding, Sure, manual, medium
from bot.importing.pipeline import Pipeline, env_name, fixed_directory
from bot.importing.shell import Command
from bot.importing.variables import Accepts, Variables, parameter_name
from bot.importing.words import Word

_DUMPS = {"pg_dump": "postgres", "pg_dumpall": "postgres", "mysqldump": "mysql", "mariadb-dump": "mysql"}
_CLIENTS = {"psql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_DECOMPRESS = frozenset({"gunzip", "zcat", "gzip", "cat", "xz", "unxz", "zstd", "bzcat", "pv"})
_STAMP = re.compile(r"[_.-]*(\$\{?\w+\}?|\$\([^)]*\)|\d{6,}[\d_T-]*)")
_ARCHIVE = re.compile(r"(\.(tar|tgz|gz|bz2|xz|zst|sql|dump|rdb|zip))+$")
_BACKUP_WORD = re.compile(r"[_.-]?(backup|bak|dump|export|archive)s?$")
_SLUG = re.compile(r"[^a-z0-9]+")
_BACKUP_NAME = re.compile(r"backup|dump|bak|restore|snapshot|hourly|nightly|daily|weekly", re.IGNORECASE)
_COMPRESSED = re.compile(r"\.(gz|bz2|xz|zst|tgz|tar|dump|backup)$")


def recognise(p: Pipeline) -> Found | None:
    program = p.program
    script = p.words[1] if program in ("bash", "sh") and len(p.words) > 1 else p.words[0]
    if script.endswith(".sh") and p.context.script(script):
        services = p.context.script(script)
        return Found(steps=tuple({"kind": "backup", "service": service} for service in services),
                     sure=medium(f"runs {script.rsplit('/', 1)[-1]}, which the runbook holds: its backups"))
    if program in _DUMPS:
        return _dump(p, _DUMPS[program])
    if program == "redis-cli":
        return _redis(p)
    if program == "tar":
        return _tar(p)
    if program == "find":
        return _retention(p)
    if program in ("cp", "rsync"):
        return _copy(p)
    restore = _restore(p)
    if restore is not None:
        return restore
    return None


def _dump(p: Pipeline, engine: str) -> Found:
    resolved = p.engine_service()
    if resolved.service is None:
        return manual(f"{p.program}: {resolved.why}", resolved.why)
    service = resolved.service
    written = option(list(p.words), "-f", "--file", "--result-file", "-r") or p.statement.output
    directory, sure = _directory(p.variables, written, service)
    if resolved.why:
        sure = sure.but(Confidence.MEDIUM, resolved.why)
    backup: Data = {"type": engine, "directory": directory, "dsn_env": env_name(service)}
    uploads = [command.program for command in p.rest if command.program not in ("gzip", "pigz", "zstd", "xz", "bzip2")]
    if uploads:
        return manual(f"the dump goes through `{' | '.join(uploads)}`: opsbot writes its own backup files",
                      targets=p.target_hints())
    return Found(steps=({"kind": "backup", "service": service},), backups=(BackupFinding(service, backup, sure),),
                 targets=p.target_hints(), sure=sure,
                 decisions=((f"{env_name(service)} holds the {engine} URL the backup connects with (user and "
                             "password in the environment)"),))


def _redis(p: Pipeline) -> Found | None:
    words = list(p.words)
    file = option(words, "--rdb")
    args = positionals(words[1:], frozenset({"-h", "-p", "-a", "-n", "-u", "--rdb", "--user", "--pass"}))
    if file is None and (not args or args[0].upper() not in ("BGSAVE", "SAVE")):
        return None
    resolved = p.engine_service()
    if resolved.service is None:
        return manual(f"redis-cli: {resolved.why}", resolved.why)
    service = resolved.service
    directory, sure = _directory(p.variables, file, service)
    backup: Data = {"type": "redis", "directory": directory, "url_env": env_name(service)}
    return Found(steps=({"kind": "backup", "service": service},), backups=(BackupFinding(service, backup, sure),),
                 targets=p.target_hints(), sure=sure)


def _directory(variables: Variables, written: str | None, service: str) -> tuple[str, Sure]:
    if written:
        path = variables.text(written)
        if path.startswith("/"):
            fixed = fixed_directory(posixpath.dirname(path))
            if fixed is not None:
                return fixed, HIGH
    why = f"the script names no backup directory: /backups/{service} is a suggestion"
    return f"/backups/{service}", Sure(Confidence.LOW, (why,))


def _tar(p: Pipeline) -> Found | None:
    words = list(p.words)
    modes = "".join(word.lstrip("-") for word in words[1:] if re.fullmatch(r"-?[A-Za-z]+", word) and
                    not word.startswith("--"))
    archive_word = _archive(p.first)
    if archive_word is None:
        return None
    archive = p.variables.text(archive_word)
    if "x" in modes:
        return _untar(p, archive)
    if "c" not in modes:
        return None  # `tar -tzf`: a listing (a verification)
    written = [p.value(word, Accepts.TEXT) for word in _sources(p.first, archive_word)]
    unknown = next((value.why for value in written if value.text is None), None)
    if not written or unknown is not None:
        return manual(f"tar of paths that are not written out{': ' + unknown if unknown else ''}")
    sources = [value.text for value in written if value.text is not None]
    # Named as its archives are (`images_$DATE.tar.gz`: images), so `tar xzf images_….tar.gz` restores the same one.
    name = _name(archive) or _name(sources[0].rstrip("/"))
    if not name:
        return manual(f"tar: no service name in {archive!r}")
    resolved = p.context.named(name)
    if resolved.service is None:
        return manual(f"tar: {resolved.why}", resolved.why)
    service = resolved.service
    directory, sure = _directory(p.variables, archive, service)
    project = p.context.project or _SLUG.sub("-", p.context.source.rsplit(".", 1)[0].lower()).strip("-")
    paths = []
    for source in sources:
        if source.startswith("/"):
            paths.append(posixpath.normpath(source))
        else:
            paths.append(posixpath.normpath(f"/srv/{project}/{source}"))
            sure = sure.but(Confidence.LOW, f"{source} is relative to where the script ran: give the path where "
                                             "opsbot sees it (mounted)")
    backup: Data = {"type": "directory", "directory": directory, "paths": paths}
    return Found(steps=({"kind": "backup", "service": service},), backups=(BackupFinding(service, backup, sure),),
                 sure=sure)


def _copy(p: Pipeline) -> Found | None:
    """`cp -r /app/config $BACKUP_DIR/`: a directory backup of what is copied into a backup directory."""
    words = list(p.words)
    recursive = any(re.fullmatch(r"-[A-Za-z]*[rRa][A-Za-z]*", word) for word in words[1:]) or "--recursive" in words
    names = [word for word in p.first.argv[1:] if not word.text.startswith("-")]
    if not recursive or len(names) < 2:
        return None
    destination = p.variables.text(names[-1])
    if "backup" not in (names[-1].text + destination).lower():
        return None
    directory = fixed_directory(destination.rstrip("/") + "/x")
    sources = [p.value(word, Accepts.TEXT).text or "" for word in names[:-1]]
    if directory is None or not all(source.startswith("/") for source in sources):
        return manual("a copy into a backup directory of paths that are not written out")
    base = posixpath.basename(directory)
    name = _name(sources[0].rstrip("/")) if base in ("backup", "backups") or not _name(base) else _name(base)
    resolved = p.context.named(name)
    if resolved.service is None:
        return manual(f"a copy into {directory}: {resolved.why}", resolved.why)
    backup: Data = {"type": "directory", "directory": directory, "paths": [posixpath.normpath(s) for s in sources]}
    sure = medium(f"a copy into {directory}: opsbot archives the paths instead (a tar.gz per backup)")
    return Found(steps=({"kind": "backup", "service": resolved.service},),
                 backups=(BackupFinding(resolved.service, backup, sure),), sure=sure)


def _untar(p: Pipeline, archive: str) -> Found | None:
    name = _name(archive)
    resolved = p.context.named(name) if name else None
    if resolved is None or resolved.service is None:
        return None
    return _restore_step(resolved.service, _parameter(p, _archive(p.first)), medium(
        f"tar x of {posixpath.basename(archive)}: the restore of {resolved.service}'s directory backup"))


def _archive(tar: Command) -> Word | None:
    words = tar.words
    for index, word in enumerate(words[1:], 1):
        if word in ("-f", "--file") or (re.fullmatch(r"-?[A-Za-z]*f", word) and not word.startswith("--")):
            return tar.argv[index + 1] if index + 1 < len(words) else None
        if word.startswith("--file="):
            return Word(word.split("=", 1)[1], True)
    return None


def _sources(tar: Command, archive: Word) -> list[Word]:
    found: list[Word] = []
    skip = False
    for word in tar.argv[1:]:
        if skip:
            skip = False
        elif word is archive:
            continue
        elif word.text in ("-C", "--directory", "--exclude", "-X"):
            skip = True
        elif not word.text.startswith("-") and not re.fullmatch(r"[A-Za-z]*[cx][A-Za-z]*", word.text):
            found.append(word)
    return found


def _name(path: str) -> str:
    """`$BACKUP_DIR/config_$DATE.tar.gz` → config, `generated_images/` → generated-images."""
    base = posixpath.basename(path.rstrip("/"))
    base = _ARCHIVE.sub("", base)
    base = _STAMP.sub("", base)
    base = _BACKUP_WORD.sub("", base.lower())
    return _SLUG.sub("-", base).strip("-")[:60].strip("-")


def _retention(p: Pipeline) -> Found | None:
    words = list(p.words)
    deletes = "-delete" in words or ("-exec" in words and "rm" in words)
    age = option(words, "-mtime")
    if not deletes or age is None:
        return None
    days = (p.text(age) or "").lstrip("+")
    start = positionals(words[1:2])
    directory = (p.text(start[0]) or "") if start else ""
    if not days.isdigit() or not directory.startswith("/"):
        return manual("find … -delete: the directory or the age is not written out")
    return Found(retention=(RetentionFinding(posixpath.normpath(directory), int(days)),))


def _restore(p: Pipeline) -> Found | None:
    """`psql db < dump`, `gunzip -c f | psql …`, `pg_restore -d db f`: the database put back from a backup file."""
    last = p.commands[-1] if p.rest else p.first
    client = p.alone(last) if p.rest else p
    engine = _CLIENTS.get(client.program) or ("postgres" if client.program == "pg_restore" else None)
    if engine is None:
        return None
    fed = bool(p.rest) and all(command.program in _DECOMPRESS for command in p.commands[:-1]) and client is not p
    redirected = p.statement.redirect_in and not p.statement.heredoc
    if not (client.program == "pg_restore" or fed or redirected):
        return None
    if client.program in ("psql", "mysql", "mariadb") and option(list(client.words), "-c", "-e", "--command",
                                                                "--execute") is not None:
        return None
    resolved = client.engine_service()
    if resolved.service is None:
        return manual(f"restore: {resolved.why}", resolved.why, targets=client.target_hints())
    source = p.first.argv[-1] if fed else (client.first.argv[-1] if client.program == "pg_restore" else None)
    read = p.variables.text(source) if source is not None else p.statement.input
    if client.program != "pg_restore" and not _backup_like(p, source, read):
        # `psql < migrations/0042.sql` runs the SQL in that file: a restore would put the whole database back
        return manual(f"feeds {read or 'its input'} into {client.program}, which is no backup: it runs the SQL "
                      "in it, and no step kind does that; a person runs it", targets=client.target_hints())
    sure = HIGH if not resolved.why else medium(resolved.why)
    found = _restore_step(resolved.service, _parameter(p, source), sure)
    return Found(steps=found.steps, parameters=found.parameters, targets=client.target_hints(), sure=found.sure,
                 decisions=((f"opsbot restores {resolved.service} from one of its own backups (a safety backup "
                             "first): the file the script reads is not used"),))


def _backup_like(p: Pipeline, source: Word | None, read: str) -> bool:
    """The file a client reads is a backup: named or kept like one (`latest_backup.sql`, `/backups/…`, a compressed
    dump), or given in a variable named so (`$DUMP`, `$BACKUP_FILE`)."""
    name = p.variables.whole(source) if source is not None else None
    if name is not None and _BACKUP_NAME.search(name):
        return True
    path = read.lower()
    return bool(_BACKUP_NAME.search(path) or _COMPRESSED.search(path) or any(
        path.startswith(directory.lower() + "/") for directory in p.context.backup_directories))


def _parameter(p: Pipeline, source: Word | None) -> str:
    """The backup parameter's name: the script's own argument (`BACKUP_FILE="$1"`) when it reads that one."""
    name = p.variables.whole(source) if source is not None else None
    if name is not None and (name in p.variables.arguments or name.isdigit()):
        return parameter_name(name) if not name.isdigit() else "backup"
    return "backup"


def _restore_step(service: str, parameter: str, sure: Sure) -> Found:
    return Found(steps=({"kind": "restore", "service": service, "backup": f"{{{{ params.{parameter} }}}}"},),
                 parameters={parameter: {"type": "backup", "service": service,
                                         "description": f"the backup of {service} to restore"}},
                 sure=sure)

