"""The create request that rebuilds a container as it was set up (on another image, or as a copy under another
name): what the container was given is kept, what it got from its image is left for the image to give.

Not responsible for talking to Docker (`bot.executors.docker_session`) nor for when a container is rebuilt.
"""

from __future__ import annotations

import re
from typing import Any

ANONYMOUS_VOLUME = re.compile(r"[0-9a-f]{64}")  # the name an engine gives a volume nobody named
DEFAULT_NETWORKS = ("bridge", "podman")  # Docker's and podman's default network, which every engine re-adds


def recreate_config(
    attrs: dict[str, Any], old_image: dict[str, Any], image: str, *, same_volumes: bool = True
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The create request that rebuilds a container on `image`, and the extra networks to connect it to.

    What the container got from its old image (command, env, labels, healthcheck…) is left out so the new image
    supplies its own, the way `docker compose up` recreates; what was set on the container itself is kept.
    `same_volumes`: its anonymous volumes are mounted again by name (a replacement); False gives each path a new
    anonymous volume instead (a copy beside it, as Compose gives each replica its own).
    """
    old, host = attrs["Config"], dict(attrs["HostConfig"])
    config = {key: value for key, value in old.items() if key not in ("Hostname", "Image", "Env", "Labels")}
    for key in ("Cmd", "Entrypoint", "Healthcheck", "WorkingDir", "User", "StopSignal", "StopTimeout"):
        if not config.get(key) or config.get(key) == old_image.get(key):
            config.pop(key, None)
    mode = host.get("NetworkMode") or "default"
    if old.get("Hostname") and old["Hostname"] != attrs["Id"][:12] and mode != "host":
        config["Hostname"] = old["Hostname"]
    image_env = set(old_image.get("Env") or [])
    config["Env"] = [e for e in old.get("Env") or [] if e not in image_env and e != f"HOSTNAME={old.get('Hostname')}"]
    image_labels = old_image.get("Labels") or {}
    config["Labels"] = {k: v for k, v in (old.get("Labels") or {}).items() if image_labels.get(k) != v}
    config["Image"] = image

    # podman reports ulimits as RLIMIT_NOFILE but accepts only nofile, as Docker does.
    host["Ulimits"] = [dict(u, Name=u["Name"].lower().removeprefix("rlimit_")) for u in host.get("Ulimits") or []]
    binds = list(host.get("Binds") or [])
    if not same_volumes:
        # podman lists anonymous volumes among the binds: a copy gets the path, on a volume of its own.
        anonymous = [b for b in binds if ANONYMOUS_VOLUME.fullmatch(b.split(":")[0])]
        binds = [b for b in binds if b not in anonymous]
        config["Volumes"] = {**(config.get("Volumes") or {}), **{b.split(":")[1]: {} for b in anonymous}} or None
    covered = {b.split(":")[1] for b in binds if ":" in b} | {m.get("Target") for m in host.get("Mounts") or []}
    for mount in (attrs.get("Mounts") or []) if same_volumes else []:
        # Anonymous volumes would come back empty on a new container: mount the same ones by name.
        if mount.get("Type") == "volume" and mount.get("Name") and mount.get("Destination") not in covered:
            binds.append(f"{mount['Name']}:{mount['Destination']}" + ("" if mount.get("RW", True) else ":ro"))
    host["Binds"] = binds or None
    config["HostConfig"] = host

    networks: dict[str, dict[str, Any]] = {}
    attached = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if mode not in ("host", "none") and not mode.startswith("container:"):
        # Keep user-defined networks (compose's) and their aliases; the engine re-adds the container-id alias.
        # podman reports NetworkMode "bridge" even then, so the attached networks are what count.
        networks = {
            name: {"Aliases": [a for a in settings.get("Aliases") or [] if not attrs["Id"].startswith(a)] or None}
            for name, settings in attached.items()
            if name not in DEFAULT_NETWORKS
        }
        if networks and not any(name in DEFAULT_NETWORKS for name in attached):
            first = mode if mode in networks else next(iter(networks))
            host["NetworkMode"] = first
            config["NetworkingConfig"] = {"EndpointsConfig": {first: networks.pop(first)}}
    return config, networks
