"""The fake Slack behaves like Slack where our delivery code depends on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import aiohttp
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakeslack import FakeSlack, blocks_error

GOOD_BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "body", "verbatim": True}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "ctx"}]},
]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def client(slack: FakeSlack, token: str | None = None, timeout: float = 5) -> AsyncWebClient:
    return AsyncWebClient(token=token or slack.token, base_url=slack.base_url, timeout=timeout)  # type: ignore[arg-type]


def test_base_url_is_loopback_api_root(slack: FakeSlack) -> None:
    assert slack.base_url.startswith("http://127.0.0.1:")
    assert slack.base_url.endswith("/api/")


async def test_auth_checks_the_bearer_token(slack: FakeSlack) -> None:
    ok = await client(slack).auth_test()
    assert ok["user_id"] == "U0BOT"
    with pytest.raises(SlackApiError) as raised:
        await client(slack, token="xoxb-wrong").auth_test()
    assert raised.value.response["error"] == "invalid_auth"


async def test_post_by_name_gives_channel_id_and_increasing_ts() -> None:
    with FakeSlack(ts_base=1700000000) as slack:
        await _post_twice(slack)


async def _post_twice(slack: FakeSlack) -> None:
    web = client(slack)
    first = await web.chat_postMessage(channel="#alerts", text="one", blocks=GOOD_BLOCKS)
    second = await web.chat_postMessage(channel="alerts", text="two")
    assert first["channel"] == second["channel"] == "C0ALERTS01"
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    assert [m["text"] for m in slack.messages("alerts")] == ["one", "two"]


async def test_history_returns_metadata_only_when_asked(slack: FakeSlack) -> None:
    web = client(slack)
    meta = {"event_type": "development_alert", "event_payload": {"development_id": 7, "alert_id": 3}}
    posted = await web.chat_postMessage(channel="alerts", text="x", metadata=meta)
    with_meta = await web.conversations_history(channel=posted["channel"], include_all_metadata=True)
    without = await web.conversations_history(channel=posted["channel"])
    assert with_meta["messages"][0]["metadata"] == meta
    assert "metadata" not in without["messages"][0]


async def test_history_needs_a_channel_id_not_a_name(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client(slack).conversations_history(channel="alerts")
    assert raised.value.response["error"] == "channel_not_found"


@pytest.mark.parametrize(
    ("blocks", "error"),
    [
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "invalid_blocks"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}], None),
        ([{"type": "divider"}] * 51, "invalid_blocks"),
        ([{"type": "divider"}] * 50, None),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "invalid_blocks"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "bogus": 1}], "invalid_blocks"),
    ],
)
async def test_blocks_are_validated_like_slack(slack: FakeSlack, blocks: list, error: str | None) -> None:
    web = client(slack)
    if error is None:
        assert (await web.chat_postMessage(channel="alerts", text="t", blocks=blocks))["ok"]
    else:
        with pytest.raises(SlackApiError) as raised:
            await web.chat_postMessage(channel="alerts", text="t", blocks=blocks)
        assert raised.value.response["error"] == error
        assert slack.messages("alerts") == []


def test_blocks_error_names_the_problem() -> None:
    assert blocks_error(GOOD_BLOCKS) is None
    assert "51 blocks" in (blocks_error([{"type": "divider"}] * 51) or "")


async def test_form_encoded_posts_with_json_string_blocks(slack: FakeSlack) -> None:
    form = {"token": slack.token, "channel": "alerts", "text": "t", "blocks": json.dumps(GOOD_BLOCKS)}
    async with aiohttp.ClientSession() as session, session.post(slack.base_url + "chat.postMessage", data=form) as response:
        body = await response.json()
    assert body["ok"] is True
    assert slack.messages("alerts")[0]["blocks"] == GOOD_BLOCKS


async def test_update_replaces_text_and_needs_existing_ts(slack: FakeSlack) -> None:
    web = client(slack)
    posted = await web.chat_postMessage(channel="alerts", text="old")
    await web.chat_update(channel=posted["channel"], ts=posted["ts"], text="new")
    assert [m["text"] for m in slack.messages("alerts")] == ["new"]
    with pytest.raises(SlackApiError) as raised:
        await web.chat_update(channel=posted["channel"], ts="1.000000", text="x")
    assert raised.value.response["error"] == "message_not_found"


async def test_thread_replies_and_permalink(slack: FakeSlack) -> None:
    web = client(slack)
    parent = await web.chat_postMessage(channel="alerts", text="parent")
    await web.chat_postMessage(channel="alerts", text="reply", thread_ts=parent["ts"])
    await web.chat_postMessage(channel="alerts", text="loud", thread_ts=parent["ts"], reply_broadcast=True)
    thread = await web.conversations_replies(channel=parent["channel"], ts=parent["ts"])
    assert [m["text"] for m in thread["messages"]] == ["parent", "reply", "loud"]
    assert [m["text"] for m in slack.messages("alerts")] == ["parent", "loud"]  # broadcast shows in channel
    link = await web.chat_getPermalink(channel=parent["channel"], message_ts=parent["ts"])
    assert link["permalink"].startswith("https://")


async def test_scripted_429_carries_retry_after(slack: FakeSlack) -> None:
    slack.fail_next(1, status=429, retry_after=7)
    form = {"token": slack.token}
    async with aiohttp.ClientSession() as session, session.post(slack.base_url + "chat.postMessage", data=form) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "7"
        assert (await response.json())["error"] == "ratelimited"


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked", "channel_not_found", "msg_too_long"])
async def test_scripted_permanent_errors(slack: FakeSlack, error: str) -> None:
    slack.fail_next(1, error=error, methods=("chat.postMessage",))
    with pytest.raises(SlackApiError) as raised:
        await client(slack).chat_postMessage(channel="alerts", text="x")
    assert raised.value.response["error"] == error
    assert (await client(slack).chat_postMessage(channel="alerts", text="x"))["ok"]


async def test_scripted_faults_only_hit_the_named_methods(slack: FakeSlack) -> None:
    slack.fail_next(1, status=500, methods=("chat.update",))
    assert (await client(slack).auth_test())["ok"]
    assert slack.calls[-1].status == 200


async def test_timeout_after_accepting_stores_the_message(slack: FakeSlack) -> None:
    slack.fail_next(1, timeout=3, methods=("chat.postMessage",))
    with pytest.raises((asyncio.TimeoutError, aiohttp.ClientError)):
        await client(slack, timeout=0.5).chat_postMessage(channel="alerts", text="maybe")
    assert [m["text"] for m in slack.messages("alerts")] == ["maybe"]


async def test_archived_and_not_member_channels() -> None:
    with FakeSlack(channels={"old": "C0OLD", "closed": "C0CLOSED"}, archived=("old",), not_member=("closed",)) as slack:
        for channel, error in (("old", "is_archived"), ("closed", "not_in_channel"), ("nope", "channel_not_found")):
            with pytest.raises(SlackApiError) as raised:
                await client(slack).chat_postMessage(channel=channel, text="x")
            assert raised.value.response["error"] == error


def test_usable_from_sync_code(slack: FakeSlack) -> None:
    web = WebClient(token=slack.token, base_url=slack.base_url)
    assert web.chat_postMessage(channel="alerts", text="sync")["ok"]
    assert slack.calls_to("chat.postMessage")[0].params["text"] == "sync"


async def test_every_answer_names_the_tokens_scopes(slack: FakeSlack) -> None:
    answer = await client(slack).auth_test()
    assert set(answer.headers["x-oauth-scopes"].split(",")) >= {"chat:write", "channels:read", "channels:history"}


async def test_an_app_without_a_scope_gets_missing_scope_as_slack_answers_it() -> None:
    with FakeSlack(scopes=("chat:write", "channels:read")) as slack:
        web = client(slack)
        posted = await web.chat_postMessage(channel="alerts", text="x")  # chat:write is enough to post
        with pytest.raises(SlackApiError) as raised:
            await web.conversations_history(channel=posted["channel"])
        body = raised.value.response
        assert raised.value.response.status_code == 200  # Slack answers scope errors with 200
        assert (body["error"], body["needed"], body["provided"]) == ("missing_scope", "channels:history", "chat:write,channels:read")
        assert body.headers["x-oauth-scopes"] == "chat:write,channels:read"
        assert [c["name"] for c in (await web.conversations_list())["channels"]] == ["alerts", "oncall", "ops", "webhook"]


async def test_private_channels_need_the_groups_scopes() -> None:
    with FakeSlack(channels={"alerts": "C0ALERTS01", "secret": "G0SECRET01"}, private=("secret",),
                   scopes=("chat:write", "channels:read", "channels:history")) as slack:
        web = client(slack)
        posted = await web.chat_postMessage(channel="secret", text="x")
        with pytest.raises(SlackApiError) as raised:
            await web.conversations_history(channel=posted["channel"])
        assert raised.value.response["needed"] == "groups:history"
        listed = await web.conversations_list(types="public_channel,private_channel")
        assert "secret" not in [c["name"] for c in listed["channels"]]  # no groups:read


async def test_a_server_error_after_the_post_leaves_the_message(slack: FakeSlack) -> None:
    slack.fail_next(1, status=500, after=True, methods=("chat.postMessage",))
    form = {"token": slack.token, "channel": "alerts", "text": "posted anyway"}
    async with aiohttp.ClientSession() as session, session.post(slack.base_url + "chat.postMessage", data=form) as response:
        assert response.status == 500
    assert [m["text"] for m in slack.messages("alerts")] == ["posted anyway"]
