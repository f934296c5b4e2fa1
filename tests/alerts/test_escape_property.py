"""Property: nothing a feed says can reach Slack as markup.

Headlines, leads, titles, summaries, outlet names and URLs are built from Slack control
sequences; the rendered messages are posted through the real sink to the fake Slack, and
every recorded string is checked: the only `<` allowed is one that opens a link we built
from an http(s) article URL. So no `<!channel>`, `<!here>`, `<@U…>`, `<#C…>`, and no
`<http://evil|Reuters>` whose URL did not come from an article.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.escape import safe_url
from alerts.render import (
    Message,
    render_development,
    render_merge_pointer,
    render_plain,
    render_source_reply,
)
from alerts.slack import SlackWebSink, make_client
from monitor.config.settings import Slack
from monitor.models import (
    Article,
    Decision,
    Development,
    DevelopmentState,
    DevelopmentView,
    Impact,
    Origin,
    Sentiment,
    TimelineEntry,
)
from tests.fakeslack import FakeSlack, blocks_error

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)

CONTROL = [
    "<!channel>", "<!here>", "<!everyone>", "<@U123>", "<#C123>", "<!subteam^S0123>",
    "<http://evil|Reuters>", "<https://evil.example>", "<mailto:a@b.c|x>", "&lt;!here&gt;", "&amp;",
    "```", "``", "`", "\u202e", "\u2066", "\u2069", "\u200f", "<", ">", "&", "|", "*", "_", "~",
    "@channel", "@here", "#general", "\n", ":rotating_light:",
]
hostile_text = st.lists(st.one_of(st.sampled_from(CONTROL), st.text(max_size=6)), max_size=12).map("".join)
hostile_url = st.one_of(
    st.sampled_from([
        "http://evil|Reuters", "javascript:alert(1)", "https://ok.example/a<!here>",
        "https://ok.example/?q=<@U123>&x=1", "<http://evil|x>", "http://ok.example/`x`|y>",
        "ftp://files.example/x", "HTTPS://UP.example/x", "https://ok.example/%3C!here%3E", "",
    ]),
    hostile_text.map(lambda s: "https://ok.example/" + s),
    hostile_text,
)

LINK = re.compile(r"<(https?://[^|<>\s]+)\|([^<>]*)>")
# The only other markup we write: date tokens from our own clock (digits and a fixed format).
DATE = re.compile(r"<!date\^\d+\^\{date_short(_pretty)?\}( at \{time\})?\|\d{4}-\d\d-\d\d( \d\d:\d\d UTC)?>")


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def strings(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def assert_no_markup_but_our_links(text: str, article_urls: list[str]) -> None:
    allowed = {_plain(u) for u in article_urls if safe_url(u) is not None}
    text = DATE.sub("", text)
    rest = LINK.sub("", text)
    assert "<" not in rest and ">" not in rest, text
    for url, _label in LINK.findall(text):
        assert _plain(url.replace("&amp;", "&")) in allowed, (url, allowed)


def _plain(url: str) -> str:
    """Compare URLs without percent-encoding and with a lower-case scheme."""
    scheme, sep, rest = unquote(url.strip()).partition("://")
    return scheme.lower() + sep + rest


def build_view(headline: str, lead: str, titles: list[str], outlets: list[str], urls: list[str]) -> DevelopmentView:
    articles = tuple(
        Article(source_id=f"s{i}", outlet=outlets[i % len(outlets)], url=url, canonical_url=url, title=titles[i % len(titles)],
                summary=lead, text="", published=NOW, fetched=NOW, id=i + 1)
        for i, url in enumerate(urls)
    )
    origins = tuple(
        Origin(key=f"o{i}", label=a.outlet, article_ids=(a.id,) if a.id else (), outlets=(a.outlet,)) for i, a in enumerate(articles)
    )
    dev = Development(topic="t", headline=headline, first_seen=NOW, last_seen=NOW, state=DevelopmentState.CORROBORATED,
                      independent=len(origins), impact=Impact(7, (lead[:40], headline[:40])), sentiment=Sentiment.NEGATIVE, lead=lead, id=1)
    decision = Decision(DevelopmentState.CORROBORATED, len(origins), reason=lead, origins=origins)
    timeline = (TimelineEntry(2, headline, NOW - timedelta(days=3), 2),)
    return DevelopmentView(dev, decision, articles, timeline)


async def post_all(slack: FakeSlack, messages: list[Message]) -> None:
    config = Slack(token=slack.token, base_url=slack.base_url, timeout=timedelta(seconds=5))
    sink = SlackWebSink(make_client(config))
    for message in messages:
        await sink.post("alerts", message)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    headline=hostile_text,
    lead=hostile_text,
    titles=st.lists(hostile_text, min_size=1, max_size=3),
    outlets=st.lists(hostile_text, min_size=1, max_size=3),
    urls=st.lists(hostile_url, min_size=1, max_size=4),
)
def test_no_control_sequence_from_a_feed_reaches_slack(
    slack: FakeSlack, headline: str, lead: str, titles: list[str], outlets: list[str], urls: list[str]
) -> None:
    view = build_view(headline, lead, titles, outlets, urls)
    messages = [
        render_development(view, topic_name=headline, now=NOW, updated=True),
        render_source_reply(view.articles[0], outlets[0], NOW),
        render_merge_pointer(headline, surviving_headline=lead, thread_link=urls[0], now=NOW),
        render_plain(lead, title=headline),
    ]
    before = len(slack.calls)
    asyncio.run(post_all(slack, messages))

    recorded = slack.calls[before:]
    assert len(recorded) == len(messages)
    for call in recorded:
        assert call.response.get("ok") is True, (call.response, blocks_error(call.params.get("blocks")))
        assert "link_names" not in call.params and "parse" not in call.params
        assert call.params["text"].strip(), "a notification needs fallback text"
        allowed_urls = list(urls) + ([urls[0]] if call is recorded[2] else [])
        for text in strings({"text": call.params["text"], "blocks": call.params["blocks"]}):
            assert_no_markup_but_our_links(text, allowed_urls)
