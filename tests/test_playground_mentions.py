"""What the stand-in does to a typed `@name`, as Slack does: ids in messages, ids with names in escaped commands."""

from __future__ import annotations

from pathlib import Path

from playground.mentions import escape_mentions, escaped_commands
from playground.workspace import Workspace

USERS = Workspace().users


def test_a_typed_name_becomes_the_persons_id_in_a_message() -> None:
    assert escape_mentions("@Bob can you look? @carol too", USERS, with_name=False) == "<@U0BOB> can you look? <@U0CAROL> too"


def test_an_escaped_command_carries_the_id_and_the_username() -> None:
    assert escape_mentions("role @Bob commander", USERS, with_name=True) == "role <@U0BOB|bob> commander"


def test_first_names_and_the_bot_are_known_and_a_trailing_dot_is_not_part_of_the_name() -> None:
    assert escape_mentions("thanks @Alice. @opsbot help", USERS, with_name=False) == "thanks <@U0ALICE>. <@UBOT0001> help"


def test_unknown_names_addresses_and_existing_mentions_stay_as_typed() -> None:
    text = "@nobody mail bob@example.com <@U0BOB> @here"
    assert escape_mentions(text, USERS, with_name=False) == text


def test_the_manifest_says_which_commands_slack_escapes(tmp_path: Path) -> None:
    assert escaped_commands() == frozenset({"/incident"})
    manifest = tmp_path / "manifest.yml"
    manifest.write_text("features:\n  slash_commands:\n    - {command: /a, should_escape: true}\n    - {command: /b}\n")
    assert escaped_commands(manifest) == frozenset({"/a"})
    assert escaped_commands(tmp_path / "missing.yml") == frozenset()
