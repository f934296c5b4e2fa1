"""Article text extraction on real benchmark pages, and the `eval pages` scorer."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from monitor.eval.pages import (
    add_eval_pages_parser,
    bag_counts,
    evaluate_pages,
    shingles,
    whitespace_tokens,
)
from monitor.ingest.extract import extract_article_text, needs_full_text
from tests.corpus import corpus_path

# Five small real pages from the corpus (sciencealert, entermedia, expapp, comwrap, polygraph).
SAMPLE = [
    "359fee228518d55b921194561e9ca88e428df81940246f8fac7a75398377daea",
    "9da36ae4714bfccc72374c6c146e9d1cd3cca39e2110bd67ccdbcc806f4cf139",
    "4648a420af9984d45b76a4afedf4f74965f8a2e0bf1c69bd3da2dc189020f3c9",
    "57b4dafd18cfd0531b69f81e87158648227c673ef159f8d8c87d34e34bdb21f2",
    "1ee91d1fce65",  # prefix; the full id is looked up
]



@pytest.fixture(scope="module")
def pages() -> Path:
    return corpus_path("pages")


def _truth(pages: Path) -> dict[str, dict[str, str]]:
    return json.loads((pages / "ground-truth.json").read_text("utf-8"))


def _full_id(truth: dict[str, dict[str, str]], prefix: str) -> str:
    return next(page_id for page_id in truth if page_id.startswith(prefix))


def _token_f1(expected: str, got: str) -> float:
    tp, fp, fn = bag_counts(whitespace_tokens(expected), whitespace_tokens(got))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def test_real_page_text_overlaps_its_ground_truth(pages: Path) -> None:
    page_id = SAMPLE[0]
    truth = _truth(pages)[page_id]
    text = extract_article_text((pages / "html" / f"{page_id}.html").read_bytes(), truth["url"])
    assert _token_f1(truth["articleBody"], text) > 0.8
    assert "<" not in text[:200]  # plain text, not markup


@pytest.mark.parametrize(
    "html", [b"", "", b"<html><body></body></html>", b"\x00\xff\xfe garbage \x00", "<<<>>>"]
)
def test_pages_without_an_article_give_empty_text(html: bytes | str) -> None:
    assert extract_article_text(html, "https://example.org/a") == ""


def test_needs_full_text_for_thin_feeds() -> None:
    assert needs_full_text("", "")
    assert needs_full_text("Commerce tightens AI chip rules. Read more…", "")
    assert not needs_full_text("word " * 120, "")
    assert not needs_full_text("", "A full article body. " * 40)


def test_scorer_counts_shingles_as_the_benchmark_does() -> None:
    assert shingles("a b c d e") == {("a", "b", "c", "d"): 1, ("b", "c", "d", "e"): 1}
    assert shingles("tiny text") == {("tiny", "text"): 1}
    # Extra text lowers precision, missing text lowers recall; counts are per-page fractions.
    tp, fp, fn = bag_counts(
        shingles("one two three four five six"), shingles("one two three four five")
    )
    assert (tp, fp, fn) == (2 / 3, 0.0, 1 / 3)


@pytest.fixture
def five_pages(pages: Path, tmp_path: Path) -> Path:
    truth = _truth(pages)
    ids = [SAMPLE[0], SAMPLE[1], SAMPLE[2], SAMPLE[3], _full_id(truth, SAMPLE[4])]
    (tmp_path / "html").mkdir()
    for page_id in ids:
        shutil.copy(pages / "html" / f"{page_id}.html", tmp_path / "html" / f"{page_id}.html")
    subset = {page_id: truth[page_id] for page_id in ids}
    subset["no-such-page"] = {"articleBody": "lost", "url": "https://example.org/lost"}
    (tmp_path / "ground-truth.json").write_text(json.dumps(subset), "utf-8")
    return tmp_path


def test_evaluate_pages_on_a_directory_of_the_same_format(
    five_pages: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = evaluate_pages(five_pages, progress=True)
    assert scores.pages == 5
    assert scores.missing == ("no-such-page",)
    assert 0.9 <= scores.f1 <= 1.0 and 0.9 <= scores.token_f1 <= 1.0
    assert "pages 6/6" in capsys.readouterr().err


def test_evaluate_pages_scores_a_bad_extractor_low(five_pages: Path) -> None:
    scores = evaluate_pages(
        five_pages, progress=False, extractor=lambda html, url: "nothing useful here at all"
    )
    assert scores.recall < 0.05 and scores.f1 < 0.1


def test_eval_pages_command(five_pages: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="monitor eval")
    add_eval_pages_parser(parser.add_subparsers())
    args = parser.parse_args(["pages", str(five_pages), "--quiet"])
    assert args.handler(args) == 0
    out = capsys.readouterr()
    assert "pages: 5" in out.out and "F1=" in out.out
    assert out.err == ""
    missing = parser.parse_args(["pages", str(five_pages / "nowhere")])
    assert missing.handler(missing) == 2
