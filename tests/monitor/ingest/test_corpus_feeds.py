"""Every real-world feed in ../shared/corpus/feeds parses: as many items as it has entries.

The expected counts are taken from the raw bytes, independently of feedparser: a regex
over the tags (with comments and CDATA sections removed first, since an `<item>` there is
text, not an element), or the `items` array of a JSON Feed. Some corpus entries honestly
have neither a title nor a link (JSON Feed test items with only an id, an Atom entry with
only an empty <author>); those are found in the raw file too and allowed, and the
normaliser then drops them or gives them a title from their text.

Set MONITOR_CORPUS_DIR to run the same checks on another corpus folder (its `feeds/`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import lxml.etree
import pytest

from monitor.ingest.normalize import normalize_items
from monitor.ingest.parse import parse_feed
from tests.corpus import corpus_params

NOT_FEEDS = {".html", ".htm", ".md", ".txt"}
FETCHED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

_COMMENT_OR_CDATA = re.compile(rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>", re.DOTALL)
_ENTRY_TAG = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s>/]")


@dataclass(frozen=True)
class Expected:
    entries: int  # <item>/<entry> elements, or JSON Feed items
    without_title_or_link: int  # of those, how many have neither in the raw file


def _feed_files(folder: Path) -> list[object]:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() not in NOT_FEEDS
        and not p.name.startswith(("LICENSE", "README"))
    )
    return [pytest.param(p, id=str(p.relative_to(folder))) for p in files]


def corpus_files() -> list[object]:
    """The real feed files of the corpus, one test parameter each."""
    return corpus_params("feeds", collect=_feed_files)


def expected_entries(body: bytes) -> Expected:
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        items = json.loads(body).get("items", [])
        bare = sum(
            1 for i in items if not (i.get("title") or i.get("url") or i.get("external_url"))
        )
        return Expected(len(items), bare)
    entries = len(_ENTRY_TAG.findall(_COMMENT_OR_CDATA.sub(b"", body)))
    return Expected(entries, _xml_entries_without_title_or_link(body))


def _xml_entries_without_title_or_link(body: bytes) -> int:
    parser = lxml.etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    root = lxml.etree.fromstring(body.strip(), parser=parser)
    if root is None:
        return 0
    bare = 0
    for element in root.iter(lxml.etree.Element):
        if _local_name(element.tag) not in ("item", "entry"):
            continue
        children = [
            c for c in element if isinstance(c.tag, str) and _local_name(c.tag) in ("title", "link")
        ]
        if not any((c.text or "").strip() or c.get("href") for c in children):
            bare += 1
    return bare


def _local_name(tag: str) -> str:
    # "{ns}item", "item", or "rdf:item" when recover mode met an unbound prefix
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


@pytest.mark.parametrize("path", corpus_files())
def test_corpus_feed_parses(path: Path) -> None:
    body = path.read_bytes()
    expected = expected_entries(body)

    result = parse_feed(body, url=f"https://corpus.example/{path.name}")

    assert not any(w.startswith("parse failed") for w in result.warnings), result.warnings
    assert len(result.items) >= expected.entries, result.warnings
    untitled = [item for item in result.items if not (item.title or item.link)]
    assert len(untitled) <= expected.without_title_or_link

    articles = normalize_items(
        result.items,
        source_id="corpus",
        outlet=path.stem,
        owner="",
        tier="outlet",
        fetched_at=FETCHED,
        now=FETCHED,
    )
    assert all(a.title or a.url for a in articles)
    assert len(articles) >= expected.entries - expected.without_title_or_link
