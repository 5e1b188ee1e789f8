"""opsbot's core: catalog, storage, health checks, views and the outbound Slack port.

Nothing here parses an inbound Slack payload or imports `handlers/`.
"""
