"""The playground's alerts: a "fire an alert" switch per demo service, delivered to the bot's real
`/alerts/alertmanager` endpoint as Alertmanager would (version 4, bearer token), and an Alertmanager stand-in for
the silences the alert message's buttons create and expire. Not responsible for the bot's side (bot/alerts/)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.clock import Clock

_NEVER = "0001-01-01T00:00:00Z"


class AlertRefused(Exception):
    """The bot answered a delivery with an error status."""


@dataclass
class Alerting:
    """What the page's switches fire, and the silences the stand-in holds."""

    clock: Clock
    token: str
    bot_url: str = ""
    alertmanager_url: str = ""  # the stand-in's address, sent as the webhook's externalURL
    firing: dict[str, datetime] = field(default_factory=dict)  # service → when its alert started
    silences: dict[str, dict[str, Any]] = field(default_factory=dict)

    def state(self, services: list[str]) -> dict[str, bool]:
        return {service: service in self.firing for service in services}

    async def switch(self, http: aiohttp.ClientSession, service: str, *, firing: bool) -> None:
        """Fire the service's alert, or resolve it; the bot hears it as Alertmanager's webhook."""
        now = self.clock.now()
        started = self.firing.get(service, now)
        if firing:
            self.firing[service] = started
        else:
            self.firing.pop(service, None)
        body = payload(service, started, None if firing else now, self.alertmanager_url)
        async with http.post(f"{self.bot_url.rstrip('/')}/alerts/alertmanager", json=body,
                             headers={"Authorization": f"Bearer {self.token}"}) as response:
            if response.status != 200:
                raise AlertRefused(f"the bot answered {response.status}: {(await response.text())[:200]}")

    def add_routes(self, app: web.Application) -> None:
        """Alertmanager's silences API, as much of it as opsbot uses."""

        async def create(request: web.Request) -> web.Response:
            body = await request.json()
            silence_id = str(uuid.uuid4())
            self.silences[silence_id] = {**body, "id": silence_id, "status": {"state": "active"}}
            return web.json_response({"silenceID": silence_id})

        async def listed(_: web.Request) -> web.Response:
            return web.json_response(list(self.silences.values()))

        async def expire(request: web.Request) -> web.Response:
            found = self.silences.get(request.match_info["id"])
            if found is None:
                return web.json_response({"error": "silence not found"}, status=404)
            found["status"] = {"state": "expired"}
            return web.json_response({})

        app.router.add_post("/api/v2/silences", create)
        app.router.add_get("/api/v2/silences", listed)
        app.router.add_delete("/api/v2/silence/{id}", expire)


def payload(service: str, started: datetime, ended: datetime | None, external_url: str) -> dict[str, Any]:
    """Alertmanager's webhook (version 4) for the demo service's one alert."""
    labels = {"alertname": "DemoServiceDown", "service": service, "severity": "critical"}
    status = "firing" if ended is None else "resolved"
    alert = {"status": status, "labels": labels,
             "annotations": {"summary": f"{service} is not answering its health check"},
             "startsAt": started.isoformat(), "endsAt": ended.isoformat() if ended else _NEVER,
             "generatorURL": f"{external_url}/#/alerts", "fingerprint": hashlib.sha256(service.encode()).hexdigest()[:16]}
    group = {"alertname": "DemoServiceDown", "service": service}
    return {"version": "4", "groupKey": f'{{}}:{{alertname="DemoServiceDown", service="{service}"}}', "status": status,
            "receiver": "opsbot", "groupLabels": group, "commonLabels": labels, "commonAnnotations": alert["annotations"],
            "externalURL": external_url, "truncatedAlerts": 0, "alerts": [alert]}
