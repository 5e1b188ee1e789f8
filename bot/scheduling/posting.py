"""Posting exactly once: a scheduled message carries an idempotency key, so a retry never makes a second one.

Not responsible for what is posted (bot/digests.py, bot/views/) nor for retries (the scheduler).
"""

from __future__ import annotations

from datetime import timedelta

from bot.context import Context
from bot.views import Message

# How far before the recorded intent to look for the message: the intent is written before the post, but
# two hosts' clocks may disagree a little.
_CLOCK_SLACK = timedelta(minutes=2)


async def post_once(ctx: Context, key: str, channel: str, message: Message) -> tuple[str, bool]:
    """Post `message` unless a message with `key` was already posted; returns (ts, posted now).

    The intent is stored before the post and the ts after it. An attempt that died between the two left an
    intent without a ts: the channel's history (the key rides in the message's metadata) tells whether that
    post landed, so the retry does not post it twice.
    """
    record = await ctx.store.begin_post(key, channel, ctx.clock.now())
    if record.ts is not None:
        return record.ts, False
    if not record.new:
        found = await ctx.chat.find_posted(channel, key, oldest=(record.created_at - _CLOCK_SLACK).timestamp())
        if found is not None:
            await ctx.store.set_posted(key, found)
            return found, False
    ts = await ctx.chat.post(channel, message, key=key)
    await ctx.store.set_posted(key, ts)
    return ts, True
