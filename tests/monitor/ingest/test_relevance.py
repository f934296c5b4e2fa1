"""Topic rules: which articles match, and the sentences that say why (or why not)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.config.settings import Topic, TopicRules
from monitor.config.terms import compile_terms
from monitor.ingest.relevance import compile_topics, evaluate_topics, explain_miss, match_topics
from monitor.models import Article

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def article(title: str = "", summary: str = "", text: str = "") -> Article:
    return Article(
        source_id="src",
        outlet="Outlet",
        url="https://example.com/a",
        canonical_url="https://example.com/a",
        title=title,
        summary=summary,
        text=text,
        published=NOW,
        fetched=NOW,
    )


def topic(topic_id: str = "export-controls", **rules: object) -> Topic:
    defaults: dict[str, object] = {
        "any": ("export controls", "BIS", "chip*", "Entity List"),
        "none": ("crypto*",),
    }
    defaults.update(rules)
    return Topic(id=topic_id, name=topic_id, rules=TopicRules(**defaults))


def matches(a: Article, *topics: Topic, allowed: tuple[str, ...] | None = None):
    return match_topics(a, compile_topics(topics or (topic(),)), allowed_topics=allowed)


# -- the term matcher -------------------------------------------------------------------


def found(terms: list[str], text: str) -> list[str]:
    return [hit.matched for hit in compile_terms(terms).find(text)]


def test_phrase_matches_across_whitespace_and_hyphens_but_not_other_words() -> None:
    assert found(["export controls"], "new export-controls and export\ncontrols") == [
        "export-controls",
        "export\ncontrols",
    ]
    assert found(["export controls"], "export of controls; controls export") == []


def test_wildcard_stays_inside_a_word_and_respects_boundaries() -> None:
    assert found(["chip*"], "Chips, chipmakers and a microchip") == ["Chips", "chipmakers"]
    assert found(["semi*conductor*"], "semiconductors") == ["semiconductors"]
    assert found(["ban"], "the bank banned a ban") == ["ban"]


def test_capitalised_rule_words_are_case_sensitive_others_are_not() -> None:
    assert found(["BIS"], "BIS said; bis repetita; Bis") == ["BIS"]
    assert found(["nvidia"], "NVIDIA and Nvidia") == ["NVIDIA", "Nvidia"]
    # Per word: only "BIS" must be in capitals.
    assert found(["BIS rule"], "BIS Rule, bis rule") == ["BIS Rule"]


def test_unicode_text_and_scripts_without_spaces() -> None:
    assert found(["sanción"], "SANCIÓN") == ["SANCIÓN"]
    decomposed = "sancio\u0301n"  # NFD: the accent as a separate code point
    assert found(["sanción"], decomposed) == ["sanción"]
    assert found(["Exportkontrolle*"], "neue Exportkontrollen für Chips") == ["Exportkontrollen"]
    assert found(["出口管制"], "美国出口管制新规") == ["出口管制"]
    assert found(["Straße"], "die Straße") == ["Straße"]  # text whose case folding changes length


def test_overlapping_terms_are_all_reported() -> None:
    hits = compile_terms(["export", "export controls", "controls on chips"]).found(
        "export controls on chips"
    )
    assert set(hits) == {"export", "export controls", "controls on chips"}


def test_terms_that_would_match_everything_or_nothing_are_rejected() -> None:
    matcher = compile_terms(["*", "  ", "🚀", "chip*", "a*b*c*d", "x" * 201])
    assert matcher.terms == ("chip*",)
    assert [r.reason for r in matcher.rejected] == [
        "has no letters or digits",
        "empty term",
        "has no letters or digits",
        "more than 2 wildcards in one word",
        "longer than 200 characters",
    ]


def test_long_runs_of_letters_are_scanned_in_bounded_time() -> None:
    # A base64 blob in a page: wildcards are bounded, so this returns (pytest-timeout guards).
    matcher = compile_terms(["a*a*z", "chip*", "semi*conductor*"])
    assert matcher.find("a" * 200_000) == ()
    assert [h.matched for h in matcher.find("a" * 50 + " chips " + "b" * 50)] == ["chips"]


def test_matcher_is_compiled_once_per_term_list() -> None:
    assert compile_terms(["a1", "b2"]) is compile_terms(["a1", "b2"])
    assert compile_topics((topic(),)) is compile_topics((topic(),))


# -- topics -----------------------------------------------------------------------------


def test_match_explanation_names_each_term_and_field() -> None:
    a = article(
        title="US widens export controls on AI chips",
        summary="The BIS said the rule takes effect today.",
        text="The export controls cover advanced chips.",
    )
    (match,) = matches(a)
    assert match.topic_id == "export-controls"
    assert match.explanation == (
        "'export controls' in title and text; 'chip*' (chips) in title and text; 'BIS' in summary"
    )
    assert match.score == 5.0  # two title terms × 2 + one summary term × 1


def test_none_term_excludes_whatever_else_matched() -> None:
    a = article(title="Export controls hit chips", text="Miners of crypto currencies too.")
    assert matches(a) == ()
    assert explain_miss(a, compile_topics((topic(),))) == (
        "export-controls: excluded by 'none' term 'crypto*' (crypto) in text",
    )


def test_article_without_any_term_says_so() -> None:
    a = article(title="Football results", summary="A draw.")
    assert explain_miss(a, compile_topics((topic(),))) == (
        "export-controls: no 'any' term found in title, summary and text",
    )


def test_all_terms_are_required() -> None:
    t = topic(all=("semiconductor*", "China"))
    a = article(title="New export controls on semiconductors")
    assert matches(a, t) == ()
    assert explain_miss(a, compile_topics((t,))) == ("export-controls: missing 'all' term 'China'",)
    b = article(title="New export controls on semiconductors", text="China responds.")
    (match,) = matches(b, t)
    assert match.explanation == (
        "'export controls' in title; 'semiconductor*' (semiconductors) in title; 'China' in text"
    )


def test_min_score_and_title_weight() -> None:
    t = topic(min_score=3)
    weak = article(title="Trade news", summary="BIS mentioned in passing.")
    assert matches(weak, t) == ()
    assert explain_miss(weak, compile_topics((t,))) == (
        "export-controls: score 1 below min_score 3 ('BIS' in summary)",
    )
    strong = article(title="BIS adds firms to the Entity List")
    assert [m.score for m in matches(strong, t)] == [4.0]


def test_only_configured_fields_are_searched() -> None:
    t = topic(fields=("title",))
    a = article(title="Markets today", text="New export controls announced.")
    assert matches(a, t) == ()
    assert matches(article(title="New export controls announced"), t) != ()


def test_per_source_topic_restriction() -> None:
    other = topic("ai-safety", any=("AI safety",), none=())
    a = article(title="BIS issues export controls on chips; AI safety rules next")
    assert [m.topic_id for m in matches(a, topic(), other)] == ["export-controls", "ai-safety"]
    assert [m.topic_id for m in matches(a, topic(), other, allowed=("ai-safety",))] == ["ai-safety"]
    assert matches(a, topic(), other, allowed=()) == ()
    assert explain_miss(a, compile_topics((topic(), other)), allowed_topics=("ai-safety",)) == (
        "export-controls: source is restricted to other topics (ai-safety)",
    )


@pytest.mark.parametrize(
    "title",
    ["!!!", "?!?! ... ---", "🚀🚀🔥", "🇨🇳", "bis", "*", "", "   ", "\u200b", "x" * 5000],
)
def test_degenerate_titles_do_not_crash_or_match(title: str) -> None:
    a = article(title=title)
    assert matches(a) == ()
    (line,) = explain_miss(a, compile_topics((topic(),)))
    assert line.startswith("export-controls: ")


def test_empty_article_says_there_is_nothing_to_search() -> None:
    assert explain_miss(article(), compile_topics((topic(),))) == (
        "export-controls: nothing to search: title, summary and text empty",
    )


def test_one_word_title_matches_only_a_real_term() -> None:
    assert [m.explanation for m in matches(article(title="Chips"))] == ["'chip*' (Chips) in title"]


def test_topic_without_required_terms_matches_only_with_zero_min_score() -> None:
    open_topic = Topic(id="all", name="all", rules=TopicRules(min_score=0))
    (verdict,) = evaluate_topics(article(title="Anything"), compile_topics((open_topic,)))
    assert verdict.matched and verdict.explanation == "topic has no required terms"
    closed = Topic(id="none", name="none", rules=TopicRules())
    assert matches(article(title="Anything"), closed) == ()


def test_unusable_terms_are_configuration_errors() -> None:
    from pydantic import ValidationError

    from monitor.config.settings import ImpactSignal

    with pytest.raises(ValidationError, match=r"term '\*': has no letters or digits"):
        TopicRules(any=("chip*", "*"))
    with pytest.raises(ValidationError, match="more than 2 wildcards in one word"):
        ImpactSignal(name="x", terms=("a*b*c*d",), weight=1)
