"""`monitor eval stories`: the whole product path on labelled real-world reports, and the
quality gates on the export-control beat (the shared development set, and our own)."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config.load import load_settings
from monitor.eval import stories as eval_stories
from tests.corpus import corpus_path

REPO = Path(__file__).resolve().parents[3]
EXTRA = REPO / "tests" / "fixtures" / "realworld" / "ecx-extra.jsonl"


def _row(rid: str, cluster: str, title: str, text: str, source: str, published: str, **kw: object) -> dict:
    row = {
        "id": rid, "cluster": cluster, "event": cluster, "storyline": kw.pop("storyline", None), "title": title,
        "text": text, "url": f"https://{source}/{rid}", "source": source, "outlet": kw.pop("outlet", source),
        "primary": False, "published": published, "kind": "event", "relevant": True, "impact": 7,
    }
    row.update(kw)
    return row


SMALL = [
    _row("a1", "listing", "US adds memory maker YMTC and 35 Chinese firms to Entity List",
         "The Commerce Department put YMTC and 35 other Chinese companies on the Entity List.", "www.reuters.com", "2022-12-15",
         storyline="entity-list", impact=8),
    _row("a2", "listing", "BIS adds Chinese entities to Entity List, including YMTC",
         "BIS placed memory maker YMTC and 35 Chinese firms on the Entity List in a final rule.", "exportdaily.example", "2022-12-16",
         storyline="entity-list", impact=8),
    _row("b1", "solo-b1", "India bans rice exports", "New Delhi halted shipments of rice.", "www.argus.example", "2023-07",
         kind="distractor", relevant=False, impact=None),
    _row("c1", "inspur", "Inspur, China's top server maker, is blacklisted by the US government",
         "The Commerce Department added Inspur and 27 other companies to the Entity List.", "baxtel.example", "2023-03-07",
         storyline="entity-list"),
    _row("c2", "inspur", "US adds Inspur to Entity List over supercomputers for China's military",
         "Inspur and dozens of other Chinese entities were added to the Entity List, Commerce said.", "www.cnbc.example", "2023-03-08",
         storyline="entity-list"),
]


def _write(tmp_path: Path, rows: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    path = tmp_path / "reports.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(line + "\n" for line in extra_lines), "utf-8")
    return path


@pytest.fixture(scope="module")
def bundled() -> object:
    return load_settings(REPO / "feeds.yaml")


def test_partial_dates_are_taken_at_the_middle_of_their_period() -> None:
    assert eval_stories.parse_published("2022-10") == datetime(2022, 10, 15, tzinfo=UTC)
    assert eval_stories.parse_published("2023") == datetime(2023, 7, 1, tzinfo=UTC)
    assert eval_stories.parse_published("2023-03-07") == datetime(2023, 3, 7, tzinfo=UTC)
    assert eval_stories.parse_published("2023-03-07T10:00:00Z") == datetime(2023, 3, 7, 10, tzinfo=UTC)
    assert eval_stories.parse_published("March") is None and eval_stories.parse_published(None) is None


def test_spearman_with_ties() -> None:
    assert eval_stories.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert eval_stories.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert eval_stories.spearman([7, 7, 9], [5, 5, 8]) == pytest.approx(1.0)
    assert eval_stories.spearman([1, 2], [4, 4]) == 0.0  # undefined: no spread on one side


def test_the_whole_path_on_a_small_file(tmp_path: Path, bundled: object) -> None:
    path = _write(tmp_path, SMALL, extra_lines=("not json", '{"title": ""}'))
    scores, reports, outcome = eval_stories.evaluate_stories(path, bundled, progress=False)  # type: ignore[arg-type]
    assert len(reports) == 5  # the two bad lines are skipped
    assert (scores.on_topic_kept, scores.on_topic, scores.distractors_kept) == (4, 4, 0)
    assert (scores.events_corroborated, scores.events) == (2, 2)
    assert scores.f1 == pytest.approx(1.0)
    listing = next(e for e in scores.event_outcomes if e.cluster == "listing")
    assert listing.impact == 8 and listing.gold_impact == 8  # 36 entities: major additions
    inspur = next(e for e in scores.event_outcomes if e.cluster == "inspur")
    assert inspur.earlier_events == ("listing",) and inspur.linked_earlier  # one storyline, months apart
    assert scores.foreign_entries == 0
    assert "not stored" not in outcome.reports["b1"].why and "rice" in outcome.reports["b1"].why  # why it was dropped


def test_command_prints_every_figure_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, SMALL)
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(REPO / "feeds.yaml"))
    parser.add_argument("--log-level", default="INFO")
    eval_stories.add_eval_stories_parser(parser.add_subparsers())
    args = parser.parse_args(["stories", str(path), "--verbose", "--no-progress"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    for figure in ("on-topic reports kept       4 of 4", "distractors kept            0 of 1", "events corroborated         2 of 2",
                   "B3", "Spearman", "timelines", "distractors kept"):
        assert figure in out
    args = parser.parse_args(["stories", str(path), "--json", "--no-progress"])
    assert args.handler(args) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["scores"]["events_corroborated"] == 2 and len(raw["reports"]) == 5
    missing = parser.parse_args(["stories", str(tmp_path / "nowhere.jsonl")])
    assert missing.handler(missing) == 2


def test_progress_is_shown_on_long_work(tmp_path: Path, bundled: object) -> None:
    err = io.StringIO()
    bar = eval_stories.Progress(5, out=err, min_total=0)
    for n in range(1, 6):
        bar.update(n)
    assert "100%" in err.getvalue()


# Quality gates on the beat. The shared development set: the targets. Our own set
# (tests/fixtures/realworld, events of 2023-2024 the method was not designed on first): floors
# just under what it scores, so a change that loses ground there fails too.
DEV_TARGETS = {"kept": 0.95, "distractors": 1, "corroborated": 14, "f1": 0.90, "spearman": 0.80, "mae": 1.0, "linked": 0.80, "foreign": 0}
EXTRA_FLOORS = {"kept": 0.90, "distractors": 1, "corroborated": 21, "f1": 0.84, "spearman": 0.60, "mae": 0.7, "linked": 0.25, "foreign": 11}


def _check(path: Path, bundled: object, gates: dict[str, float]) -> None:
    scores, _, _ = eval_stories.evaluate_stories(path, bundled, progress=False)  # type: ignore[arg-type]
    text = io.StringIO()
    eval_stories.render(scores, [], eval_stories.StoryOutcome({}, {}), verbose=False, out=text)
    assert scores.kept_share >= gates["kept"], text.getvalue()
    assert scores.distractors_kept <= gates["distractors"], text.getvalue()
    assert scores.events_corroborated >= gates["corroborated"], text.getvalue()
    assert scores.f1 >= gates["f1"], text.getvalue()
    assert scores.spearman >= gates["spearman"] and scores.impact_mae <= gates["mae"], text.getvalue()
    assert scores.linked_share >= gates["linked"] and scores.foreign_entries <= gates["foreign"], text.getvalue()


def test_quality_gate_on_the_shared_export_control_reports(bundled: object) -> None:
    _check(corpus_path("realworld", "ecx-dev.jsonl"), bundled, DEV_TARGETS)


def test_quality_gate_on_our_own_export_control_reports(bundled: object) -> None:
    _check(EXTRA, bundled, EXTRA_FLOORS)
