"""Rendering a development as Block Kit: content a reader sees, escaping, and Slack's limits."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alerts.escape import clip, escape, escape_clipped, link
from alerts.render import (
    Message,
    origin_name,
    render_all_sources,
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


def make_article(i: int, outlet: str, *, url: str | None = None, title: str = "", summary: str = "", origin: str = "",
                 tier: str = "outlet", owner: str = "", reprint_of: int | None = None) -> Article:
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
        tier=tier,
        owner=owner,
        reprint_of=reprint_of,
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
        # The first origin's own report carries the development's headline.
        made.append(make_article(next_id, name, origin=f"o:{name}", title=headline if index == 0 else ""))
        next_id += 1
        if index == 0:
            for r in range(reprints):
                outlet = f"Reprinter {r}"
                made.append(make_article(next_id, outlet, origin=f"o:{name}", reprint_of=1))
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


def test_clipping_ends_at_a_word_when_one_ends_near_the_cut() -> None:
    assert escape_clipped("exports fall under a presumption of denial", 40) == "exports fall under a presumption of…"
    assert escape_clipped("Supercalifragilistic" * 3, 10) == "Supercali…"  # one long word: cut inside it
    assert escape_clipped("A & B under review", 10) == "A &amp; B…"  # never leaves a broken entity


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
    assert "The Commerce Department widened licence requirements." in text  # what happened
    assert "*Why it matters:* High impact (8/10) — regulatory action; agency named; money · tone negative" in text
    assert "*Verified by 3 sources* · AI export controls" in text
    assert "*Who reports it*" in text
    assert "Reuters.example" not in text and "<https://reuters.example/story-1|Reuters> (+4 reprints)" in text
    assert "↳ reprinted by: <https://reprinter0.example/story-2|Reprinter 0>, " in text  # under their origin
    assert "*Before this*\n• <!date^1792751400^{date_short}|2026-10-23> — Earlier: rule proposed" in text
    assert message.text == "US tightens AI chip export rules — verified by 3 sources, high impact (8/10)"


def test_the_message_reads_as_a_note_not_as_debug_output() -> None:
    """No internal ids, no decision reason repeating the sources, no mrkdwn marks in the
    notification text, no source counts in timeline entries that go stale."""
    view = make_view(dev_id=42, timeline=(TimelineEntry(7, "Rule proposed", NOW - timedelta(days=30), 2),))
    view = replace(view, decision=replace(view.decision, reason="3 independent: Reuters, Politico, BIS press release"))
    message = render_development(view, topic_name="AI export controls", now=NOW, updated=True)
    text = all_text(message)
    assert "#42" not in text and "development" not in text.lower()
    assert "Why:" not in text and "independent:" not in text
    assert "*" not in message.text and "_" not in message.text
    assert "(2 sources)" not in text and "Rule proposed" in text


def test_times_are_slack_date_tokens_each_reader_sees_in_local_time() -> None:
    message = render_development(make_view(), topic_name="T", now=NOW, updated=True)
    [context] = [b for b in message.blocks if b["type"] == "context"]
    shown = " ".join(e["text"] for e in context["elements"])
    first_seen = int((NOW - timedelta(hours=1)).timestamp())
    assert f"First reported <!date^{first_seen}^{{date_short_pretty}} at {{time}}|2026-11-22 09:30 UTC>" in shown
    assert f"updated <!date^{int(NOW.timestamp())}^{{date_short_pretty}} at {{time}}|2026-11-22 10:30 UTC>" in shown
    reply = render_source_reply(make_article(9, "AP"), "AP", NOW)
    assert "Published <!date^" in all_text(reply)
    # Outside those tokens (whose fallback is UTC for clients that cannot format), no bare UTC.
    assert "UTC" not in re.sub(r"<!date\^[^>]*>", "", all_text(message) + all_text(reply))


def test_an_owner_group_is_shown_as_the_outlet_with_the_group_as_a_note() -> None:
    """feeds.yaml's owner id ("us-commerce") counts the department's outlets once; readers know
    them by name. The outlet leads, the group is a note where it collapsed several."""
    bis = make_article(1, "Bureau of Industry and Security", origin="owner:us-commerce", tier="primary", owner="us-commerce",
                       title="Commerce adds 14 entities to the Entity List")
    register = make_article(2, "Federal Register", origin="owner:us-commerce", tier="primary", owner="us-commerce")
    reuters = make_article(3, "Reuters", origin="wire:reuters", title="US adds Chinese AI chip firms to Entity List")
    origins = (
        Origin("wire:reuters", "Reuters", (3,), ("Reuters",)),
        Origin("owner:us-commerce", "us-commerce", (1, 2), ("Bureau of Industry and Security", "Federal Register"), 1, primary=True),
    )
    view = make_view(origins=2, articles=(bis, register, reuters))
    view = replace(view, decision=replace(view.decision, origins=origins))
    text = all_text(render_development(view, topic_name="T", now=NOW))
    assert "us-commerce)" in text and "• us-commerce" not in text and "|us-commerce>" not in text
    lines = text.split("*Who reports it*\n")[1].splitlines()
    assert lines[0] == ("• <https://bureauofindustryandsecurity.example/story-1|Bureau of Industry and Security> (primary source): "
                        "Commerce adds 14 entities to the Entity List")  # the primary source first
    assert lines[1] == "      ↳ same owner (us-commerce), counted once: <https://federalregister.example/story-2|Federal Register>"
    assert lines[2].startswith("• <https://reuters.example/story-3|Reuters>: ")
    assert origin_name(origins[1], [bis, register]) == "Bureau of Industry and Security"


def test_the_header_is_the_origins_headline_not_a_reprints() -> None:
    """The engine may pick a reprint's title as the development's headline; the message leads
    with the origin's own (or a primary source's) headline, as the sources list does."""
    wire = make_article(1, "Reuters", origin="wire:reuters", tier="wire", title="US adds 14 Chinese AI chip firms to Entity List")
    reprint = make_article(2, "Daily Tribune", origin="wire:reuters", title="U.S. adds Chinese chip firms to list (Reuters)", reprint_of=1)
    other = make_article(3, "PolicyWire", title="Commerce blacklists 14 Chinese AI chip designers")
    view = make_view(headline="U.S. adds Chinese chip firms to list (Reuters)", origins=2, articles=(reprint, wire, other))
    view = replace(view, decision=replace(view.decision, origins=(
        Origin("wire:reuters", "Reuters", (2, 1), ("Daily Tribune", "Reuters"), 1),
        Origin("outlet:policywire", "PolicyWire", (3,), ("PolicyWire",)),
    )))
    message = render_development(view, topic_name="T", now=NOW)
    assert message.blocks[0]["text"]["text"] == "US adds 14 Chinese AI chip firms to Entity List"
    assert message.text.startswith("US adds 14 Chinese AI chip firms to Entity List — ")
    with_primary = replace(view, articles=(*view.articles, make_article(4, "BIS", tier="primary", title="Commerce adds 14 entities")),
                           decision=replace(view.decision, origins=(*view.decision.origins, Origin("outlet:bis", "BIS", (4,), ("BIS",), primary=True))))
    assert render_development(with_primary, topic_name="T", now=NOW).blocks[0]["text"]["text"] == "Commerce adds 14 entities"


def test_the_lead_is_cut_at_a_sentence_or_a_word_never_inside_one() -> None:
    sentence = "The rule places advanced computing items under a presumption of denial for these entities. "
    long_sentences = make_view(lead="", articles=(make_article(1, "Reuters", summary=sentence * 10), make_article(2, "Politico")))
    what = render_development(long_sentences, topic_name="T", now=NOW).blocks[1]["text"]["text"]
    assert what.endswith("entities.") and len(what) <= 300 and "…" not in what  # whole sentences
    one_long = make_view(lead="", articles=(make_article(1, "Reuters", summary="word " * 200 + "presumption of denial"),
                                            make_article(2, "Politico")))
    what = render_development(one_long, topic_name="T", now=NOW).blocks[1]["text"]["text"]
    assert what.endswith("word…") and len(what) <= 300
    # The engine's lead, already cut mid-word at 500 characters, is not shown cut further mid-word.
    engine_cut = make_view(lead=("under a presumption of denial " * 17)[:500],
                           articles=(make_article(1, "Reuters", summary=""), make_article(2, "Politico")))
    what = render_development(engine_cut, topic_name="T", now=NOW).blocks[1]["text"]["text"]
    assert what.endswith("…") and what[:-1].split()[-1] in {"under", "a", "presumption", "of", "denial"}


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
    assert "updated <!date^1795343400^{date_short_pretty} at {time}|2026-11-22 10:30 UTC>" in all_text(message)
    assert "updated <!date" not in all_text(render_development(make_view(), topic_name="T", now=NOW))


def test_configured_mention_is_kept_and_bad_mention_is_shown_as_text() -> None:
    ping = render_development(make_view(), topic_name="T", now=NOW, mention="<!subteam^S0123>")
    assert ping.blocks[1]["text"]["text"].startswith("<!subteam^S0123> ")
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


def test_sources_that_do_not_fit_are_counted_and_all_listed_in_the_thread() -> None:
    view = make_view(origins=400, lead="")
    message = render_development(view, topic_name="T", now=NOW)
    assert_valid(message)
    assert "more — all are listed in the thread_" in all_text(message)  # "…and N more — …"
    listing = render_all_sources(view)
    assert listing is not None
    assert_valid(listing)
    assert "*All 400 independent sources*" in all_text(listing) and "|Outlet 396>" in all_text(listing)
    assert render_all_sources(make_view()) is None  # everything fits: no extra reply


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
