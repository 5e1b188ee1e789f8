"""Requests as Slack sends them: form-encoded commands, interactive payloads, event callbacks, all signed.

Signing follows Slack's documented scheme (v0 HMAC-SHA256 over `v0:<timestamp>:<body>`), written here
independently of the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def sign(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_command(command: str, text: str, *, user: str, channel: str, response_url: str,
                  trigger_id: str | None = None) -> tuple[str, str]:
    body = urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": "T0001",
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "ops",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or f"{uuid.uuid4().int % 10**12}.1.{uuid.uuid4().hex[:8]}",
        }
    )
    return body, "application/x-www-form-urlencoded"


def block_action(action_id: str, value: str, *, user: str, channel: str, response_url: str, message_ts: str = "1700000000.000100",
                 trigger_id: str | None = None, element_type: str = "button", chosen: dict[str, Any]
                 | None = None) -> tuple[str, str]:
    """A click on a message: a button (`value`), or a menu, picker or select (`chosen`, e.g. selected_option)."""
    action: dict[str, Any] = {"type": element_type, "action_id": action_id, "block_id": "health.actions",
                              "action_ts": f"{time.time():.6f}"}
    action.update(chosen or {"value": value, "text": {"type": "plain_text", "text": "Re-run"}})
    payload = {
        "type": "block_actions",
        "team": {"id": "T0001", "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": trigger_id or f"{uuid.uuid4().int % 10**12}.1.{uuid.uuid4().hex[:8]}",
        "channel": {"id": channel, "name": "ops"},
        "message": {"type": "message", "ts": message_ts, "text": "", "blocks": []},
        "response_url": response_url,
        "actions": [action],
    }
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


def event_callback(event: dict[str, Any], *, event_id: str | None = None) -> tuple[str, str]:
    body = {
        "token": "legacy-verification-token",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0001", "user_id": "UBOT0001", "is_bot": True}],
    }
    return json.dumps(body), "application/json"


def view_submission(callback_id: str, values: dict[str, dict[str, Any]], *, user: str,
                    private_metadata: str = "") -> tuple[str, str]:
    """A modal's submission; `values` is {block_id: {action_id: {"type": …, "value": …}}} as Slack sends it."""
    payload = {
        "type": "view_submission",
        "team": {"id": "T0001", "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.1.{uuid.uuid4().hex[:8]}",
        "view": {
            "id": "V0001",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": values},
            "hash": "1700000000.abcdef",
        },
        "response_urls": [],
    }
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
