"""The lxml fast path for RSS 2.0 gives exactly what feedparser gives, or steps aside.

Every comparison runs the same `parse_feed` twice: once as it is, once with the fast path
switched off (so feedparser reads the feed), and asserts the two ParseResults are equal:
every Item field of every item, the feed title, the format and the warnings. No field is
exempt.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.sanitizer import _sanitize_html
from feedparser.urls import resolve_relative_uris
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import monitor.ingest.parse.feeds as feeds
from monitor.ingest.parse.rss import _clean_html, parse_rss20
from monitor.models import ParseResult
from tests.corpus import corpus_path
from tests.monitor.ingest.test_corpus_feeds import corpus_files

URL = "https://news.example/feed/rss"


def both_paths(body: bytes, content_type: str | None = None) -> tuple[ParseResult, ParseResult]:
    fast = feeds.parse_feed(body, url=URL, content_type=content_type)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feeds, "parse_rss20", lambda *args, **kwargs: None)
        slow = feeds.parse_feed(body, url=URL, content_type=content_type)
    return fast, slow


def accepted(body: bytes, content_type: str | None = None) -> bool:
    charset = feeds._charset(content_type)
    return parse_rss20(feeds._strip_leading_space(body), url=URL, charset=charset) is not None


def assert_same(fast: ParseResult, slow: ParseResult) -> None:
    assert len(fast.items) == len(slow.items)
    for number, (ours, theirs) in enumerate(zip(fast.items, slow.items, strict=True)):
        assert ours == theirs, f"item {number}"
    assert (fast.format, fast.title, fast.warnings) == (slow.format, slow.title, slow.warnings)


# ------------------------------------------------------------------ real feeds


@pytest.mark.parametrize("path", corpus_files())
def test_corpus_feed_same_items_on_both_paths(path: Path) -> None:
    body = path.read_bytes()
    fast, slow = both_paths(body)
    assert_same(fast, slow)


def test_the_fast_path_takes_most_plain_rss_of_the_corpus() -> None:
    # 16 of the corpus feeds (180 items) are plain enough; the others use Atom, RDF,
    # another encoding, xml:base, itunes:summary or media groups, and go to feedparser.
    corpus_path("feeds")  # skips (or fails under CI) when the corpus is absent
    taken = [p for p in corpus_files() if accepted(p.values[0].read_bytes())]
    assert len(taken) >= 16


def farm_feed(items: int = 50) -> bytes:
    from bench.farm import FeedSet

    corpus_path("clusters", "uci-headlines.jsonl")  # the farm's items are real headlines
    return FeedSet(1, items_per_feed=items).body(0)


def test_bench_farm_feed_takes_the_fast_path_with_the_same_items() -> None:
    body = farm_feed()
    assert accepted(body, "application/rss+xml")
    fast, slow = both_paths(body, "application/rss+xml")
    assert len(fast.items) == 50
    assert_same(fast, slow)


# ------------------------------------------------------------------ what is relied on later


def rss(items: str, *, head: str = '<?xml version="1.0" encoding="UTF-8"?>', ns: str = "") -> bytes:
    return (
        f'{head}\n<rss version="2.0"{ns}><channel><title>T &amp; U</title>'
        f"<link>https://news.example/</link>{items}</channel></rss>"
    ).encode()


def test_scripts_and_slack_control_sequences_are_handled_as_feedparser_does() -> None:
    body = rss(
        "<item><title>&lt;!channel&gt; Export &lt;b&gt;curbs&lt;/b&gt;</title>"
        "<link>/a/1?x=1&amp;y=2</link>"
        "<description><![CDATA[<p onclick='x()'>Text <script>alert(1)</script>"
        "<!here> <a href='/rel'>link</a> <iframe src='https://evil.example/'></iframe>"
        "</p>]]></description>"
        "<content:encoded><![CDATA[<img src='i.png'><style>p{}</style>&lt;!channel&gt;]]>"
        "</content:encoded></item>",
        ns=' xmlns:content="http://purl.org/rss/1.0/modules/content/"',
    )
    assert accepted(body)
    fast, slow = both_paths(body)
    assert_same(fast, slow)
    item = fast.items[0]
    assert "<script" not in item.summary and "alert(1)" not in item.summary
    assert "onclick" not in item.summary and "<iframe" not in item.summary
    assert 'href="https://news.example/rel"' in item.summary  # relative links resolved
    assert item.link == "https://news.example/a/1?x=1&y=2"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            rss(
                "<item><title>x</title></item>", head='<?xml version="1.0" encoding="ISO-8859-1"?>'
            ),
            None,
        ),
        (rss("<item><title>x</title></item>"), "application/rss+xml; charset=windows-1252"),
        (rss("<item><title>&nbsp;</title></item>"), None),  # undefined entity: malformed
        (rss("<item><title>&a;</title></item>", head='<!DOCTYPE rss [<!ENTITY a "b">]>'), None),
        (
            rss("<item><title>x</title></item>").replace(b"<channel>", b'<channel xml:base="/x/">'),
            None,
        ),
        (
            rss(
                "<item><itunes:summary>s</itunes:summary></item>",
                ns=' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"',
            ),
            None,
        ),
        (rss("<item><description>a</description><description>b</description></item>"), None),
        (rss("<item><title>x</title>"), None),  # truncated
        (rss("<item><title>a<!-- c -->b</title></item>"), None),
        (rss("<item><guid isPermaLink='true' foo='1'>g</guid></item>"), None),
        (rss("<item><title>x</title></item>").replace(b'"2.0"', b'"0.91"'), None),
    ],
)
def test_what_the_fast_path_leaves_to_feedparser(body: bytes, content_type: str | None) -> None:
    assert not accepted(body, content_type)
    fast, slow = both_paths(body, content_type)
    assert_same(fast, slow)


CASES = [
    # guid as link, and not
    "<item><guid>https://x.example/1</guid><title>g</title></item>",
    "<item><guid>/rel/1</guid></item>",
    "<item><guid isPermaLink='false'>/rel/1</guid></item>",
    "<item><guid isPermaLink='True'>/rel/1</guid></item>",
    "<item><link>https://a.example/</link><guid>https://b.example/</guid></item>",
    "<item><guid>https://b.example/</guid><link>https://a.example/</link></item>",
    # titles: the first non-empty wins, an empty one does not block, <source> resets
    "<item><title></title><title>second</title><title>third</title></item>",
    "<item><title>one</title><source url='https://r.example'>Reuters</source><title>two</title></item>",
    "<item><title>AT&amp;T &amp;amp; co &lt;b&gt;bold&lt;/b&gt;</title></item>",
    "<item><title type='html'>&lt;i&gt;x&lt;/i&gt;</title></item>",
    "<item><title>caf\u00c3\u00a9 \u0093quoted\u0094</title></item>",
    "<item><title>  spaced \r\n title  </title></item>",
    "<item><title>&#13;&#10;x&#13;&#10;</title><description>&#13;&#10;a&#13;&#10;b&#13;&#10;</description></item>",
    # summary and content in both orders
    "<item><description>d</description><content:encoded>&lt;p&gt;c&lt;/p&gt;</content:encoded></item>",
    "<item><content:encoded>&lt;p&gt;c&lt;/p&gt;</content:encoded><description>d</description></item>",
    "<item><content:encoded>only</content:encoded></item>",
    "<item><description type='text'>&lt;b&gt;x&lt;/b&gt; &amp;amp;</description></item>",
    # dates
    "<item><pubDate>Sat, 21 Nov 2026 08:00:00 +0000</pubDate><dc:date>2026-11-20T10:00:00Z</dc:date></item>",
    "<item><dc:date>2026-11-20T10:00:00+02:00</dc:date></item>",
    "<item><pubDate>Seg, 24 Set 2018 19:42:40 -0300</pubDate></item>",
    "<item><pubDate>not a date</pubDate></item>",
    # people, outlets, credits
    "<item><author>a@b.example (A. Writer)</author><dc:creator>B. Writer</dc:creator></item>",
    "<item><dc:publisher>Publisher</dc:publisher><dc:source>Associated Press</dc:source></item>",
    "<item><source>No URL</source></item>",
    # links
    "<item><link></link><atom:link href='/alt' rel='alternate'/></item>",
    "<item><atom:link href='https://a.example/self' rel='self'/><link>https://a.example/x</link></item>",
    "<item><atom:link href='/enc' rel='enclosure'/></item>",
    "<item><enclosure url='https://a.example/a.mp3' type='audio/mpeg'/><comments>/c</comments></item>",
    # elements feedparser has no handler for
    "<item><foo:bar>x</foo:bar><slash:comments>3</slash:comments><title>t</title></item>",
]
NAMESPACES = (
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"'
    ' xmlns:foo="urn:example:foo" xmlns:slash="http://purl.org/rss/1.0/modules/slash/"'
)


@pytest.mark.parametrize("item", CASES)
def test_feedparser_quirks_are_reproduced(item: str) -> None:
    body = rss(item, ns=NAMESPACES)
    assert accepted(body)
    assert_same(*both_paths(body))


CHANNELS = [
    "<title>second</title><item><title>i</title></item>",
    "<item><title>i</title></item><title>after items</title>",
    "<image><title>logo</title><url>https://x.example/l.png</url></image><title>t</title>",
    "<dc:title>dc</dc:title>",
    "<atom:link href='https://news.example/feed/rss' rel='self' type='application/rss+xml'/>",
    "<textInput><title>search</title><name>q</name></textInput><item/>",
    "<description>&lt;b&gt;about&lt;/b&gt;</description><content:encoded>c</content:encoded>"
    "<item><description>d</description></item>",
]


@pytest.mark.parametrize(
    "channel",
    [
        "<media:title>media</media:title>",
        "<image><foo>x</foo><title>logo</title></image>",
        "<textInput><foo/><title>search</title></textInput>",
        "<cloud><title>nested</title></cloud>",
    ],
)
def test_channel_elements_that_could_change_the_feed_title_go_to_feedparser(channel: str) -> None:
    body = rss(channel, ns=NAMESPACES + ' xmlns:media="http://search.yahoo.com/mrss/"')
    assert not accepted(body)
    assert_same(*both_paths(body))


@pytest.mark.parametrize("channel", CHANNELS)
def test_channel_elements_around_the_items(channel: str) -> None:
    body = rss(channel, ns=NAMESPACES)
    assert accepted(body)
    assert_same(*both_paths(body))


@pytest.mark.parametrize(
    "declarations",
    [
        ' xmlns:dc="http://purl.org/dc/elements/1.1"',  # no trailing slash: still dc_ to feedparser
        ' xmlns:DC="http://purl.org/dc/elements/1.1/"',
        ' xmlns:cc="http://cyber.law.harvard.edu/rss/creativeCommonsRssModule.html"',
        ' xmlns:dc="urn:not-dublin-core"',
    ],
)
def test_namespace_prefixes_name_elements_as_feedparser_does(declarations: str) -> None:
    prefix = declarations.split(":")[1].split("=")[0]
    body = rss(
        f"<item><{prefix}:creator>c</{prefix}:creator><title>t</title></item>", ns=declarations
    )
    assert_same(*both_paths(body))


# ------------------------------------------------------------------ generated feeds

# Pieces of element content: plain text (escaped when written) and raw XML markup.
PLAIN = st.lists(
    st.sampled_from(
        [*"abcXY \n\t<>&;#/=\"'!-:.?", "é", "\u00c3", "\u00a9", "\u0093", "\u2019", "\r\n",
         "&amp;", "&lt;", "<b>", "</b>", "<script>", "</script>", "<p class='x'>", "<a href='/r'>",
         "</a>", "<!channel>", "https://x.example/a?b=1&c=2"]
    ),
    max_size=12,
).map("".join)  # fmt: skip
RAW = st.sampled_from(
    ["&amp;", "&lt;b&gt;", "&lt;/b&gt;", "&#38;", "&#x2014;", "&#13;", "&#147;", "&amp;amp;",
     "&amp;nbsp;", "&amp;bogus;", "<![CDATA[<i>x</i> & y]]>", "&#60;script&#62;"]
)  # fmt: skip
CONTENT = st.lists(st.one_of(PLAIN.map(escape), RAW), max_size=4).map("".join)


ELEMENT = st.sampled_from(
    [
        "title", "title", "link", "link", "description", "description", "guid", "pubDate",
        "author", "source", "category", "enclosure", "comments", "image", "modified",
        "content:encoded", "dc:creator", "dc:date", "dc:publisher", "dc:source", "dc:title",
        "atom:link", "atom:title", "atom:updated", "media:title", "media:content",
        "itunes:author", "itunes:subtitle", "foo:bar", "slash:comments",
    ]
)  # fmt: skip
ATTRIBUTE = st.sampled_from(
    ["", "", "", "", "", "", " isPermaLink='false'", " isPermaLink='true'", " isPermaLink='no'",
     " url='https://s.example/'", " url=''", " type='html'", " type='text'", " type='TEXT/HTML'",
     " type='xhtml'", " href='/h'", " href=''", " rel='alternate'", " rel='self' href='/s'",
     " rel='enclosure' href='/e'", " domain='d'", " xml:lang='en'"]
)  # fmt: skip


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    items = []
    for _ in range(draw(st.integers(1, 3))):
        children = []
        for _ in range(draw(st.integers(0, 6))):
            tag = draw(ELEMENT)
            children.append(f"<{tag}{draw(ATTRIBUTE)}>{draw(CONTENT)}</{tag}>")
        items.append("<item>" + "".join(children) + "</item>")
    return rss(
        "".join(items),
        ns=NAMESPACES
        + ' xmlns:media="http://search.yahoo.com/mrss/"'
        + ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"',
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_feeds_give_the_same_items(body: bytes) -> None:
    assert_same(*both_paths(body))


def test_feedparser_maps_only_c1_controls_to_windows_1252() -> None:
    # monitor.ingest.parse.rss skips that step (and the Latin-1 round trip) for ASCII text.
    assert all(128 <= code < 160 for code in _cp1252)


def test_feedparser_cleans_the_same_elements_it_resolves_links_in() -> None:
    # monitor.ingest.parse.rss runs both HTML passes on one set of elements.
    assert (
        _FeedParserMixin.can_contain_dangerous_markup == _FeedParserMixin.can_contain_relative_uris
    )


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(blacklist_characters="<&", blacklist_categories=["Cs"]), max_size=60))
def test_text_without_markup_passes_the_html_steps_unchanged(text: str) -> None:
    expected = _sanitize_html(
        resolve_relative_uris(text, URL, "utf-8", "text/html"), "utf-8", "text/html"
    )
    assert _clean_html(text, URL, "text/html") == expected
