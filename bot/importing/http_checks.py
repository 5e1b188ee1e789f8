"""Commands that probe a service over the network, as checks: `curl -f URL` → http (`| jq .x` compared with a value
→ http-json, `-w %{time_total}` → its latency), a Prometheus `/api/v1/query` → prometheus, `wget --spider` → http,
`nc -z host port` → tcp, `echo stats | nc host 11211` → memcached.

Not responsible for which families exist (`checks` dispatches) nor for limits (`thresholds`).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from bot.importing.argv import CURL_DATA, CURL_OTHER_BODY, flag, option, positionals
from bot.importing.gates import as_found, short
from bot.importing.model import HIGH, CheckFinding, Confidence, Data, Found, Measure, Sure, manual, medium
from bot.importing.pipeline import Pipeline
from bot.importing.services import Resolved
from bot.importing.shell import Command
from bot.importing.variables import SHELL_TEXT, Accepts

_JQ_PATH = re.compile(r"^\.(?P<path>[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*|\[\d+\])*)$")
_PROMETHEUS_SUBJECT = re.compile(r'\b(?:job|service|app|container|deployment)=~?"([a-z0-9][a-z0-9_-]*)"')
_LIMIT = "a limit (`above:` or `below:`) the script does not give"


def curl(p: Pipeline) -> Found | None:
    words = list(p.words)
    method = (option(words, "-X", "--request") or ("HEAD" if flag(words, "-I") or "--head" in words else "GET")).upper()
    if method not in ("GET", "HEAD") or any(option(words, name) is not None
                                            for name in (*CURL_DATA, *CURL_OTHER_BODY)):
        return None  # it sends something: an http step, not a check
    output = option(words, "-o", "--output")
    if output not in (None, "/dev/null"):
        return None  # it downloads a file
    words_ = [word for word in p.first.argv[1:] if p.variables.text(word).startswith(("http://", "https://"))]
    url = p.value(words_[0], Accepts.TEXT).text if len(words_) == 1 else None
    if url is None or " " in url.split("?")[0]:
        return None  # not written out: the curl step says why
    sure = HIGH if flag(words, "-f") or "--fail" in words else medium(
        "curl without -f succeeds on any HTTP status: the check expects 200")
    if "/api/v1/query" in url and "query=" in url:
        return _prometheus(p, url)
    resolved = p.context.for_url(url)
    if resolved.service is None:
        return manual(f"curl {url}: {resolved.why}", resolved.why)
    if resolved.why:
        sure = sure.but(Confidence.MEDIUM, resolved.why)
    decisions = []
    if urlsplit(url).hostname in ("localhost", "127.0.0.1"):
        sure = sure.but(Confidence.MEDIUM, "localhost is the host the script ran on: give the address opsbot reaches")
    headers = [value for value in _values(words, "-H", "--header") if not value.lower().startswith(("accept:",
                                                                                                 "content-type:"))]
    if headers:
        decisions.append(f"curl sends {', '.join(h.split(':')[0] for h in headers)}: give the check `headers_env` "
                         "(header → the environment variable holding its value)")
    path = urlsplit(url).path or "/"
    check: Data = {"type": "http", "name": short(f"http {path}", 80), "url": url}
    if method == "HEAD":
        check["method"] = "HEAD"
    measure: Measure | None = None
    jq = p.later("jq")
    if jq is not None:
        field = _jq_path(jq)
        if field is not None:
            measure = Measure(("fields", field), high_only=False, text=True)
            sure = sure.but(Confidence.MEDIUM, f"jq {field}: the check passes on status 200 until a comparison says "
                                               "what the field must be")
    elif (option(words, "-w", "--write-out") or "").startswith("%{time_total}"):
        measure = Measure(("latency_ms",), scale=1000)
    return as_found(p, CheckFinding(resolved.service, check, ("http", url), sure, measure), *decisions)


def _prometheus(p: Pipeline, url: str) -> Found:
    split = urlsplit(url)
    query = unquote(split.query.split("query=", 1)[1].split("&")[0]).strip()
    if SHELL_TEXT.search(query):
        return manual("a Prometheus query holding `$` or a backtick: a person reads it")
    subject = _PROMETHEUS_SUBJECT.search(query)
    if subject:
        resolved = p.context.named(subject.group(1))
    elif p.context.app is not None:
        resolved = Resolved(p.context.app, f"the query is taken as about the application, {p.context.app}")
    else:
        resolved = p.context.named("prometheus")
    if resolved.service is None:
        return manual(f"a Prometheus query: {resolved.why}", resolved.why)
    check: Data = {"type": "prometheus", "name": short(f"prometheus: {query}", 80),
                   "url": f"{split.scheme}://{split.netloc}/", "query": query}
    sure = medium(resolved.why) if resolved.why else HIGH
    return as_found(p, CheckFinding(resolved.service, check, ("prometheus", query), sure,
                                    Measure(("limits",), high_only=False), complete=False, missing=_LIMIT))


def wget(p: Pipeline) -> Found | None:
    words = list(p.words)
    urls = [p.text(word) or "" for word in words[1:] if p.variables.text(word).startswith(("http://", "https://"))]
    if len(urls) != 1 or not urls[0] or not ("--spider" in words or option(words, "-O") == "-" or "-qO-" in words):
        return None
    resolved = p.context.for_url(urls[0])
    if resolved.service is None:
        return manual(f"wget {urls[0]}: {resolved.why}", resolved.why)
    path = urlsplit(urls[0]).path or "/"
    sure = HIGH if not resolved.why else medium(resolved.why)
    check: Data = {"type": "http", "name": short(f"http {path}", 80), "url": urls[0]}
    return as_found(p, CheckFinding(resolved.service, check, ("http", urls[0]), sure))


def nc(p: Pipeline) -> Found | None:
    words = list(p.words)
    args = positionals(words[1:], frozenset({"-w"}))
    if not flag(words, "-z"):
        return None
    found = _host_port(p, args, "nc -z")
    if found is None or isinstance(found, Found):
        return found
    host, port, service, why = found
    check: Data = {"type": "tcp", "name": short(f"tcp {host}:{port}", 80), "host": host, "port": int(port)}
    sure: Sure = HIGH if not why else medium(why)
    return as_found(p, CheckFinding(service, check, ("tcp", host, port), sure))


def memcached(p: Pipeline) -> Found | None:
    if not p.first.literal or "stats" not in " ".join(p.words[1:]):
        return None
    found = _host_port(p, positionals(list(p.rest[0].words[1:]), frozenset({"-w", "-q"})), "memcached stats")
    if found is None or isinstance(found, Found):
        return found
    host, port, service, why = found
    sure = HIGH if not why else medium(why)
    if host in ("localhost", "127.0.0.1"):
        sure = sure.but(Confidence.MEDIUM, "localhost is the host the script ran on: give the address opsbot reaches")
    check: Data = {"type": "memcached", "name": "memcached", "address": f"{host}:{port}"}
    return as_found(p, CheckFinding(service, check, ("memcached",), sure))


def _host_port(p: Pipeline, args: list[str], what: str) -> tuple[str, str, str, str] | Found | None:
    """`nc HOST PORT`'s two arguments, the service they reach and why that one (empty: sure); a manual step when
    none does; None when they are not a host and a port the script spells out."""
    if len(args) != 2:
        return None
    host, port = p.text(args[0]), p.text(args[1])
    if host is None or port is None or not port.isdigit():
        return None
    resolved = p.context.for_url(f"tcp://{host}:{port}")
    if resolved.service is None:
        return manual(f"{what}: {resolved.why}", resolved.why)
    return host, port, resolved.service, resolved.why


def _values(words: list[str], *names: str) -> list[str]:
    return [words[index + 1] for index, word in enumerate(words[:-1]) if word in names]


def _jq_path(jq: Command) -> str | None:
    filters = [word for word in jq.words[1:] if not word.startswith("-")]
    match = _JQ_PATH.match(filters[0]) if filters else None
    if match is None:
        return None
    return re.sub(r"\[(\d+)\]", r".\1", match["path"])
