"""Normalise stage: raw items → clean, attributed articles.

Canonical URLs, HTML to clean text (Unicode NFC, invisible characters removed), dates in
UTC, an identity key and a content hash for exact dedup. Pure functions: the clock comes
in as `now`, and bad input gives a warning on the article, never an exception.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import lxml.etree
import lxml.html
from w3lib.url import canonicalize_url

from monitor.models import Article, Item

log = logging.getLogger(__name__)

MAX_TITLE = 1_000
MAX_SUMMARY = 10_000
MAX_TEXT = 100_000
MAX_INPUT = 1_000_000  # HTML beyond this is cut before parsing, to bound the work
TITLE_FALLBACK_WORDS = 12
MAX_UNESCAPES = 3  # &amp;amp;lt; is as deep as real feeds go

# Query parameters that identify a campaign or a click, never the article.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "twclid", "igshid",
        "mc_cid", "mc_eid", "mkt_tok", "ref", "ref_src", "ref_url", "referrer", "cmpid",
        "cmp", "ocid", "ncid", "smid", "sr_share", "_ga", "_gl", "spm", "soc_src",
        "soc_trk", "at_medium", "at_campaign", "guccounter", "guce_referrer",
        "guce_referrer_sig", "__twitter_impression", "oly_anon_id", "oly_enc_id", "rss",
        "ito", "wt.mc_id", "cid", "s_cid", "campaign_id",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "itm_")
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Zero-width characters, bidi controls, BOM and soft hyphen: invisible, but they split
# words for search and dedup ("export\u200bcontrols") and can disguise text (bidi).
_INVISIBLE = dict.fromkeys(
    [
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2065),
        *range(0x2066, 0x206A),
        0xFEFF,
        0x00AD,
    ]
)
# Other control characters (C0 except whitespace, C1: what a mis-declared encoding leaves).
_CONTROLS = dict.fromkeys(
    [c for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(c) not in "\t\n\r\f\v"]
)
# Lone surrogates (JSON "\\ud800" escapes) cannot even be encoded as UTF-8.
_SURROGATES = dict.fromkeys(range(0xD800, 0xE000))
_STRIP_TABLE = {**_INVISIBLE, **_CONTROLS, **_SURROGATES}
_SPACE = re.compile(r"\s+")
_LOOKS_LIKE_HTML = re.compile(r"<[a-zA-Z!/]")
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "object", "svg", "head")
# Elements that separate words; text on either side must not be glued together.
# fmt: off
_BLOCK_TAGS = frozenset((
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
))
# fmt: on


def canonical_url(url: str) -> str:
    """A stable form of `url` for dedup: same article, same string.

    Lowercase scheme and host, no default port, no fragment, no tracking parameters, the
    rest of the query sorted, percent-encoding normalised (w3lib), no trailing slash
    except for the root. Non-http(s) input comes back stripped but otherwise unchanged.
    Idempotent: canonical_url(canonical_url(u)) == canonical_url(u).
    """
    url = url.strip()
    try:
        # Odd inputs (empty ";params", "%" without hex digits) settle only after a second
        # pass through w3lib; stop at the fixed point so the result is stable.
        for _ in range(3):
            canonical = _canonical(url)
            if canonical == url:
                break
            url = canonical
        return url
    except ValueError:  # "Invalid IPv6 URL", a port out of range: not ours to repair
        return url.strip()


def _canonical(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return url
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    )
    url = canonicalize_url(
        urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")), keep_fragments=False
    )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    netloc = host if ":" not in host else f"[{host}]"  # IPv6 literals keep their brackets
    if parts.port is not None and parts.port != _DEFAULT_PORTS[scheme]:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def clean_text(html_or_text: str) -> str:
    """HTML or plain text → one line of clean text.

    Scripts and styles dropped, entities unescaped, Unicode NFC, zero-width and bidi
    control characters removed, whitespace collapsed.
    """
    # Invisible and control characters go first: lxml refuses text that contains them.
    text = html_or_text[:MAX_INPUT].translate(_STRIP_TABLE)
    # Feeds often escape twice ("&amp;#8217;", "&amp;lt;p&amp;gt;"), and entities may spell
    # invisible characters ("&#8203;"): unescape until nothing changes — but extraction is
    # always the last step, so markup that an unescape reveals ("&amp;lt;script&amp;gt;"
    # becoming "<script>") is taken out, never stored as text that looks like markup.
    for _ in range(MAX_UNESCAPES):
        if _LOOKS_LIKE_HTML.search(text):
            text = _html_to_text(text)
        unescaped = html.unescape(text).translate(_STRIP_TABLE)
        if unescaped == text:
            break
        text = unescaped
    if _LOOKS_LIKE_HTML.search(text):
        text = _html_to_text(text)
    text = unicodedata.normalize("NFC", text)
    return _SPACE.sub(" ", text).strip()


def _html_to_text(markup: str) -> str:
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
        for element in list(root.iter(*_DROP_TAGS)):
            element.drop_tree()  # keeps the tail text that follows the element
        for element in root.iter(lxml.etree.Element):
            if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
                element.tail = " " + (element.tail or "")
                element.text = " " + (element.text or "")
        return str(root.text_content())
    except Exception:  # lxml's parser has asserts and odd errors on fragments like "<html>"
        return re.sub(r"<[^>]*>", " ", markup)  # unparseable: strip tags, keep the words


def normalize_item(
    item: Item,
    *,
    source_id: str,
    outlet: str,
    owner: str,
    tier: str,
    fetched_at: datetime,
    now: datetime,
    max_future: timedelta = timedelta(days=1),
) -> Article:
    """Clean one item and attribute it: to the outlet the item names (aggregators) or the source's."""
    warnings: list[str] = []
    link = _http_link(_clean_token(item.link), warnings)
    canonical = canonical_url(link) if link else ""
    summary = clean_text(item.summary)[:MAX_SUMMARY]
    text = clean_text(item.content)[:MAX_TEXT]
    title = clean_text(item.title)[:MAX_TITLE] or _fallback_title(summary or text, link)
    given = _clean_token(item.canonical)
    given_canonical = canonical_url(given) if given else ""
    return Article(
        source_id=source_id,
        outlet=clean_text(item.outlet) or outlet,
        url=link,
        canonical_url=canonical,
        title=title,
        summary=summary,
        text=text,
        published=_published(item.published, fetched_at, now, max_future, warnings),
        fetched=_utc(fetched_at),
        guid=identity_key(_clean_token(item.guid), _with_naming_fragment(canonical, link), title, text or summary),
        owner=owner,
        tier=tier,
        credit=clean_text(item.credit),
        canonical_link=given_canonical if given_canonical != canonical else "",
        content_hash=content_hash(title, text or summary),
        warnings=tuple(warnings),
    )


def _clean_token(value: str) -> str:
    """A link or GUID: no invisible or control characters, no surrounding space."""
    return value.translate(_STRIP_TABLE).strip()


def _http_link(link: str, warnings: list[str]) -> str:
    """Only http(s) links are article URLs: javascript:, vbscript:, data: and tag: are not
    pages anyone can open (and some are attacks on whoever clicks them)."""
    if not link:
        return ""
    try:
        scheme = urlsplit(link).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme in _DEFAULT_PORTS:
        return link
    shown = link[:60] + ("…" if len(link) > 60 else "")
    warnings.append(f"link {shown!r} is not an http(s) URL: the item has no link")
    return ""


# Fragments that point inside one article rather than naming another item.
_NOISE_FRAGMENTS = frozenset(
    {"", "comments", "comment", "respond", "reply", "more", "top", "main", "content",
     "disqus_thread", "page", "start", "article", "story", "full", "continue", "print"}
)  # fmt: skip


def _with_naming_fragment(canonical: str, link: str) -> str:
    """The canonical URL, plus the link's fragment when it names an item (#item-17,
    #!/news/3): a feed whose items differ only by fragment lists different items. Tracking
    (#xtor=RSS-1) and in-page anchors (#comments, #more-123) name nothing."""
    if not canonical or "#" not in link:
        return canonical
    fragment = link.split("#", 1)[1].strip()
    lowered = fragment.lower()
    if "=" in fragment or lowered in _NOISE_FRAGMENTS or lowered.startswith(("more-", "comment-", "utm")):
        return canonical
    return f"{canonical}#{fragment[:200]}"


def normalize_items(
    items: Iterable[Item],
    *,
    source_id: str,
    outlet: str,
    owner: str,
    tier: str,
    fetched_at: datetime,
    now: datetime,
    max_future: timedelta = timedelta(days=1),
) -> list[Article]:
    """Normalise every item, dropping (with a logged warning) items with neither title nor link."""
    articles: list[Article] = []
    dropped = 0
    for item in items:
        if not (
            _clean_token(item.link)
            or clean_text(item.title)
            or clean_text(item.summary)
            or clean_text(item.content)
        ):
            dropped += 1
            continue
        articles.append(
            normalize_item(
                item,
                source_id=source_id,
                outlet=outlet,
                owner=owner,
                tier=tier,
                fetched_at=fetched_at,
                now=now,
                max_future=max_future,
            )
        )
    if dropped:
        log.warning("source %s: dropped %d items with neither title nor link", source_id, dropped)
    return articles


def _fallback_title(text: str, link: str) -> str:
    """Title-less items (microblog posts, some JSON Feeds): the first words, else the link."""
    words = text.split()
    if not words:
        return link
    head = " ".join(words[:TITLE_FALLBACK_WORDS])
    return head + "…" if len(words) > TITLE_FALLBACK_WORDS else head


def _published(
    value: datetime | None,
    fetched_at: datetime,
    now: datetime,
    max_future: timedelta,
    warnings: list[str],
) -> datetime:
    if value is None:
        return _utc(fetched_at)  # no date: the fetch time is the best bound we have
    value = _utc(value)
    if value > _utc(now) + max_future:
        warnings.append(
            f"date {value.isoformat()} is in the future; clamped to {_utc(now).isoformat()}"
        )
        return _utc(now)
    return value


def _utc(value: datetime) -> datetime:
    """Aware → UTC; naive is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def content_hash(title: str, text: str) -> str:
    """sha256 of the normalised title and text: equal content, equal hash, whatever the URL."""
    normalized = f"{title.casefold()}\n{text.casefold()}"
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def identity_key(guid: str, canonical: str, title: str, text: str) -> str:
    """The item's identity for exact dedup, falling back GUID → GUID+URL → URL → title+content.

    As in miniflux: a GUID is the publisher's own identity and survives URL changes, so it
    comes first. But a bare GUID such as "1234" is only unique inside one feed, and some
    CMSs reuse such numbers across sites, so an opaque GUID is paired with the URL. With no
    GUID the canonical URL is the identity (with a fragment that names an item, see
    `_with_naming_fragment`), and with neither the content itself is.
    """
    if guid and (not canonical or _is_global_id(guid)):
        return guid
    if guid:
        return f"{guid} {canonical}"
    if canonical:
        return canonical
    return "sha256:" + content_hash(title, text)


def _is_global_id(guid: str) -> bool:
    """URLs, tag: and urn: URIs name themselves globally; bare tokens do not."""
    return "://" in guid or guid.lower().startswith(("tag:", "urn:"))
