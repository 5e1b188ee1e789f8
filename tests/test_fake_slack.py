"""Tests of the fake Slack itself: the methods the incidents feature uses, driven through the real slack_sdk client.

Each test pins down one Slack rule the fake must mirror; the bot's own behaviour is tested elsewhere.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from playground.slack_api import BOT_USER, INCIDENTS, OPS, FakeSlack
from playground.workspace import new_channel

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.api_url)


async def refused(call: Any) -> dict[str, Any]:
    """The body of the `ok: false` answer the awaited call got."""
    with pytest.raises(SlackApiError) as failure:
        await call
    return dict(failure.value.response.data)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# --- channels ------------------------------------------------------------------------------------------


def test_ops_and_incidents_exist_with_the_bot_in_them(slack: FakeSlack) -> None:
    assert {cid: c["name"] for cid, c in slack.channels.items()} == {OPS: "ops", INCIDENTS: "incidents"}
    assert all(BOT_USER in c["members"] for c in slack.channels.values())


async def test_created_channel_is_registered_with_the_bot_as_its_only_member(slack: FakeSlack, client: AsyncWebClient) -> None:
    response = await client.conversations_create(name="inc-42-db_down", is_private=True)
    channel = response["channel"]
    assert channel["name"] == "inc-42-db_down" and channel["is_channel"] and channel["is_private"]
    assert channel["creator"] == BOT_USER and channel["created"] > 0
    assert slack.channels[channel["id"]]["members"] == {BOT_USER}
    assert slack.channels[channel["id"]]["is_private"] is True
    await client.chat_postMessage(channel=channel["id"], text="hello")  # the bot is in it
    assert [key for key in slack.messages if key[0] == channel["id"]]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("Inc-42", "invalid_name_specials"),
        ("inc 42", "invalid_name_specials"),
        ("inc#42", "invalid_name_specials"),
        ("incident-é", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("--_", "invalid_name_punctuation"),
    ],
)
async def test_channel_names_outside_slack_rules_are_refused(slack: FakeSlack, client: AsyncWebClient, name: str,
                                                             error: str) -> None:
    assert (await refused(client.conversations_create(name=name)))["error"] == error
    assert set(slack.channels) == {OPS, INCIDENTS}
    assert len(slack.of("conversations.create!failed")) == 1


async def test_an_eighty_character_name_is_accepted(client: AsyncWebClient) -> None:
    response = await client.conversations_create(name="x" * 80)
    assert response["channel"]["name"] == "x" * 80


async def test_a_name_in_use_is_taken(client: AsyncWebClient) -> None:
    assert (await refused(client.conversations_create(name="incidents")))["error"] == "name_taken"
    await client.conversations_create(name="inc-1")
    assert (await refused(client.conversations_create(name="inc-1", is_private=True)))["error"] == "name_taken"


async def test_posting_where_the_bot_is_not_a_member(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.channels["C0PUBLIC"] = new_channel("C0PUBLIC", "public", {ALICE})
    slack.channels["C0SECRET"] = new_channel("C0SECRET", "secret", {ALICE}, is_private=True)
    assert (await refused(client.chat_postMessage(channel="C0PUBLIC", text="x")))["error"] == "not_in_channel"
    # A private channel the bot is not in does not exist, as far as the bot can tell.
    assert (await refused(client.chat_postMessage(channel="C0SECRET", text="x")))["error"] == "channel_not_found"
    slack.not_in.add("C0ELSEWHERE")
    assert (await refused(client.chat_postMessage(channel="C0ELSEWHERE", text="x")))["error"] == "not_in_channel"
    await client.chat_postMessage(channel="C0UNDECLARED", text="x")  # undeclared channels stay open to posts
    assert [call.args["channel"] for call in slack.of("chat.postMessage!failed")] == ["C0PUBLIC", "C0SECRET", "C0ELSEWHERE"]


async def test_invite_adds_the_new_members_and_skips_those_already_in(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.conversations_invite(channel=INCIDENTS, users=[ALICE, BOB])
    assert slack.channels[INCIDENTS]["members"] == {BOT_USER, ALICE, BOB}
    response = await client.conversations_invite(channel=INCIDENTS, users=f"{ALICE},{CAROL}")
    assert slack.channels[INCIDENTS]["members"] == {BOT_USER, ALICE, BOB, CAROL}
    assert response["channel"]["num_members"] == 4


async def test_inviting_only_members_is_already_in_channel(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.conversations_invite(channel=INCIDENTS, users=[ALICE, BOB])
    answer = await refused(client.conversations_invite(channel=INCIDENTS, users=[BOB, ALICE]))
    assert answer["error"] == "already_in_channel"
    assert {e["user"] for e in answer["errors"]} == {ALICE, BOB}


async def test_one_uninvitable_user_fails_the_whole_invite(slack: FakeSlack, client: AsyncWebClient) -> None:
    answer = await refused(client.conversations_invite(channel=INCIDENTS, users=[ALICE, "U0NOBODY"]))
    assert answer["error"] == "user_not_found"
    assert answer["errors"] == [{"user": "U0NOBODY", "ok": False, "error": "user_not_found"}]
    assert (await refused(client.conversations_invite(channel=INCIDENTS, users=BOT_USER)))["error"] == "cant_invite_self"
    assert slack.channels[INCIDENTS]["members"] == {BOT_USER}


async def test_invite_needs_a_known_channel_the_bot_is_in(slack: FakeSlack, client: AsyncWebClient) -> None:
    assert (await refused(client.conversations_invite(channel="C0NOPE", users=ALICE)))["error"] == "channel_not_found"
    slack.channels["C0PUBLIC"] = new_channel("C0PUBLIC", "public", {BOB})
    assert (await refused(client.conversations_invite(channel="C0PUBLIC", users=ALICE)))["error"] == "not_in_channel"
    assert slack.channels["C0PUBLIC"]["members"] == {BOB}


async def test_topic_is_recorded_and_shown_by_conversations_info(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.conversations_setTopic(channel=INCIDENTS, topic="SEV1 · db down · IC <@U0ALICE>")
    assert slack.channels[INCIDENTS]["topic"] == "SEV1 · db down · IC <@U0ALICE>"
    info = await client.conversations_info(channel=INCIDENTS)
    assert info["channel"]["topic"]["value"] == "SEV1 · db down · IC <@U0ALICE>"
    assert info["channel"]["name"] == "incidents" and info["channel"]["is_member"] is True


async def test_a_topic_over_250_characters_is_too_long(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.conversations_setTopic(channel=OPS, topic="t" * 250)
    assert (await refused(client.conversations_setTopic(channel=OPS, topic="u" * 251)))["error"] == "too_long"
    assert slack.channels[OPS]["topic"] == "t" * 250


async def test_members_lists_everyone_in_the_channel_including_the_bot(client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="inc-7")
    await client.conversations_invite(channel=created["channel"]["id"], users=[BOB, ALICE])
    response = await client.conversations_members(channel=created["channel"]["id"])
    assert sorted(response["members"]) == sorted([BOT_USER, ALICE, BOB])
    assert (await refused(client.conversations_members(channel="C0NOPE")))["error"] == "channel_not_found"


# --- messages: pins and permalinks ---------------------------------------------------------------------


async def test_pinning_a_posted_message_records_it_once(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel=INCIDENTS, text="Incident declared"))["ts"]
    await client.pins_add(channel=INCIDENTS, timestamp=ts)
    assert slack.pins == {INCIDENTS: [ts]}
    assert (await refused(client.pins_add(channel=INCIDENTS, timestamp=ts)))["error"] == "already_pinned"
    items = (await client.pins_list(channel=INCIDENTS))["items"]
    assert [(item["message"]["ts"], item["message"]["text"]) for item in items] == [(ts, "Incident declared")]


async def test_pinning_a_message_that_was_never_posted_is_message_not_found(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel=OPS, text="in #ops"))["ts"]
    assert (await refused(client.pins_add(channel=INCIDENTS, timestamp=ts)))["error"] == "message_not_found"
    assert (await refused(client.pins_add(channel=OPS, timestamp="1.000001")))["error"] == "message_not_found"
    assert slack.pins == {}


async def test_permalink_of_a_posted_message(client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel=INCIDENTS, text="Incident declared"))["ts"]
    response = await client.chat_getPermalink(channel=INCIDENTS, message_ts=ts)
    assert response["permalink"] == f"https://fake.slack/archives/{INCIDENTS}/p{ts.replace('.', '')}"
    missing = client.chat_getPermalink(channel=INCIDENTS, message_ts="1.000001")
    assert (await refused(missing))["error"] == "message_not_found"


async def test_updates_and_ephemerals_are_block_checked_too(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel=OPS, text="x"))["ts"]
    too_many = [section("b")] * 51
    assert (await refused(client.chat_update(channel=OPS, ts=ts, text="x", blocks=too_many)))["error"] == "invalid_blocks"
    ephemeral = client.chat_postEphemeral(channel=OPS, user=ALICE, text="x", blocks=[section("y" * 3001)])
    assert (await refused(ephemeral))["error"] == "invalid_blocks"
    assert slack.messages[(OPS, ts)]["text"] == "x"


# --- users ---------------------------------------------------------------------------------------------


async def test_users_info_gives_each_person_their_time_zone(client: AsyncWebClient) -> None:
    alice = (await client.users_info(user=ALICE))["user"]
    assert (alice["id"], alice["name"], alice["tz"]) == (ALICE, "alice", "Europe/Paris")
    assert alice["tz_offset"] in (3600, 7200) and alice["tz_label"].startswith("Central European")
    dave = (await client.users_info(user="U0DAVE"))["user"]
    assert (dave["tz"], dave["tz_offset"], dave["tz_label"]) == ("Asia/Tokyo", 9 * 3600, "Japan Standard Time")
    assert (await refused(client.users_info(user="U0NOBODY")))["error"] == "user_not_found"


async def test_users_added_by_a_test_are_known(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.users["U0ERIN"] = {"name": "erin", "real_name": "Erin Diaz", "tz": "America/New_York"}
    assert (await client.users_info(user="U0ERIN"))["user"]["real_name"] == "Erin Diaz"
    await client.conversations_invite(channel=OPS, users="U0ERIN")
    assert "U0ERIN" in slack.channels[OPS]["members"]


# --- files ---------------------------------------------------------------------------------------------


async def test_files_upload_v2_shares_the_content_into_the_channel(slack: FakeSlack, client: AsyncWebClient) -> None:
    text = "# Post-mortem INC-1\n\nDatabase down 09:00–09:40 UTC. Ünïcode survives.\n"
    response = await client.files_upload_v2(channel=INCIDENTS, content=text, filename="inc-1.md",
                                            title="Post-mortem INC-1", initial_comment="Draft post-mortem")
    file = slack.files[response["file"]["id"]]
    assert file["content"] == text.encode() and file["length"] == len(text.encode())
    assert (file["title"], file["filename"], file["channel"]) == ("Post-mortem INC-1", "inc-1.md", INCIDENTS)
    assert file["initial_comment"] == "Draft post-mortem"
    assert slack.file_text(title="Post-mortem INC-1") == text == slack.file_text(channel=INCIDENTS)
    assert [c.method for c in slack.calls] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


async def test_a_file_shared_where_the_bot_is_not_is_refused(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.channels["C0PUBLIC"] = new_channel("C0PUBLIC", "public", {ALICE})
    answer = await refused(client.files_upload_v2(channel="C0PUBLIC", content="x", filename="x.txt"))
    assert answer["error"] == "not_in_channel"
    assert not any(f["completed"] for f in slack.files.values())
    with pytest.raises(AssertionError, match="no file"):
        slack.file_text(channel="C0PUBLIC")


async def test_completing_an_unknown_or_unuploaded_file_is_file_not_found(slack: FakeSlack, client: AsyncWebClient) -> None:
    unknown = client.files_completeUploadExternal(files=[{"id": "F0NOPE", "title": "x"}], channel_id=INCIDENTS)
    assert (await refused(unknown))["error"] == "file_not_found"
    ticket = await client.files_getUploadURLExternal(filename="x.txt", length=3)
    never_sent = client.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "x"}], channel_id=INCIDENTS)
    assert (await refused(never_sent))["error"] == "file_not_found"
    assert (await refused(client.files_getUploadURLExternal(filename="x.txt", length=0)))["error"] == "missing_argument"


async def test_a_multipart_upload_is_stored_too(slack: FakeSlack, client: AsyncWebClient, http: aiohttp.ClientSession) -> None:
    ticket = await client.files_getUploadURLExternal(filename="timeline.csv", length=8)
    form = aiohttp.FormData()
    form.add_field("file", b"at,event", filename="timeline.csv")
    async with http.post(ticket["upload_url"], data=form) as answer:
        assert answer.status == 200 and await answer.text() == "OK - 8"
    await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id=OPS)
    assert slack.file_text(title="timeline.csv", channel=OPS) == "at,event"


async def test_an_upload_can_be_made_to_fail(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("upload", status=500)
    with pytest.raises(SlackRequestError, match="status: 500"):
        await client.files_upload_v2(channel=INCIDENTS, content="x", filename="x.txt")
    assert len(slack.of("upload!failed")) == 1 and not slack.of("files.completeUploadExternal")


# --- views ---------------------------------------------------------------------------------------------


def modal(title: str, blocks: int = 1) -> dict[str, Any]:
    return {"type": "modal", "callback_id": "incident.declare", "title": {"type": "plain_text", "text": title},
            "submit": {"type": "plain_text", "text": "Declare"}, "blocks": [section("b")] * blocks}


async def test_a_modal_title_over_24_characters_is_invalid_arguments(slack: FakeSlack, client: AsyncWebClient) -> None:
    answer = await refused(client.views_open(trigger_id="1.2.3", view=modal("Declare a brand new incident")))
    assert answer["error"] == "invalid_arguments"
    assert "[json-pointer:/view/title/text]" in answer["response_metadata"]["messages"][0]
    opened = await client.views_open(trigger_id="1.2.3", view=modal("Declare an incident"))
    assert slack.views[opened["view"]["id"]]["title"]["text"] == "Declare an incident"
    assert len(slack.of("views.open!failed")) == 1


async def test_a_modal_holds_up_to_100_blocks(client: AsyncWebClient) -> None:
    await client.views_open(trigger_id="1.2.3", view=modal("Timeline", blocks=100))
    answer = await refused(client.views_open(trigger_id="1.2.3", view=modal("Timeline", blocks=101)))
    assert answer["error"] == "invalid_arguments"


async def test_views_update_and_push_are_recorded(slack: FakeSlack, client: AsyncWebClient) -> None:
    opened = (await client.views_open(trigger_id="1.2.3", view=modal("Declare")))["view"]["id"]
    await client.views_update(view_id=opened, view=modal("Declared"))
    pushed = (await client.views_push(trigger_id="4.5.6", view=modal("Details")))["view"]["id"]
    assert pushed != opened
    assert {vid: v["title"]["text"] for vid, v in slack.views.items()} == {opened: "Declared", pushed: "Details"}
    answer = await refused(client.views_update(view_id=opened, view=modal("Declared, with a long title")))
    assert answer["error"] == "invalid_arguments" and slack.views[opened]["title"]["text"] == "Declared"
