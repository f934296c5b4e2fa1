"""Normalise stage: canonical URLs, clean text, dates, attribution and identity keys."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.ingest.normalize import (
    MAX_TEXT,
    canonical_url,
    clean_text,
    normalize_item,
    normalize_items,
)
from monitor.models import Article, Item

FETCHED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
NOW = FETCHED + timedelta(seconds=5)
SOURCE: dict[str, Any] = {"source_id": "bis", "outlet": "BIS", "owner": "us-gov", "tier": "primary"}


def norm(item: Item, **overrides: Any) -> Article:
    return normalize_item(item, **{**SOURCE, "fetched_at": FETCHED, "now": NOW, **overrides})


# ------------------------------------------------------------------ canonical_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "HTTP://WWW.Example.COM/News/Story",
            "http://www.example.com/News/Story",
        ),  # host only lowercased
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com/a/b/", "https://example.com/a/b"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        (
            "https://example.com/a?utm_source=rss&utm_medium=feed&id=7&fbclid=X&gclid=Y&mc_cid=1&mc_eid=2&ref=tw&cmpid=9",
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?UTM_Campaign=x", "https://example.com/a"),
        ("https://example.com/caf%c3%a9", "https://example.com/caf%C3%A9"),
        ("https://example.com/café", "https://example.com/caf%C3%A9"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("mailto:desk@example.com", "mailto:desk@example.com"),  # not ours to change
        ("", ""),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_variants_of_one_article_agree() -> None:
    variants = [
        "https://www.reuters.com/world/us/story-2026-11-21/",
        "https://WWW.REUTERS.COM:443/world/us/story-2026-11-21?utm_source=twitter#main",
        "https://www.reuters.com/world/us/story-2026-11-21?fbclid=abc",
    ]
    assert len({canonical_url(u) for u in variants}) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a/?utm_x=1&q=a+b&z=%2F#f",
        "http://[::1]:8080/x/",
        "https://ex.com/%7Euser/é?x=é",
    ],
)
def test_canonical_url_is_stable(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


# ------------------------------------------------------------------ clean_text


def test_clean_text_removes_zero_width_and_bidi_controls() -> None:
    text = "export\u200bcontrols \u202eevil\u202c \u2066isolate\u2069 \ufeffbom soft\u00adhyphen \u200dzwj\u200e"
    assert clean_text(text) == "exportcontrols evil isolate bom softhyphen zwj"


def test_clean_text_is_nfc() -> None:
    decomposed = "Cafe\u0301 Zu\u0308rich"  # e + combining acute, u + combining diaeresis
    cleaned = clean_text(decomposed)
    assert cleaned == "Café Zürich"
    assert unicodedata.is_normalized("NFC", cleaned)


def test_clean_text_of_html_drops_scripts_styles_and_keeps_words_apart() -> None:
    html = """<html><head><title>Page</title><style>p { color: red }</style></head><body>
    <script>var tracking = "leak";</script><p>First&nbsp;paragraph with <b>bo</b>ld.</p><p>Second</p>
    <ul><li>one</li><li>two</li></ul>line<br>break<noscript>enable js</noscript> &amp; more</body></html>"""
    assert clean_text(html) == "First paragraph with bold. Second one two line break & more"


def test_clean_text_unescapes_entities_even_when_escaped_twice() -> None:
    assert clean_text("Commerce&#8217;s rule") == "Commerce’s rule"
    assert clean_text("<p>Commerce&amp;#8217;s rule</p>") == "Commerce’s rule"


def test_clean_text_collapses_whitespace_and_keeps_plain_text() -> None:
    assert clean_text("  a\n\n\tb \u00a0 c  ") == "a b c"
    assert clean_text("2 < 3 and 5 > 4") == "2 < 3 and 5 > 4"


# ------------------------------------------------------------------ normalize_item


def test_dates_are_converted_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    article = norm(
        Item(
            title="t",
            link="https://x.example/1",
            published=datetime(2026, 11, 21, 7, 0, tzinfo=cet),
        )
    )
    assert article.published == datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    assert article.published.tzinfo == UTC


def test_missing_date_becomes_the_fetch_time() -> None:
    article = norm(Item(title="t", link="https://x.example/1"))
    assert article.published == FETCHED
    assert article.warnings == ()


def test_far_future_date_is_clamped_with_a_warning() -> None:
    future = NOW + timedelta(days=400)
    article = norm(Item(title="t", link="https://x.example/1", published=future))
    assert article.published == NOW
    assert len(article.warnings) == 1 and "in the future" in article.warnings[0]


def test_slightly_future_date_is_kept() -> None:
    # Clock skew between servers is normal; only beyond max_future is a date distrusted.
    soon = NOW + timedelta(hours=3)
    assert norm(Item(title="t", link="https://x.example/1", published=soon)).published == soon


def test_outlet_comes_from_the_item_for_aggregators_else_the_source() -> None:
    assert (
        norm(Item(title="t", link="https://x/1", outlet="Reuters"), outlet="News Search").outlet
        == "Reuters"
    )
    assert norm(Item(title="t", link="https://x/1")).outlet == "BIS"


def test_title_falls_back_to_first_words_then_link() -> None:
    words = " ".join(f"w{i}" for i in range(30))
    from_summary = norm(Item(summary=f"<p>{words}</p>", link="https://x.example/p"))
    assert from_summary.title == " ".join(f"w{i}" for i in range(12)) + "…"
    assert norm(Item(link="https://x.example/p")).title == "https://x.example/p"


def test_article_fields_are_cleaned_and_bounded() -> None:
    item = Item(
        title=" <b>BIS</b>\u200b rule ",
        link="https://x.example/a/?utm_source=rss",
        summary="<p>Summary &amp; more</p>",
        content="<p>" + "word " * 30_000 + "</p>",
        credit="Associated Press",
    )
    article = norm(item)
    assert article.title == "BIS rule"
    assert article.url == "https://x.example/a/?utm_source=rss"
    assert article.canonical_url == "https://x.example/a"
    assert article.summary == "Summary & more"
    assert len(article.text) == MAX_TEXT
    assert (article.owner, article.tier, article.credit) == (
        "us-gov",
        "primary",
        "Associated Press",
    )


def test_content_hash_is_the_same_for_the_same_content_at_another_url() -> None:
    a = norm(Item(title="Rule published", link="https://a.example/1", content="<p>Same text.</p>"))
    b = norm(Item(title="Rule  published", link="https://b.example/2", content="Same text."))
    c = norm(Item(title="Rule published", link="https://a.example/1", content="Other text."))
    assert a.content_hash == b.content_hash != c.content_hash


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            Item(guid="https://x.example/p/1", link="https://x.example/p/1?utm_source=a"),
            "https://x.example/p/1",
        ),
        (Item(guid="tag:x.example,2026:1", link="https://x.example/1"), "tag:x.example,2026:1"),
        (Item(guid="1234", link="https://x.example/1/"), "1234 https://x.example/1"),
        (Item(guid="1234", title="t"), "1234"),
        (Item(title="t", link="https://x.example/1?fbclid=z"), "https://x.example/1"),
    ],
)
def test_identity_key_falls_back_guid_then_guid_url_then_url(item: Item, expected: str) -> None:
    assert norm(item).guid == expected


def test_identity_key_of_an_item_without_guid_or_link_is_its_content() -> None:
    a = norm(Item(title="Same", summary="body"))
    b = norm(Item(title="Same", summary="body"))
    assert a.guid == b.guid and a.guid.startswith("sha256:")
    assert norm(Item(title="Other", summary="body")).guid != a.guid


def test_normalize_items_drops_items_with_nothing_to_show(caplog: pytest.LogCaptureFixture) -> None:
    items = [
        Item(title="kept", link="https://x/1"),
        Item(guid="only-a-guid"),
        Item(title=" \u200b ", author="x"),
    ]
    articles = normalize_items(items, **SOURCE, fetched_at=FETCHED, now=NOW)
    assert [a.title for a in articles] == ["kept"]
    assert "dropped 2 items" in caplog.text


# ------------------------------------------------------------------ any input at all

_INVISIBLE_CHARS = "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff\u00ad"
_MARKUP = st.sampled_from(
    ["<p>", "</p>", "<html>", "<script>", "&amp;", "&#0;", "<!--", "]]>", "<br/>", "\x00", "\ud800"]
)
_MESSY_TEXT = st.lists(
    st.text() | _MARKUP | st.sampled_from(list(_INVISIBLE_CHARS)), max_size=20
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_MESSY_TEXT)
def test_clean_text_of_any_input_is_clean(text: str) -> None:
    cleaned = clean_text(text)
    assert unicodedata.is_normalized("NFC", cleaned)
    assert not set(cleaned) & set(_INVISIBLE_CHARS)
    assert cleaned == cleaned.strip() and "  " not in cleaned
    cleaned.encode("utf-8")  # no lone surrogates: the store must be able to write it


_URL = st.builds(
    lambda scheme, host, rest: f"{scheme}://{host}{rest}",
    st.sampled_from(["http", "https", "HTTPS"]),
    st.sampled_from(
        ["example.com", "EXAMPLE.com:443", "example.com:80", "[::1]:8080", "exa\u200bmple.com"]
    ),
    st.text(alphabet="ab/?=&%2F+é#.~;:@[]", max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(_URL)
def test_canonical_url_is_idempotent_and_never_raises(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


@settings(max_examples=200, deadline=None)
@given(title=_MESSY_TEXT, link=_MESSY_TEXT | _URL, guid=_MESSY_TEXT)
def test_normalize_item_accepts_any_item(title: str, link: str, guid: str) -> None:
    article = norm(
        Item(title=title, link=link, guid=guid, summary=title, content=title, outlet=title)
    )
    for value in (article.title, article.url, article.guid, article.outlet, article.canonical_url):
        value.encode("utf-8")
