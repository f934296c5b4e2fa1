"""A fast path for plain, well-formed RSS 2.0: lxml reads the tree, feedparser's rules the text.

feedparser costs ~20-40 ms of CPU for a 50-item feed, nearly all of it in its SAX handler
machinery, not in what it does to the text. This module gives, for the feeds it accepts,
exactly the entries feedparser would give for the keys `feeds._item_from_entry` reads:
the document is parsed once with lxml, and every value goes through the steps of
feedparser's `pop()` in the same order, calling feedparser's own functions (URL joining,
relative links inside HTML, the HTML sanitiser, date parsing), so sanitisation is the same
code as before.

It only says yes when it is sure; anything else returns None and the caller uses
feedparser: another encoding than UTF-8, a DOCTYPE, xml:base, namespace prefixes that
feedparser would map in surprising ways, an element inside an item that feedparser has a
handler for but this module does not (iTunes, Media RSS, Atom links...), an item child with
children of its own or with attributes that change its meaning, a second description.
`tests/monitor/test_parse_fast_rss.py` checks, feed by feed and item by item, that both
paths agree on every corpus feed the fast path accepts, on feedparser's quirks and on
generated feeds. The module mirrors feedparser 6.0's handlers and uses some of its private
functions: after a feedparser upgrade, those tests are what says whether it still agrees.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from typing import Any

import lxml.etree
from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.sanitizer import _sanitize_html
from feedparser.urls import _urljoin, make_safe_absolute_uri, resolve_relative_uris

Entry = dict[str, Any]

_UTF8 = ("utf-8", "utf8")
_XML_ENCODING = re.compile(rb"^<\?.*encoding=['\"](.*?)['\"].*\?>")  # feedparser's own regex
_XMLNS = re.compile(rb"""\bxmlns(?::([^\s=>/]+))?\s*=\s*(["'])(.*?)\2""", re.DOTALL)
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_KNOWN_NAMESPACES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
# Declared anywhere, these set the feed's version before <rss> can.
_SETS_VERSION = ("http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/")
_ENTITY_REF = re.compile(r"&([A-Za-z0-9_]+);")
_PARSERS = threading.local()  # an lxml parser must not be used by two threads at once

# Keys of an entry `_item_from_entry` reads (or that shadow one): an element feedparser has
# no handler for is stored under its own name, which must not be one of these.
_OUR_KEYS = frozenset(
    {
        "title", "link", "links", "id", "summary", "content", "published", "updated",
        "created", "published_parsed", "updated_parsed", "created_parsed", "author",
        "source", "publisher", "dc_source",
    }
)  # fmt: skip
# Item children feedparser has a handler for that only touch keys we do not read.
_IGNORED = frozenset(
    {
        "category", "dc_subject", "enclosure", "subtitle", "itunes_subtitle", "itunes_image",
        "itunes_explicit", "itunes_keywords", "itunes_category", "media_content",
        "media_thumbnail",
    }
)  # fmt: skip


def parse_rss20(body: bytes, *, url: str, charset: str | None) -> tuple[str, list[Entry]] | None:
    """(feed title, entries as feedparser would give them), or None when not sure."""
    root = _parse(body, charset)
    if root is None or root.tag != "rss" or not root.get("version", "").startswith("2."):
        return None
    names = _element_names(body)
    if names is None:
        return None
    channels = [child for child in root if isinstance(child.tag, str)]
    if len(channels) != 1 or channels[0].tag != "channel":
        return None
    base = _base_uri(url)
    if base is None or not _plain_tree(root, channels[0]):
        return None
    return _read_channel(channels[0], names, base)


def _parse(body: bytes, charset: str | None) -> Any:
    """The root element when the document is UTF-8 without a DTD, else None."""
    if charset is not None and charset.lower() not in _UTF8:
        return None
    declared = _XML_ENCODING.match(body.removeprefix(b"\xef\xbb\xbf"))
    if declared and declared.group(1).decode("latin-1").lower() not in _UTF8:
        return None
    try:
        body.decode("utf-8")
        tree = lxml.etree.ElementTree(lxml.etree.fromstring(body, _parser()))
    except (UnicodeDecodeError, lxml.etree.XMLSyntaxError, ValueError):
        return None
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or (info.encoding or "").lower() not in _UTF8:
        return None
    return tree.getroot()


def _parser() -> lxml.etree.XMLParser:
    parser: lxml.etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = lxml.etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
    return parser


def _plain_tree(root: Any, channel: Any) -> bool:
    """No xml:base, only ASCII names (expat and libxml2 agree on those), items only in the
    channel, and no entity references left in the tree."""
    items = 0
    for element in root.iter():
        tag = element.tag
        if not isinstance(tag, str):
            if tag is lxml.etree.Entity:
                return False
            continue
        attributes = element.attrib
        if not tag.isascii() or _XML_BASE in attributes or "base" in attributes:
            return False
        if attributes and not all(name.isascii() for name in attributes):
            return False
        if tag.rsplit("}", 1)[-1].lower() in ("item", "entry"):
            items += 1
    return items == sum(1 for child in channel if child.tag == "item")


# ------------------------------------------------------------------ element names


class _Names:
    """Element → the name feedparser dispatches on ("title", "dc_creator", "content_encoded")."""

    def __init__(self, unknown_prefixes: dict[str, str]) -> None:
        self.unknown_prefixes = unknown_prefixes  # namespace URI → the document's prefix
        self.cache: dict[str, str] = {}

    def __call__(self, tag: str) -> str:
        name = self.cache.get(tag)
        if name is None:
            name = self.cache[tag] = self._name(tag)
        return name

    def _name(self, tag: str) -> str:
        if not tag.startswith("{"):
            return tag.lower()
        namespace, local = tag[1:].split("}", 1)
        lowered = namespace.lower()
        if "backend.userland.com/rss" in lowered:
            return local.lower()  # feedparser folds these into plain RSS
        prefix = _KNOWN_NAMESPACES.get(lowered)
        if prefix is None:
            prefix = self.unknown_prefixes.get(namespace, "")
        return f"{prefix}_{local}".lower() if prefix else local.lower()


def _element_names(body: bytes) -> _Names | None:
    """feedparser names elements by the namespace declarations in document order; accept
    only documents where that order cannot matter: each prefix stands for one namespace,
    each unknown namespace has one prefix, and no prefix is renamed to a standard prefix
    that another declared namespace uses."""
    by_prefix: dict[str, str] = {}
    unknown: dict[str, str] = {}
    unknown_defaults: set[str] = set()
    renamed: set[str] = set()  # prefixes feedparser maps to another (standard) prefix
    standards: set[str] = set()  # standard prefixes of the known namespaces declared
    for raw_prefix, _quote, raw_uri in _XMLNS.findall(body):
        prefix = raw_prefix.decode("utf-8", "replace")
        uri = raw_uri.decode("utf-8", "replace")
        lowered = uri.lower()
        if "&" in uri or by_prefix.setdefault(prefix.lower(), uri) != uri:
            return None
        if "backend.userland.com/rss" in lowered or lowered in _SETS_VERSION:
            return None
        standard = _KNOWN_NAMESPACES.get(lowered)
        if standard is None:
            if not prefix:
                unknown_defaults.add(uri)
            elif unknown.setdefault(uri, prefix) != prefix:
                return None
        elif prefix and standard != prefix:
            renamed.add(prefix.lower())
        if standard:
            standards.add(standard.lower())
    if unknown_defaults & unknown.keys() or renamed & standards:
        return None
    return _Names(unknown)


# ------------------------------------------------------------------ channel and items


def _base_uri(url: str) -> str | None:
    """The base feedparser resolves against, or None if it would change from tag to tag."""
    base = make_safe_absolute_uri("", url) or make_safe_absolute_uri(url) or ""
    if not base:
        return base
    # Every start tag joins the base with itself: accept only a fixed point of that.
    joined = make_safe_absolute_uri(base, base) or base
    return joined if (make_safe_absolute_uri(joined, joined) or joined) == joined else None


def _read_channel(channel: Any, names: _Names, base: str) -> tuple[str, list[Entry]] | None:
    title = ""
    title_set = False  # feedparser keeps the first non-empty title until an item resets it
    entries: list[Entry] = []
    for child in channel:
        if not isinstance(child.tag, str):
            continue
        name = names(child.tag)
        if name == "item":
            title_set = False
            entry = _read_item(child, names, base)
            if entry is None:
                return None
            entries.append(entry)
        elif name in ("title", "dc_title"):
            if child.attrib or len(child):
                return None
            if not title_set:
                title = _pop(_text(child), "title", base, "text/plain")
                title_set = bool(title)
        elif name == "media_title" or not _keeps_titles_inside(child, name, names):
            return None  # feedparser could make it the feed's title
        elif name in ("entry", "source", "image", "textinput"):
            title_set = False
    return title, entries


# Inside <image> and <textInput>, a child without a prefix and not in these lists makes
# feedparser forget it is in one, and a title after it becomes the feed's title.
_STAYS_IN = {
    "image": frozenset({"title", "link", "description", "url", "href", "width", "height"}),
    "textinput": frozenset({"title", "link", "description", "name"}),
}
_TITLES = frozenset({"title", "dc_title", "media_title"})


def _keeps_titles_inside(element: Any, name: str, names: _Names) -> bool:
    """True when no title inside this channel child can land in the feed's title."""
    if name == "source":
        return True  # titles inside go to the source
    titles = any(
        isinstance(d.tag, str) and names(d.tag) in _TITLES for d in element.iterdescendants()
    )
    if not titles:
        return True
    stays = _STAYS_IN.get(name)
    return stays is not None and all(
        isinstance(child.tag, str) and not len(child) and names(child.tag) in stays
        for child in element
    )


def _read_item(item: Any, names: _Names, base: str) -> Entry | None:
    if item.attrib:
        return None  # rdf:about, lastmod and href attributes become fields
    entry: Entry = {}
    state = _ItemState()
    for child in item:
        if not isinstance(child.tag, str):
            continue
        if len(child):
            return None
        name = names(child.tag)
        handler = _HANDLERS.get(name)
        if handler is not None:
            if not handler(child, entry, state, base):
                return None
        elif name not in _IGNORED and not _harmless_unknown(name):
            return None
    return entry


class _ItemState:
    __slots__ = ("descriptions", "title_set")

    def __init__(self) -> None:
        self.title_set = False
        self.descriptions = 0


def _harmless_unknown(name: str) -> bool:
    """An element feedparser has no handler for lands under its own name in the entry."""
    return (
        name not in _OUR_KEYS
        and not hasattr(_FeedParserMixin, f"_start_{name}")
        and not hasattr(_FeedParserMixin, f"_end_{name}")
    )


def _text(element: Any) -> str:
    return element.text or ""


# Each handler mirrors feedparser's _start_X/_end_X for one element with no children; it
# returns False when the element has attributes that would change what feedparser does.
Handler = Callable[[Any, Entry, _ItemState, str], bool]


def _title(element: Any, entry: Entry, state: _ItemState, base: str) -> bool:
    content_type = _content_type(element, "text/plain")
    if content_type is None:
        return False
    if not state.title_set:  # feedparser's title_depth: the first non-empty title wins
        entry["title"], _ = _pop_content(_text(element), "title", base, content_type)
        state.title_set = bool(entry["title"])
    return True


def _media_title(element: Any, entry: Entry, state: _ItemState, base: str) -> bool:
    content_type = _content_type(element, "text/plain")
    if content_type is None:
        return False
    if not state.title_set:  # a title like <title>, but it never blocks a later one
        entry["title"], _ = _pop_content(_text(element), "title", base, content_type)
    return True


def _link(element: Any, entry: Entry, state: _ItemState, base: str) -> bool:
    attributes = _attributes(element)
    if attributes is None:
        return False
    # feedparser's _start_link, then _end_link (which only reads text without an href)
    attributes.setdefault("rel", "alternate")
    attributes.setdefault(
        "type", "application/atom+xml" if attributes["rel"] == "self" else "text/html"
    )
    href = attributes.get("url", attributes.get("uri", attributes.get("href")))
    if href:
        attributes.pop("url", None)
        attributes.pop("uri", None)
        attributes["href"] = href
    links = entry.setdefault("links", [])
    links.append(attributes)
    if "href" in attributes:
        attributes["href"] = _urljoin(base, attributes["href"])
        if attributes["rel"] == "alternate" and _is_html_type(attributes["type"]):
            entry["link"] = attributes["href"]
        return True
    output = _pop(_text(element), "link", base, None)
    output = _ENTITY_REF.sub(r"&\g<1>", output.replace("&amp;", "&"))
    entry["link"] = output
    if output:
        attributes["href"] = output
    return True


def _description(element: Any, entry: Entry, state: _ItemState, base: str) -> bool:
    state.descriptions += 1
    content_type = _content_type(element, "text/html")
    if content_type is None or state.descriptions > 1:
        return False  # a second description becomes content in feedparser, with side effects
    entry["summary"], _ = _pop_content(_text(element), "description", base, content_type)
    return True


def _content_encoded(element: Any, entry: Entry, state: _ItemState, base: str) -> bool:
    content_type = _content_type(element, "text/html")
    if content_type is None:
        return False
    value, content_type = _pop_content(_text(element), "content", base, content_type)
    entry.setdefault("content", []).append({"type": content_type, "value": value})
    entry.setdefault("summary", value)
    return True


def _guid(element: Any, entry: Entry, state: _ItemState, base: str) -> bool:
    attributes = _attributes(element)
    if attributes is None or set(attributes) - {"ispermalink"}:
        return False
    is_link = attributes.get("ispermalink", "true") == "true"
    value = _pop(_text(element), "id" if is_link else "guid", base, None)
    entry["id"] = value
    if is_link:
        entry.setdefault("link", value)
    return True


def _source(element: Any, entry: Entry, state: _ItemState, base: str) -> bool:
    attributes = _attributes(element)
    if attributes is None or set(attributes) - {"url"}:
        return False
    state.title_set = False
    source: dict[str, str] = {}
    if "url" in attributes:
        source["href"] = attributes["url"]
    value = _pop(_text(element), "source", base, None)
    if value:
        source["title"] = value
    entry["source"] = source
    return True


def _image(element: Any, entry: Entry, state: _ItemState, base: str) -> bool:
    state.title_set = False  # an <image> in an item only resets feedparser's title_depth
    return True


def _simple(key: str, date: bool = False) -> Handler:
    def handle(element: Any, entry: Entry, state: _ItemState, base: str) -> bool:
        if element.attrib:
            return False
        entry[key] = value = _pop(_text(element), key, base, None)
        if date:
            entry[f"{key}_parsed"] = _parse_date(value)
        return True

    return handle


def _attributes(element: Any) -> dict[str, str] | None:
    """Attributes as feedparser sees them (lower-case names; rel and type values lower-case),
    or None when one has a namespace."""
    attributes: dict[str, str] = {}
    for name, value in element.attrib.items():
        if name.startswith("{"):
            return None
        name = name.lower()
        attributes[name] = value.lower() if name in ("rel", "type") else value
    return attributes


def _content_type(element: Any, default: str) -> str | None:
    """The type feedparser's push_content gives the element, if it is one we handle."""
    attributes = _attributes(element)
    if attributes is None or set(attributes) - {"type"}:
        return None
    content_type = _map_content_type(attributes.get("type", default))
    return content_type if content_type in ("text/plain", "text/html") else None


def _map_content_type(content_type: str) -> str:
    content_type = content_type.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html"}.get(
        content_type, "application/xhtml+xml" if content_type == "xhtml" else content_type
    )


def _is_html_type(content_type: str) -> bool:
    return _map_content_type(content_type) in _FeedParserMixin.html_types


_HANDLERS: dict[str, Handler] = {
    "title": _title,
    "dc_title": _title,
    "media_title": _media_title,
    "image": _image,
    "link": _link,
    "description": _description,
    "dc_description": _description,
    "content_encoded": _content_encoded,
    "guid": _guid,
    "source": _source,
    "author": _simple("author"),
    "dc_creator": _simple("author"),
    "dc_author": _simple("author"),
    "itunes_author": _simple("author"),
    "dc_publisher": _simple("publisher"),
    "dc_source": _simple("dc_source"),  # no handler in feedparser: stored under its name
    "pubdate": _simple("published", date=True),
    "published": _simple("published", date=True),
    "issued": _simple("published", date=True),
    "updated": _simple("updated", date=True),
    "modified": _simple("updated", date=True),
    "created": _simple("created", date=True),
    "dcterms_issued": _simple("published", date=True),
    "dc_date": _simple("updated", date=True),
    "dcterms_modified": _simple("updated", date=True),
    "dcterms_created": _simple("created", date=True),
}


# ------------------------------------------------------------------ feedparser's pop()

_RELATIVE_URI_ELEMENTS = _FeedParserMixin.can_be_relative_uri
# feedparser resolves links inside, then sanitises, the same elements (a test checks).
_HTML_ELEMENTS = _FeedParserMixin.can_contain_dangerous_markup


def _pop(text: str, element: str, base: str, content_type: str | None) -> str:
    """What feedparser's `pop()` makes of an element's text, in its order of steps.

    `element` is feedparser's name for it ("id" for a guid that is a permalink, "guid"
    stands for one that is not); `content_type` is None for elements that are not content.
    """
    output = text.strip()
    if element in _RELATIVE_URI_ELEMENTS and output:
        output = _urljoin(base, output)
    if content_type == "text/plain" and _FeedParserMixin.looks_like_html(output):
        content_type = "text/html"
    if content_type != "text/plain" and element in _HTML_ELEMENTS:
        output = _clean_html(output, base, content_type or "text/html")
    if output.isascii():
        return output  # both steps below leave ASCII as it is
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        output = output.encode("iso-8859-1").decode("utf-8")  # UTF-8 read as Latin-1
    return output.translate(_cp1252)  # C1 controls → the Windows-1252 characters they meant


def _pop_content(text: str, element: str, base: str, content_type: str) -> tuple[str, str]:
    """`_pop` for a content element, and its type afterwards (plain text that looks like
    HTML is HTML from then on, in the entry's content list too)."""
    if content_type == "text/plain" and _FeedParserMixin.looks_like_html(text.strip()):
        content_type = "text/html"
    return _pop(text, element, base, content_type), content_type


def _clean_html(output: str, base: str, content_type: str) -> str:
    if "<" not in output and "&" not in output:
        # Both HTML passes copy text without markup unchanged; the sanitiser then strips it
        # and turns CRLF into LF (tests/monitor/test_parse_fast_rss.py checks this).
        return output.strip().replace("\r\n", "\n")
    output = resolve_relative_uris(output, base, "utf-8", content_type)
    return str(_sanitize_html(output, "utf-8", content_type))
