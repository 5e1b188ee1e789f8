"""Who may post alerts: the bearer token (`OPSBOT_ALERTS_TOKEN`), or for Grafana its HMAC-SHA256 signature made with
that same token as the secret. Every comparison is constant-time. Not responsible for reading the body (intake.py).

Grafana (11.6+, contact point → Webhook → HMAC Signature) signs `<timestamp>:<body>` when a timestamp header is set
and puts the lowercase hex digest, bare, in `X-Grafana-Alerting-Signature`. opsbot requires the timestamp (its
header name, Grafana's documented example, is `X-Grafana-Alerting-Signature-Timestamp`) and accepts it within
5 minutes of its own clock, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import enum
import hashlib
import hmac

SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
TIMESTAMP_HEADER = "X-Grafana-Alerting-Signature-Timestamp"
WINDOW_SECONDS = 300


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    MISSING = "no credentials: send `Authorization: Bearer <OPSBOT_ALERTS_TOKEN>`"
    WRONG = "wrong credentials"
    NO_TIMESTAMP = f"a signed request needs its timestamp header `{TIMESTAMP_HEADER}`"
    STALE = "the signature's timestamp is more than 5 minutes from opsbot's clock"

    @property
    def allowed(self) -> bool:
        return self is Verdict.ALLOWED


def bearer(token: str, authorization: str | None) -> Verdict:
    if not authorization:
        return Verdict.MISSING
    expected = f"Bearer {token}".encode()
    return Verdict.ALLOWED if hmac.compare_digest(expected, authorization.encode()) else Verdict.WRONG


def grafana_signature(token: str, body: bytes, signature: str, timestamp: str | None, now: float) -> Verdict:
    if not timestamp:
        return Verdict.NO_TIMESTAMP
    try:
        sent = int(timestamp.strip())
    except ValueError:
        return Verdict.WRONG
    expected = hmac.new(token.encode(), timestamp.strip().encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return Verdict.WRONG
    # Checked after the signature, so a forged request learns nothing about the clock.
    return Verdict.ALLOWED if abs(now - sent) <= WINDOW_SECONDS else Verdict.STALE


def sign_grafana(token: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Grafana would send (for tests and the playground)."""
    digest = hmac.new(token.encode(), str(timestamp).encode() + b":" + body, hashlib.sha256).hexdigest()
    return {SIGNATURE_HEADER: digest, TIMESTAMP_HEADER: str(timestamp)}
