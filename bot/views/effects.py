"""A failed step's effect on its target, in words: the one place `Effect` becomes text, for Slack and other fronts.

Plain text, no Slack markup; the engine decides on the value (`bot.runs.effects`), never on these words.
"""

from __future__ import annotations

from bot.executors.base import Effect

_WORDS = {
    Effect.UNTOUCHED: "it changed nothing",
    Effect.CHANGED: "it changed its target",
    Effect.UNKNOWN: "what it did is unknown: look before acting",
}


def effect_text(effect: Effect) -> str:
    return _WORDS[effect]
