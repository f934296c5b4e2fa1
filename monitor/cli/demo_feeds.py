"""Invented sample feeds for `monitor demo`: one AI-export-controls development told by a
wire, a paper reprinting the wire, an independent outlet, and later the agency itself;
an earlier related development for the timeline; unrelated items; and one broken feed.

Everything here is made up for the demo; dates are relative to the moment the demo runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class DemoItem:
    title: str
    link: str
    summary: str
    age: timedelta  # how long before "now" it was published
    cycle: int = 1  # the demo cycle in which it first appears


WIRE_STORY = (
    "WASHINGTON (Reuters) - The U.S. Commerce Department's Bureau of Industry and Security on "
    "Tuesday added 14 Chinese companies developing AI accelerators to the Entity List, imposing a "
    "licence requirement on exports of advanced chips and chipmaking tools to them. The interim "
    "final rule takes effect immediately and officials said violations could draw penalties of up "
    "to $1.2 million per shipment. Nvidia and AMD said they were reviewing the rule."
)

FEEDS: dict[str, list[DemoItem]] = {
    "wire": [
        DemoItem(
            "US adds 14 Chinese AI chip firms to Entity List in new export curbs",
            "/wire/2026/entity-list-ai-chips",
            WIRE_STORY,
            timedelta(hours=3),
        ),
        DemoItem(
            "US tightens AI chip export rules, warns Chinese chip designers of Entity List action",
            "/wire/2026/ai-chip-rules-tightened",
            "WASHINGTON (Reuters) - The Bureau of Industry and Security tightened licence rules for "
            "exports of advanced AI chips to China and said Chinese AI chip designers that evade them "
            "could be added to the Entity List.",
            timedelta(days=18),
        ),
        DemoItem(
            "Heavy rain floods streets in coastal town",
            "/wire/2026/rain",
            "Residents were told to stay indoors as heavy rain flooded streets.",
            timedelta(hours=5),
        ),
    ],
    "tribune": [
        DemoItem(
            "U.S. adds 14 Chinese AI chip companies to Entity List",
            "/business/us-entity-list-ai-chips",
            WIRE_STORY.replace("WASHINGTON (Reuters) - ", "WASHINGTON (Reuters) — "),
            timedelta(hours=2, minutes=30),
        ),
        DemoItem(
            "Local team wins the regional football cup",
            "/sport/cup-final",
            "A late goal settled the final in front of a sold-out stadium.",
            timedelta(hours=6),
        ),
    ],
    "policywire": [
        DemoItem(
            "Commerce blacklists 14 Chinese AI chip designers, tightening export controls",
            "/2026/commerce-blacklists-ai-chip-designers",
            "The Bureau of Industry and Security put 14 Chinese AI chip designers on the Entity List on "
            "Tuesday, requiring a licence for any export of advanced chips to them. Industry lawyers "
            "said the interim final rule will force immediate shipment reviews.",
            timedelta(hours=2),
        ),
        DemoItem(
            "BIS tightens licence rules for AI chip exports to China",
            "/2026/bis-tightens-ai-chip-licences",
            "The Bureau of Industry and Security tightened licence requirements for advanced AI chip "
            "exports to China and warned Chinese chip designers of Entity List action.",
            timedelta(days=17, hours=20),
        ),
        DemoItem(
            "Netherlands extends export licence rule to servicing of ASML lithography machines",
            "/2026/dutch-asml-servicing-licences",
            "The Dutch trade ministry said servicing and spare parts for ASML's older lithography "
            "machines will need an export licence from next month, widening its export controls.",
            timedelta(hours=4),
        ),
    ],
    "agency": [
        DemoItem(
            "Commerce Adds 14 Entities to the Entity List for Developing Advanced AI Chips",
            "/press-release/entity-list-additions-ai-chips",
            "The Bureau of Industry and Security (BIS) today published an interim final rule adding 14 "
            "entities in China to the Entity List for developing advanced AI chips for military end "
            "uses. Exports of items subject to the EAR to these entities now require a licence.",
            timedelta(hours=1),
            cycle=2,
        ),
    ],
}

OUTLETS = {
    "wire": ("Reuters", "wire", ""),
    "tribune": ("Daily Tribune", "outlet", ""),
    "policywire": ("PolicyWire", "outlet", ""),
    "agency": ("Bureau of Industry and Security", "primary", ""),
}


def rss(name: str, base_url: str, items: list[DemoItem], now: datetime, cycle: int) -> bytes:
    entries = []
    for item in items:
        if item.cycle > cycle:
            continue
        link = base_url + item.link
        entries.append(
            "<item>"
            f"<title>{escape(item.title)}</title><link>{escape(link)}</link>"
            f"<guid>{escape(link)}</guid>"
            f"<pubDate>{format_datetime(now - item.age)}</pubDate>"
            f"<description>{escape(item.summary)}</description>"
            "</item>"
        )
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(name)}</title><link>{escape(base_url)}</link><description>demo</description>"
        + "".join(entries)
        + "</channel></rss>"
    )
    return body.encode("utf-8")


BROKEN_FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title><item><title>Half an ite'


DEMO_CONFIG = """\
# Written by `monitor demo`: local sample feeds, a temporary store, console alerts.
store:
  url: sqlite:///{store}
http:
  allow_private_addresses: true   # the demo's article pages live on 127.0.0.1
  article_min_interval: 0s        # its own local server: no politeness gap needed
  deadline: 10s
defaults:
  interval: 1m
  jitter: 0s
sources:
  - id: demo-wire
    name: Demo wire
    outlet: Reuters
    tier: wire
    url: {base}/feeds/wire.xml
  - id: demo-tribune
    name: Daily Tribune
    url: {base}/feeds/tribune.xml
  - id: demo-policywire
    name: PolicyWire
    url: {base}/feeds/policywire.xml
  - id: demo-agency
    name: Bureau of Industry and Security
    owner: us-commerce              # as in the bundled feeds.yaml: the department's outlets count once
    tier: primary
    url: {base}/feeds/agency.xml
  - id: demo-broken
    name: A broken feed
    url: {base}/feeds/broken.xml
topics:
  - id: ai-export-controls
    name: AI export controls
    rules:
      any: ["export control*", "Entity List", "BIS", "Bureau of Industry and Security", "export curbs", "chip*"]
      none: ["football"]
routes:
  - topic: ai-export-controls
    channel: "#export-controls"
"""
