"""Exact and near duplicates, wire credits and origins (monitor.story.dedup)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from monitor.story import dedup
from monitor.story.analysis import Analyzer
from tests.monitor.story.story_data import EDITED_COPY, OWN_REPORTING, T0, WIRE_STORY, article


def test_exact_duplicates_are_known_by_url_guid_or_content() -> None:
    first = article("Title", "Body text", outlet="a.com", guid="g-1", content_hash="h1")
    known = set(dedup.exact_keys(first))

    same_url = article("Other title", "Other body", outlet="a.com", content_hash="h2")
    same_url.canonical_url = first.canonical_url
    same_guid = article("Changed", "Changed", outlet="a.com", guid="g-1", content_hash="h3")
    same_guid.source_id = first.source_id
    same_content = article("X", "Y", outlet="b.com", content_hash="h1")
    new = article("Another story", "Different", outlet="b.com", guid="g-2", content_hash="h4")

    assert dedup.is_known(same_url, known) == f"url:{first.canonical_url}"
    assert dedup.is_known(same_guid, known) == "guid:a.com\x1fg-1"
    assert dedup.is_known(same_content, known) == "hash:h1"
    assert dedup.is_known(new, known) is None


@pytest.mark.parametrize(
    ("text", "credit", "wire"),
    [
        ("WASHINGTON (Reuters) - The U.S. said on Tuesday ...", "", "reuters"),
        ("WASHINGTON (AP) — Lawmakers said ...", "", "ap"),
        ("PARIS, March 3 (AFP) – France said ...", "", "afp"),
        ("By Jane Doe, Associated Press\nLawmakers said ...", "", "ap"),
        ("Lawmakers said on Tuesday that ...\n© 2024 Bloomberg", "", "bloomberg"),
        ("Lawmakers said ...", "Associated Press", "ap"),
        ("Lawmakers said ...", "The Associated Press; staff", "ap"),
        ("Lawmakers said ...", "Thomson Reuters", "reuters"),
    ],
)
def test_wire_credits_are_recognised(text: str, credit: str, wire: str) -> None:
    assert dedup.find_wire(text, credit) == wire


@pytest.mark.parametrize(
    ("text", "credit"),
    [
        ("The company told Reuters on Tuesday that it would appeal.", ""),
        ("An AP photographer was among the crowd.", ""),
        ("Bloomberg Philanthropies funded the study, researchers said.", ""),
        ("Our own reporting.", "Staff writer"),
    ],
)
def test_mentioning_a_wire_is_not_a_credit(text: str, credit: str) -> None:
    assert dedup.find_wire(text, credit) is None


def test_origin_from_wire_canonical_link_owner_and_outlet() -> None:
    wire = article(*WIRE_STORY, outlet="Daily Planet")
    assert dedup.assign_origin(wire, None)[0] == "wire:reuters"

    canonical = article(*OWN_REPORTING, outlet="Aggregator", canonical_link="https://www.politico.com/a/1")
    assert dedup.assign_origin(canonical, None)[0] == "outlet:politicocom"
    known = {"politico.com": ("Politico", "")}
    assert dedup.assign_origin(canonical, None, outlets_by_host=known)[0] == "outlet:politico"

    owned = article(*OWN_REPORTING, outlet="The Times", owner="News Corp")
    assert dedup.assign_origin(owned, None)[0] == "owner:newscorp"

    own = article(*OWN_REPORTING, outlet="Politico")
    assert dedup.assign_origin(own, None) == ("outlet:politico", "own reporting")


def test_lightly_edited_wire_copy_gets_the_wires_origin() -> None:
    analyzer = Analyzer()
    original = analyzer.add(article(*WIRE_STORY, outlet="Reuters", tier="wire"), T0)
    copy = analyzer.add(article(*EDITED_COPY, outlet="Daily Planet", minutes=30), T0 + timedelta(minutes=30))

    assert original.article.origin == "wire:reuters"
    assert copy.article.reprint_of == original.article.id
    assert copy.article.origin == "wire:reuters"
    assert copy.article.signature  # stored so the index can be rebuilt after a restart
    # The copy joins the same development and adds no independent source.
    assert copy.development.id == original.development.id
    assert copy.decision.independent == 1


def test_identical_headlines_from_two_outlets_are_one_origin() -> None:
    analyzer = Analyzer()
    first = analyzer.add(article("Stocks slip on discouraging news from Asia", outlet="a.com"), T0)
    second = analyzer.add(article("Stocks slip on discouraging news from Asia", outlet="b.com", minutes=1), T0)
    assert second.article.reprint_of == first.article.id
    assert second.decision.independent == 1


def test_unrelated_texts_are_not_reprints() -> None:
    index = dedup.ReprintIndex()
    index.add(1, "outlet:a", T0, dedup.fingerprint("\n".join(WIRE_STORY)))
    assert index.query(dedup.fingerprint("\n".join(OWN_REPORTING))) is None
    assert index.query(dedup.fingerprint("Too short to judge")) is None


def test_ten_thousand_copies_of_one_press_release_stay_bounded(caplog: pytest.LogCaptureFixture) -> None:
    index = dedup.ReprintIndex()
    base = "\n".join(WIRE_STORY)
    index.add(1, "outlet:company", T0, dedup.fingerprint(base))
    matches = set()
    with caplog.at_level(logging.WARNING, logger="monitor.story.dedup"):
        for n in range(2, 10_002):
            # each copy differs a little (an outlet's tagline), as syndicated copies do
            fp = dedup.fingerprint(f"{base}\nDistributed by outlet {n}.")
            match = index.query(fp)
            assert match is not None
            matches.add(match.article_id)
            # copies are never indexed themselves, so the index does not grow
    assert matches == {1}
    assert len(index) == 1
    assert sum("mass-copied" in r.message for r in caplog.records) == 1


def test_expire_forgets_old_originals() -> None:
    index = dedup.ReprintIndex()
    index.add(1, "outlet:a", T0, dedup.fingerprint("\n".join(WIRE_STORY)))
    index.add(2, "outlet:b", T0 + timedelta(days=2), dedup.fingerprint("\n".join(OWN_REPORTING)))
    assert index.expire(T0 + timedelta(days=1)) == 1
    assert index.query(dedup.fingerprint("\n".join(WIRE_STORY))) is None
    assert index.query(dedup.fingerprint("\n".join(OWN_REPORTING))) is not None
