"""The post-mortem as a file: gathered from the store, rendered, and uploaded into the incident channel
(or printed by `opsbot postmortem INC-42`)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.catalog import Catalog
from bot.clock import Clock
from bot.context import Context
from bot.errors import OpsbotError
from bot.ids import parse_id
from bot.incidents.models import Incident
from bot.incidents.postmortem import render_postmortem
from bot.store import Store


async def build(store: Store, catalog: Catalog, clock: Clock, incident: Incident, names: Mapping[str, str] | None = None) -> str:
    entries = await store.entries(incident.id or 0)
    items = await store.action_items(incident.id or 0)
    services = {name: catalog.services[name].environment for name in incident.services if name in catalog.services}
    return render_postmortem(incident, entries, items, catalog.incidents, services=services, now=clock.now(), names=names)


async def people(ctx: Context, incident: Incident) -> dict[str, str]:
    """Display names of everyone the post-mortem mentions: a file shows `@Bob Smith`, not `@U0BOB`."""
    ids = {incident.declared_by, *incident.roles.values()}
    ids |= {e.author for e in await ctx.store.entries(incident.id or 0) if e.author}
    ids |= {i.owner for i in await ctx.store.action_items(incident.id or 0) if i.owner}
    found = {}
    for user in sorted(ids):
        name = await ctx.chat.user_name(user)
        if name:
            found[user] = name
    return found


async def share_postmortem(ctx: Context, incident: Incident, user: str) -> None:
    if not incident.channel_id:
        raise OpsbotError(f"{incident.key} has no channel to share its post-mortem in.")
    text = await build(ctx.store, ctx.catalog, ctx.clock, incident, await people(ctx, incident))
    note = "" if not incident.open else " It is still open: numbers marked ongoing will change."
    await ctx.chat.upload(incident.channel_id, filename=f"{incident.key.lower()}-postmortem.md",
                          title=f"Post-mortem {incident.key}: {incident.title}", content=text,
                          comment=f"📝 Post-mortem draft for {incident.key}, from the timeline (asked by <@{user}>). "
                                  f"Fill in the parts marked _To fill_.{note}")


def parse_key(key: str) -> int:
    number = parse_id(key.upper().removeprefix("INC-"))
    if number is None:
        raise OpsbotError(f"`{key}` is not an incident key (INC-42).")
    return number
