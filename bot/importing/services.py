"""Which catalog service a name in a command means: a container, pod, deployment, compose service or host.

Not responsible for defining services (the draft does); with no services given, a name is taken as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_KIND_PREFIX = re.compile(r"^(deployment|deploy|statefulset|sts|daemonset|ds|pod|po|svc|service)s?[./]", re.IGNORECASE)
_ORDINAL = re.compile(r"-\d+$")  # postgres-0, gitte-app-1
_CATALOG_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_RESERVED = frozenset({"all", "help"})  # words `/ops health …` reads itself


@dataclass(frozen=True)
class Resolved:
    service: str | None  # None: a person decides
    why: str = ""  # when None, or when taken as written


@dataclass(frozen=True)
class Services:
    known: tuple[str, ...]  # from --service; empty: every name found is taken as a service to define

    def resolve(self, name: str) -> Resolved:
        if not name or name.startswith("-") or "$" in name:
            return Resolved(None, f"the service is not written out ({name or 'none'})")
        written = _KIND_PREFIX.sub("", name.split(":")[0].split(".")[0]).lower()
        bare = _ORDINAL.sub("", written)  # a pod's name (postgres-0): a guess, said
        if not self.known:
            if _CATALOG_NAME.match(bare) and bare not in _RESERVED:
                return Resolved(bare, "" if bare == written else f"service {bare!r} taken from {name!r}")
            return Resolved(None, f"{name!r} is not a service name")
        if bare in self.known:
            return Resolved(bare)
        parts = re.split(r"[-_]", bare)
        matches = [service for service in self.known
                   if _contains(parts, re.split(r"[-_]", service))]
        if len(matches) == 1:
            return Resolved(matches[0])
        if matches:
            return Resolved(None, f"{name!r} could be any of {', '.join(sorted(matches))}")
        return Resolved(None, f"unknown service {name!r} (not among --service {', '.join(self.known)})")


def _contains(parts: list[str], wanted: list[str]) -> bool:
    size = len(wanted)
    return any(parts[start:start + size] == wanted for start in range(len(parts) - size + 1))
