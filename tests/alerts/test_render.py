"""Rendering a development as Block Kit: content a reader sees, escaping, and Slack's limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alerts.escape import clip, escape, escape_clipped, link
from alerts.render import (
    Message,
    render_development,
    render_merge_pointer,
    render_plain,
    render_source_reply,
)
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
from tests.fakeslack import blocks_error

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def make_article(i: int, outlet: str, *, url: str | None = None, title: str = "", summary: str = "", origin: str = "") -> Article:
    return Article(
        source_id=f"src-{outlet.lower()}",
        outlet=outlet,
        url=url if url is not None else f"https://{outlet.lower().replace(' ', '')}.example/story-{i}",
        canonical_url=f"https://{outlet.lower().replace(' ', '')}.example/story-{i}",
        title=title or f"{outlet} reports new export rule",
        summary=summary,
        text="",
        published=NOW - timedelta(minutes=30 - i),
        fetched=NOW - timedelta(minutes=29 - i),
        origin=origin or f"outlet:{outlet.lower()}",
        id=i,
    )


def make_view(
    *,
    headline: str = "US tightens AI chip export rules",
    lead: str = "The Commerce Department widened licence requirements.",
    origins: int = 3,
    reprints: int = 0,
    impact: int | None = 8,
    dev_id: int = 42,
    timeline: tuple[TimelineEntry, ...] = (),
    articles: tuple[Article, ...] | None = None,
) -> DevelopmentView:
    """A development with `origins` independent sources; the first has `reprints` copies."""
    names = ["Reuters", "Politico", "BIS press release"] + [f"Outlet {n}" for n in range(max(0, origins - 3))]
    made: list[Article] = []
    found: list[Origin] = []
    next_id = 1
    for index, name in enumerate(names[:origins]):
        ids = [next_id]
        outlets = [name]
        made.append(make_article(next_id, name, origin=f"o:{name}"))
        next_id += 1
        if index == 0:
            for r in range(reprints):
                outlet = f"Reprinter {r}"
                made.append(make_article(next_id, outlet, origin=f"o:{name}"))
                ids.append(next_id)
                outlets.append(outlet)
                next_id += 1
        found.append(Origin(key=f"o:{name}", label=name, article_ids=tuple(ids), outlets=tuple(outlets), reprints=len(ids) - 1))
    state = DevelopmentState.CORROBORATED if origins > 1 else DevelopmentState.SINGLE_SOURCE
    dev = Development(
        topic="ai-export",
        headline=headline,
        first_seen=NOW - timedelta(hours=1),
        last_seen=NOW,
        state=state,
        independent=origins,
        impact=Impact(impact, ("regulatory action", "agency named", "money")) if impact else None,
        sentiment=Sentiment.NEGATIVE,
        lead=lead,
        id=dev_id,
    )
    decision = Decision(state=state, independent=origins, reason=f"{origins} independent", origins=tuple(found))
    return DevelopmentView(dev, decision, tuple(articles if articles is not None else made), timeline)


def all_text(message: Message) -> str:
    """Every string Slack will read from the message, joined."""
    out = [message.text]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            out.append(node)

    walk(message.blocks)
    return "\n".join(out)


def assert_valid(message: Message) -> None:
    assert blocks_error(message.blocks) is None, blocks_error(message.blocks)
    assert 0 < len(message.text) <= 3000


# --- escape.py --------------------------------------------------------------------------


def test_escape_touches_only_the_three_control_characters() -> None:
    assert escape("<!channel> & <@U123> \"quoted\" 'x' *bold* `code`") == (
        "&lt;!channel&gt; &amp; &lt;@U123&gt; \"quoted\" 'x' *bold* `code`"
    )
    assert escape("&lt;!here&gt;") == "&amp;lt;!here&amp;gt;"


def test_link_only_for_http_urls() -> None:
    assert link("https://a.example/x?a=1&b=2", "Reuters") == "<https://a.example/x?a=1&amp;b=2|Reuters>"
    assert link("javascript:alert(1)", "Reuters") == "Reuters"
    assert link("slack://channel?id=C1", "<!here>") == "&lt;!here&gt;"
    assert link("http://", "x") == "x"


def test_link_label_and_url_cannot_forge_markup() -> None:
    made = link("https://ok.example/a|b>c<d", "<http://evil|Reuters>")
    assert made == "<https://ok.example/a%7Cb%3Ec%3Cd|&lt;http://evil¦Reuters&gt;>"
    assert made.count("<") == 1 and made.count(">") == 1 and made.count("|") == 1


def test_clipping_adds_an_ellipsis_and_never_splits_an_entity() -> None:
    assert clip("abcdef", 4) == "abc…"
    assert clip("abc", 4) == "abc"
    clipped = escape_clipped("a&&&&&", 8)
    assert clipped == "a&amp;…"
    assert len(escape_clipped("<" * 5000, 3000)) <= 3000


# --- render.py --------------------------------------------------------------------------


def test_parent_message_shows_what_on_call_needs() -> None:
    view = make_view(reprints=4, timeline=(TimelineEntry(7, "Earlier: rule proposed", NOW - timedelta(days=30), 2),))
    message = render_development(view, topic_name="AI export controls", now=NOW)
    assert_valid(message)
    text = all_text(message)
    assert message.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "US tightens AI chip export rules"}}
    assert "Verified by 3 sources" in text
    assert "Impact 8/10 — regulatory action, agency named, money" in text
    assert "negative" in text and "AI export controls" in text
    assert "Reuters.example" not in text and "<https://reuters.example/story-1|Reuters> (+4 reprints)" in text
    assert "↳ reprinted by: <https://reprinter0.example/story-2|Reprinter 0>, " in text  # under their origin
    assert "2026-10-23 — Earlier: rule proposed (2 sources)" in text
    assert "The Commerce Department widened licence requirements." in text
    assert message.text.startswith("US tightens AI chip export rules — ")


def test_feed_text_is_verbatim_mrkdwn_or_plain_text() -> None:
    message = render_development(make_view(), topic_name="T", now=NOW)
    for block in message.blocks:
        texts = [block["text"]] if "text" in block else block.get("elements", [])
        for obj in texts:
            assert obj["type"] == "plain_text" or obj.get("verbatim") is True


def test_single_source_is_marked_unverified() -> None:
    message = render_development(make_view(origins=1), topic_name="T", now=NOW)
    assert "Unverified — 1 source" in all_text(message)
    assert "Verified by" not in all_text(message)


def test_two_sources_where_the_topic_needs_three_are_not_called_verified() -> None:
    view = make_view(origins=2)
    view = replace(view, decision=replace(view.decision, state=DevelopmentState.SINGLE_SOURCE, required=3))
    text = all_text(render_development(view, topic_name="T", now=NOW))
    assert "2 sources (needs 3)" in text
    assert "Verified by" not in text


def test_update_says_when_it_was_updated() -> None:
    message = render_development(make_view(), topic_name="T", now=NOW, updated=True)
    assert "updated at 2026-11-22 10:30 UTC" in all_text(message)
    assert "updated at" not in all_text(render_development(make_view(), topic_name="T", now=NOW))


def test_configured_mention_is_kept_and_bad_mention_is_shown_as_text() -> None:
    ping = render_development(make_view(), topic_name="T", now=NOW, mention="<!subteam^S0123>")
    assert "<!subteam^S0123> " in ping.blocks[1]["text"]["text"]
    assert ping.text.startswith("<!subteam^S0123> ")
    odd = render_development(make_view(), topic_name="T", now=NOW, mention="<http://evil|x>")
    assert "<http://evil" not in all_text(odd)


def test_limits_hold_with_sixty_sources_and_a_huge_headline() -> None:
    view = make_view(headline="H" * 10_000, lead="L & " * 5000, origins=60, reprints=40,
                     timeline=tuple(TimelineEntry(i, "t" * 2000, NOW - timedelta(days=i), 2) for i in range(40)))
    message = render_development(view, topic_name="x" * 500, now=NOW, updated=True)
    assert_valid(message)
    assert len(message.blocks) <= 50
    header = message.blocks[0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")
    assert "…" in all_text(message)


def test_sources_that_do_not_fit_are_counted() -> None:
    view = make_view(origins=400, lead="")
    message = render_development(view, topic_name="T", now=NOW)
    assert_valid(message)
    assert "more_" in all_text(message)  # "…and N more"


def test_unsafe_article_url_is_not_linked() -> None:
    articles = (make_article(1, "Reuters", url="javascript:alert(1)"), make_article(2, "Politico"))
    view = make_view(origins=2, articles=articles)
    text = all_text(render_development(view, topic_name="T", now=NOW))
    assert "javascript" not in text
    assert "• Reuters: " in text


def test_source_reply_names_the_new_source() -> None:
    article = make_article(9, "AP", title="AP confirms <!here>", summary="Details & more")
    message = render_source_reply(article, "Associated Press", NOW)
    assert_valid(message)
    text = all_text(message)
    assert "<https://ap.example/story-9|Associated Press>" in text
    assert "AP confirms &lt;!here&gt;" in text and "Details &amp; more" in text


def test_merge_pointer_links_the_surviving_thread() -> None:
    message = render_merge_pointer("Old story", surviving_headline="Main story",
                                   thread_link="https://fake.slack.test/archives/C1/p1", now=NOW)
    assert_valid(message)
    assert "<https://fake.slack.test/archives/C1/p1|Main story>" in all_text(message)


@pytest.mark.parametrize("size", [1, 3000, 200_000])
def test_plain_messages_stay_within_limits(size: int) -> None:
    message = render_plain("line <!channel>\n" * size, title="Source failing: <@U1>")
    assert_valid(message)
    assert "<!channel>" not in all_text(message) and "<@U1>" not in all_text(message)


@pytest.mark.parametrize("text", ["", "\r", "\n\n", "  \r\n "])
def test_a_plain_message_of_blank_text_still_has_valid_blocks(text: str) -> None:
    """Found by the property test: a lone carriage return rendered to no blocks at all,
    which Slack refuses (invalid_blocks)."""
    for title in (None, ""):
        message = render_plain(text, title=title)
        assert message.blocks and blocks_error(message.blocks) is None
