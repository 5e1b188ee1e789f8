"""Commands that act on a service, as runbook steps: `docker compose restart svc` / `kubectl rollout restart` →
restart, `rollout undo` → rollback, `set image` / `compose up` after a pull → deploy, `scale`, `logs` →
collect-logs, `psql -c` → query or sql, `sleep` → wait, `curl -X POST` → http, a command in a container → exec.

Not responsible for checks (`checks`) nor backups (`backups`); a command no kind does is a manual step, with why.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from bot.importing import sql
from bot.importing.argv import (
    COMPOSE_GLOBAL,
    CURL_DATA,
    CURL_OTHER_BODY,
    KUBECTL_VALUE,
    minutes,
    option,
    positionals,
    sql_sources,
)
from bot.importing.model import (
    HIGH,
    STACK,
    CheckFinding,
    Found,
    ServicePart,
    Step,
    Sure,
    TargetHint,
    low,
    manual,
    medium,
)
from bot.importing.pipeline import Pipeline, env_name, stack_target, target_hint
from bot.importing.read_only import read_only
from bot.importing.shell import Command
from bot.importing.variables import Accepts, parameter_name, secret
from bot.importing.words import Word

# A session a person types into: a shell or interpreter given no script, a database client given no statement.
_INTERPRETERS = frozenset({"sh", "bash", "ash", "zsh", "python", "python3", "node", "irb", "ruby", "perl", "php"})
_CLIENTS = frozenset({"psql", "mysql", "mariadb", "mongo", "mongosh", "redis-cli", "sqlite3"})
_SCREENS = frozenset({"vi", "vim", "nano", "less", "more", "top", "htop", "watch", "tail"})
_OUTPUT_VIEWS = frozenset({"head", "tail", "less", "more", "cat", "grep", "wc", "sort", "uniq", "cut", "awk", "jq"})
_KINDS = frozenset({"deployment", "deployments", "deploy", "statefulset", "statefulsets", "sts", "daemonset",
                    "daemonsets", "ds", "pod", "pods", "po", "service", "services", "svc"})
_ON = frozenset({"true", "on", "1", "yes", "enabled"})
_OFF = frozenset({"false", "off", "0", "no", "disabled"})
_VERSION_NAME = re.compile(r"version|tag|release|image", re.IGNORECASE)


def recognise(p: Pipeline) -> Found:
    program = p.first.program  # the wrapper's own program when it runs nothing inside
    outer = p.statement.commands[0] if p.statement.commands else p.first
    if p.inside is not None:
        return _tool(p, inside=True)
    if outer.program in ("docker", "podman") and len(outer.words) > 1 and outer.words[1] == "compose":
        return _compose(p, outer.words[2:])
    if outer.program == "docker-compose":
        return _compose(p, outer.words[1:])
    if program in ("docker", "podman"):
        return _docker(p, outer.words[1:])
    if program == "kubectl":
        return _kubectl(p, outer.words[1:])
    return _tool(p, inside=False)


def _per_service(p: Pipeline, kind: str, names: list[str], platform: str, namespace: str | None = None,
                 **extra: Any) -> Found:
    names = [p.text(name) or name for name in names if name]  # `deploy/$APP`: the script's APP
    if not names:
        return manual(f"{kind} of every service at once: name the services (one step each)")
    if namespace is not None and p.namespace(namespace) is None:
        return manual(f"{kind}: the namespace {namespace} is not written out")
    namespace = p.namespace(namespace)
    steps: list[Step] = []
    hints: list[TargetHint] = []
    decisions: list[str] = []
    for name in names:
        resolved = p.context.named(name)
        if resolved.service is None:
            return manual(f"{kind}: {resolved.why}", resolved.why)
        if resolved.why:
            decisions.append(resolved.why)
        steps.append({"kind": kind, "service": resolved.service, **extra})
        hints.append(target_hint(platform, name, resolved.service, p.context, namespace))
    return Found(tuple(steps), decisions=tuple(decisions), targets=tuple(hints))


def _compose(p: Pipeline, words: tuple[str, ...]) -> Found:
    rest = list(words)
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in COMPOSE_GLOBAL else rest[1:]
    if not rest:
        return manual("docker compose without a subcommand")
    verb = rest[0]
    args = positionals(rest[1:], frozenset({"-t", "--timeout", "--since", "--tail", "-n", "--scale"}))
    if verb in ("restart", "stop", "start"):
        return _per_service(p, verb, args, "compose") if args else _stack(p, verb)
    if verb == "logs":
        return _logs(p, args, rest[1:], "compose")
    if verb == "up" and ("-d" in rest[1:] or "--detach" in rest[1:]):
        return _up(p, args, rest[1:])
    if verb == "pull":
        p.variables.pulled.update(args or ["*"])
        return Found(consumed="pulls new images: the deploy step after it pulls the tag it deploys",
                     decisions=(("compose pulls what its file names; opsbot's deploy step pulls the tag given when "
                                 "the runbook runs"),))
    if verb == "build":
        return manual(f"docker compose {verb}: the image a deploy starts comes from a registry in opsbot's deploy "
                      "step (`{kind: deploy, image: …}`), not from the compose file",
                      "make the image tag a parameter of a deploy step")
    return manual(f"docker compose {verb}: no step kind does this")


def _stack(p: Pipeline, verb: str) -> Found:
    stack = stack_target(p.context)
    return Found(({"kind": verb, "service": STACK},), targets=(stack,), sure=stack.sure)


def _up(p: Pipeline, names: list[str], options: list[str]) -> Found:
    """`compose up -d svc`: a deploy when the script deploys a version it is given, else a start."""
    if "--scale" in options or any(option.startswith("--scale") for option in options):
        return manual("docker compose up --scale: opsbot scales Docker services only to 0 and back")
    version = next((name for name in p.variables.arguments if _VERSION_NAME.search(name)), None)
    if not names:
        return manual("docker compose up of every service: name the services (one deploy or start step each)")
    pulled = "*" in p.variables.pulled or all(name in p.variables.pulled for name in names)
    if version is not None or pulled:
        parameter = parameter_name(version or "tag")
        found = _per_service(p, "deploy", names, "compose", image=f"{{{{ params.{parameter} }}}}")
        return Found(found.steps, found.manual, found.decisions, {parameter: {
            "type": "image_tag", "description": (f"the image tag to deploy (the script's ${version})" if version
                                                 else "the image tag to deploy (compose pulled its file's)")}},
            targets=found.targets, sure=medium(f"compose up deploys what its file names; opsbot deploys the tag "
                                               f"given as {parameter}"))
    found = _per_service(p, "start", names, "compose")
    return Found(found.steps, found.manual, found.decisions, targets=found.targets,
                 sure=medium("compose up also recreates a container whose image or settings changed; a start step "
                             "only starts it"))


def _logs(p: Pipeline, names: list[str], options: list[str], platform: str, namespace: str | None = None) -> Found:
    extra: dict[str, Any] = {}
    since = minutes(p.text(option(options, "--since")))  # `--since "$WINDOW"`: the value the script set
    if since is not None:
        extra["minutes"] = since
    if any(command.program not in _OUTPUT_VIEWS for command in p.rest) or (p.rest and "-f" in options):
        return manual("the logs go through a pipeline only a person follows")
    if not names and platform == "compose":
        found = _stack(p, "collect-logs")
        return Found(({**found.steps[0], **extra},), targets=found.targets, sure=found.sure)
    if len(names) != 1:
        return manual("logs of several services or none: name one")
    return _per_service(p, "collect-logs", names, platform, namespace, **extra)


def _docker(p: Pipeline, words: tuple[str, ...]) -> Found:
    if not words:
        return manual("docker without a subcommand")
    verb, rest = words[0], words[1:]
    if verb == "container" and rest:
        verb, rest = rest[0], rest[1:]
    if verb in ("restart", "stop", "start"):
        return _per_service(p, verb, positionals(rest, frozenset({"-t", "--time"})), "docker")
    if verb == "logs":
        return _logs(p, positionals(rest, frozenset({"--since", "--tail", "-n", "--until"})), list(rest), "docker")
    return manual(f"docker {verb}: no step kind does this")


def _kubectl(p: Pipeline, words: tuple[str, ...]) -> Found:
    args = positionals(words, KUBECTL_VALUE)
    namespace = option(words, "-n", "--namespace")
    if not args:
        return manual("kubectl without a subcommand")
    verb = args[0]
    if verb == "rollout" and len(args) >= 3:
        name = _resource(args[2:])
        if args[1] == "restart":
            return _per_service(p, "restart", [name], "kubectl", namespace)
        if args[1] == "undo":
            written = option(words, "--to-revision")
            revision = p.value(written, Accepts.TEMPLATE, hint="revision") if written else None
            if revision is not None and revision.value is None:
                return manual(f"kubectl rollout undo --to-revision: {revision.why}")
            extra = {"to": revision.value} if revision is not None else {}
            return _with(_per_service(p, "rollback", [name], "kubectl", namespace, **extra),
                         revision.parameters if revision is not None else {})
        if args[1] == "status":
            found = _per_service(p, "check", [name], "kubectl", namespace)
            if found.manual is None:  # a gate on the deployment's pods: the kubernetes-pods check
                checks = tuple(CheckFinding(step["service"], {"type": "kubernetes-pods", "name": "pods"},
                                            ("kubernetes-pods",)) for step in found.steps)
                steps = tuple({**step, "checks": ["pods"]} for step in found.steps)
                return Found(steps, decisions=found.decisions, targets=found.targets, checks=checks)
            return found
    if verb == "scale" and len(args) >= 2:
        written = option(words, "--replicas")
        if written is None:
            return manual("kubectl scale without --replicas: how many is a person's to say")
        replicas = p.value(written, Accepts.NUMBER, hint="replicas")
        if replicas.value is None:
            return manual(f"kubectl scale --replicas: {replicas.why}")
        return _with(_per_service(p, "scale", [_resource(args[1:])], "kubectl", namespace, replicas=replicas.value),
                     replicas.parameters)
    if verb == "set" and len(args) >= 4 and args[1] == "image":
        return _set_image(p, _resource(args[2:]), p.word(args[3]), namespace)
    if verb == "patch" and len(args) >= 2:
        return _patch(p, args[1:], option(words, "-p", "--patch"), namespace)
    if verb == "logs" and len(args) >= 2:
        return _logs(p, [_resource(args[1:])], list(words), "kubectl", namespace)
    if verb == "logs":
        selector = option(words, "-l", "--selector")
        if selector and "=" in selector:
            return _logs(p, [selector.split("=", 1)[1]], list(words), "kubectl", namespace)
    return manual(f"kubectl {verb}: no step kind does this")


def _set_image(p: Pipeline, resource: str, word: Word, namespace: str | None) -> Found:
    """`kubectl set image deploy/app app=registry/app:$VERSION`: a deploy of that image, its tag a parameter."""
    first = word.pieces[0]
    if not isinstance(first, str) or "=" not in first:
        return manual("kubectl set image: the container=image pair is not written out")
    image_word = word.after(first.split("=", 1)[0] + "=")
    image = p.value(image_word, Accepts.TEMPLATE, hint="tag", image=True) if image_word is not None else None
    if image is None or image.text is None:
        return manual(f"kubectl set image: {image.why if image is not None else 'no image'}")
    sure = HIGH if not re.search(r"(new|your|my)-?image|:tag$|<", image.text) else low(
        f"{image.text} looks like a placeholder: make the tag a parameter")
    found = _per_service(p, "deploy", [resource], "kubectl", namespace, image=image.text)
    return _with(Found(found.steps, found.manual, found.decisions, targets=found.targets, sure=sure), image.parameters)


def _with(found: Found, parameters: dict[str, Any]) -> Found:
    """The steps and the runbook parameters their values use (none when the steps became a manual step)."""
    return found if found.manual is not None or not parameters else replace(found, parameters=parameters)


def _patch(p: Pipeline, args: list[str], patch: str | None, namespace: str | None) -> Found:
    """`kubectl patch configmap X -p '{"data":{"maintenance_mode":"true"}}'` → maintenance on/off;
    `kubectl patch deployment X -p '{…"image":"app:2.1"…}'` → deploy."""
    kind, _, name = (args[0].partition("/") if "/" in args[0] else (args[0], "/", args[1] if len(args) > 1 else ""))
    if patch is not None and not p.word(patch).literal:
        return manual("kubectl patch with a patch that is not written out (it holds a shell expansion)")
    try:
        body = json.loads(patch or "")
    except ValueError:
        return manual("kubectl patch with a patch that is not JSON")
    if kind in ("configmap", "configmaps", "cm") and isinstance(body, dict) and isinstance(body.get("data"), dict):
        return _maintenance(p, name, body["data"])
    images = re.findall(r'"image":\s*"([^"]+)"', patch or "")
    if kind in ("deployment", "deployments", "deploy") and len(images) == 1:
        image = p.value(Word(images[0], True), Accepts.TEMPLATE)
        if image.text is None:
            return manual(f"kubectl patch: the image {image.why}")
        return _per_service(p, "deploy", [name], "kubectl", namespace, image=image.text)
    return manual(f"kubectl patch {kind}: no step kind does this")


def _maintenance(p: Pipeline, configmap: str, data: dict[str, Any]) -> Found:
    if len(data) != 1:
        return manual("a ConfigMap patch of several keys: no step kind does this")
    key, value = next(iter(data.items()))
    if not re.search(r"maint", key, re.IGNORECASE) or str(value).lower() not in _ON | _OFF:
        return manual(f"sets {key} in ConfigMap {configmap}: no step kind does this")
    named, written = p.text(configmap), p.value(Word(key, True), Accepts.TEXT)
    if named is None or written.text is None:
        return manual(f"ConfigMap {configmap}: its name or key is not written out")
    configmap = named
    owner = next((name for name in p.context.named_services if set(re.split(r"[-_]", name)) &
                  set(re.split(r"[-_]", configmap)) - {"config", "cm", "settings"}), None) or p.context.app
    if owner is None:
        return manual(f"ConfigMap {configmap}: no service of the runbook is its owner")
    on = str(value).lower() in _ON
    setting: dict[str, Any] = {"type": "configmap", "configmap": configmap, "key": key}
    setting["on_value" if on else "off_value"] = str(value)
    part = ServicePart(owner, "maintenance", setting, medium(f"ConfigMap {configmap} taken as {owner}'s"))
    return Found(({"kind": "maintenance", "service": owner, "mode": "on" if on else "off"},), parts=(part,),
                 sure=part.sure)


def _resource(args: list[str]) -> str:
    """`deployment/x`, or `deployment x`: the name ("" for a kind alone: `kubectl scale deployment --all`)."""
    if "/" in args[0]:
        return args[0]
    if len(args) < 2:
        return "" if args[0] in _KINDS else args[0]
    return args[1]


def _tool(p: Pipeline, *, inside: bool) -> Found:
    """A program run on a host, or inside a container: a kind when one does what it does, else exec or manual."""
    command, words, program = p.first, list(p.words), p.program
    if p.rest and not all(c.program in _OUTPUT_VIEWS for c in p.rest):
        return manual(f"its output goes through `{' | '.join(c.program for c in p.rest)}`: the pipeline as a whole is "
                      "a person's to follow")
    if program in ("psql", "mysql", "mariadb"):
        found = _statement(p)
        if found is not None:
            return found
    if program == "sleep" and len(words) == 2 and not inside:
        seconds = p.value(command.argv[1], Accepts.NUMBER, hint="seconds")
        if seconds.value is None:
            return manual(f"sleep: {seconds.why}")
        return Found(({"kind": "wait", "seconds": seconds.value},), parameters=seconds.parameters)
    if program == "curl" and not inside:
        return _curl(p)
    if not inside or p.inside is None:
        return manual(f"`{program}` on a host: no step kind runs it (an exec step runs commands in containers)")
    where = p.where()
    if where is None or where.service is None:
        return manual(f"{program}: {where.why if where else 'no container'}")
    if _session(command, p.statement.redirect_in):
        return Found(manual=f"an interactive {program} session: a person types into it", session=True,
                     targets=p.target_hints())
    if program in _SCREENS or (program in ("mysql", "mariadb") and "-p" in words):
        return manual(f"{program} waits for a person (a screen, a follow, or a password prompt)",
                      targets=p.target_hints())
    if p.inside.runs_with:
        return manual(f"{p.inside.platform} exec {' '.join(p.inside.runs_with)}: an exec step runs it as the "
                      "container's own user, in its working directory, with its environment, so it would run "
                      "something else", targets=p.target_hints())
    argv, parameters, why = p.argv(command)
    if argv is None:
        return manual(f"an exec step's argv: {why}", targets=p.target_hints())
    step: Step = {"kind": "exec", "service": where.service, "command": argv}
    if p.inside.container:
        container = p.text(p.inside.container)
        if container is None:
            return manual(f"the container {p.inside.container} is not written out", targets=p.target_hints())
        step["container"] = container
    if read_only(program, words):
        step["read_only"] = True
    return Found((step,), parameters=parameters, targets=p.target_hints(),
                 decisions=(where.why,) if where.why else ())


def _session(command: Command, fed: bool) -> bool:
    words = list(command.words)
    program = command.program
    if program in _INTERPRETERS:
        return not positionals(words[1:]) and not any(option(words, flag) is not None for flag in ("-c", "-m", "-e"))
    if program in _CLIENTS:
        scripted = any(option(words, flag) is not None for flag in ("-c", "-e", "-f", "--command", "--execute",
                                                                     "--eval"))
        if program == "redis-cli":  # only connection options: the prompt (`--bigkeys` and the like run and end)
            connection = frozenset({"-h", "-p", "-a", "-n", "-u", "--user", "--pass", "--tls", "-c"})
            rest = [word for word in words[1:] if word.startswith("-") and word not in connection]
            return not positionals(words[1:], connection - {"--tls", "-c"}) and not rest and not fed
        return not scripted and not fed
    return False


def _statement(p: Pipeline) -> Found | None:
    engine = "postgres" if p.program == "psql" else "mysql"
    words = list(p.words)
    text = option(words, "-c", "--command") if engine == "postgres" else option(words, "-e", "--execute")
    if text is None:
        return None
    if sql_sources(p.program, p.words) > 1:  # a step runs one statement: the first alone would drop the others
        return manual(f"{p.program} is given several statements (or a file of them): a step runs one; a person "
                      "runs these")
    resolved = p.engine_service()
    if resolved.service is None:
        return manual(f"{p.program}: {resolved.why}", resolved.why)
    if not p.first.literal and not _only_secrets(p.first):
        return manual(f"{p.program}: the statement is not written out (it holds a shell variable)")
    written = p.value(text, Accepts.TEXT)
    if written.text is None:
        return manual(f"{p.program}: {written.why}")
    decisions = ((f"{p.program} asks for a password here; the step connects with {env_name(resolved.service)} "
                  "instead"),) if engine == "mysql" and "-p" in words else ()
    step: Step = sql.step_of(" ".join(text.split()) if sql.SIDE_EFFECTS.search(text) else text.strip(),
                             resolved.service, engine)
    sure: Sure = HIGH if not resolved.why else medium(resolved.why)
    return Found((step,), targets=p.target_hints(), sure=sure, decisions=decisions)


def _only_secrets(command: Command) -> bool:
    """Every expansion in the argv reads a secret (`-p"$DB_PASSWORD"`): the catalog's DSN holds it instead."""
    return all(word.literal or (word.variables and all(secret(name) for name in word.variables))
               for word in command.argv)


def _curl(p: Pipeline) -> Found:
    words = list(p.words)
    urls = [p.variables.text(word) for word in p.first.argv[1:]
            if p.variables.text(word).startswith(("http://", "https://", "$"))]
    if len(urls) != 1:
        return manual("curl without one URL")
    target: dict[str, Any]
    word = next(word for word in p.first.argv[1:] if p.variables.text(word) == urls[0])
    whole = p.variables.whole(word)
    url = p.value(word, Accepts.TEXT)
    if whole is not None:  # a URL kept in a variable (a webhook's) is the environment's, not the catalog's
        target = {"url_env": whole}
    elif url.text is None:
        return manual(f"curl of a URL that is not written out: {url.why}")
    else:
        target = {"url": quote(url.text, safe=":/?&=%#[]@!'()*+,;~")}
    sent = next((name for name in CURL_OTHER_BODY if option(words, name) is not None), None)
    if sent is not None:
        return manual(f"curl {sent} sends a form, a file or URL-encoded data: an http step sends JSON only")
    method = (option(words, "-X", "--request") or "").upper()
    body_word = _body(p.first)
    method = method or ("POST" if body_word is not None else "GET")
    if method not in ("POST", "PUT", "PATCH", "GET", "DELETE"):
        return manual(f"curl -X {method}: not a method an http step sends")
    step: Step = {"kind": "http", "method": method, **target}
    if body_word is not None:
        body = p.value(body_word, Accepts.TEXT)
        if not body_word.literal or body.text is None:
            return manual(f"curl with a body that is not written out: {body.why or 'it holds a shell expansion'}")
        try:
            parsed = json.loads(body_word.text)
        except ValueError:
            return manual("curl with a body that is not JSON")
        if not isinstance(parsed, dict) or not all(isinstance(v, str | int | float | bool) for v in parsed.values()):
            return manual("curl with a JSON body an http step cannot send (nested objects)")
        step["json"] = parsed
    decisions = (f"the URL is in ${whole}: the step reads it from that environment variable",) if whole else ()
    return Found((step,), decisions=decisions)


def _body(command: Command) -> Word | None:
    for index, word in enumerate(command.argv[:-1]):
        if word.text in CURL_DATA:
            return command.argv[index + 1]
        if word.literal and word.text.startswith("-d") and len(word.text) > 2:
            return Word(word.text[2:], True)
    return None
