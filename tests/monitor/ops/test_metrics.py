"""The metrics the monitor exposes: names, labels and values as a Prometheus scrape sees them."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from monitor.ops import metrics
from monitor.run.pipeline import PollReport


def scraped() -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """/metrics text parsed back: family name → [(sample name, labels, value)]."""
    families: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        families[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return families


def value(name: str, **labels: str) -> float:
    return metrics.sample(name, labels) or 0.0


def test_every_documented_name_is_exposed_and_nothing_else() -> None:
    metrics.observe_fetch("names-src", "new", 0.2)  # labelled families only show once used
    metrics.observe_poll(PollReport("names-src", "new", items=1, new_articles=1))
    metrics.observe_alert("sent", "#names")
    metrics.observe_reload(True)
    metrics.set_last_success("names-src", 1.0)
    metrics.set_developments({})
    exposed = {name for family in scraped().values() for name, _labels, _v in family}
    for name in metrics.METRIC_NAMES:
        assert name in exposed or f"{name}_bucket" in exposed, name
    ours = {n for n in exposed if n.startswith("monitor_")}
    documented = set(metrics.METRIC_NAMES)
    stray = {
        n for n in ours
        if n not in documented and not any(n.startswith(d + suffix) for d in documented for suffix in ("_bucket", "_sum", "_count", "_created"))
    }
    assert stray == set()


def test_fetches_count_by_source_and_outcome_and_feed_the_latency_histogram() -> None:
    before_failed = value("monitor_fetches_total", source="m-a", outcome="failed")
    before_slow = value("monitor_fetch_duration_seconds_bucket", outcome="failed", le="5.0")
    before_count = value("monitor_fetch_duration_seconds_count", outcome="failed")
    metrics.observe_fetch("m-a", "new", 0.07)
    metrics.observe_fetch("m-a", "failed", 12.0)
    metrics.observe_fetch("m-a", "failed", 0.3)
    assert value("monitor_fetches_total", source="m-a", outcome="failed") == before_failed + 2
    assert value("monitor_fetches_total", source="m-a", outcome="new") >= 1
    # 0.3 s lands in the 5 s bucket, 12 s does not; both are counted.
    assert value("monitor_fetch_duration_seconds_bucket", outcome="failed", le="5.0") == before_slow + 1
    assert value("monitor_fetch_duration_seconds_count", outcome="failed") == before_count + 2


def test_a_poll_adds_items_parsed_and_articles_stored_for_its_source() -> None:
    metrics.observe_poll(PollReport("m-poll", "new", items=40, relevant=5, new_articles=3, alerts=1))
    metrics.observe_poll(PollReport("m-poll", "unchanged"))
    assert value("monitor_items_parsed_total", source="m-poll") == 40
    assert value("monitor_articles_stored_total", source="m-poll") == 3


def test_alert_reload_outbox_and_last_success_values() -> None:
    metrics.observe_alert("failed", "#m-chan")
    metrics.observe_alert("failed", "#m-chan")
    metrics.observe_reload(False)
    errors = value("monitor_config_reloads_total", result="error")
    metrics.observe_reload(False)
    metrics.set_outbox_depth(7)
    when = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    metrics.set_last_success("m-last", when)
    assert value("monitor_alerts_total", state="failed", channel="#m-chan") == 2
    assert value("monitor_config_reloads_total", result="error") == errors + 1
    assert value("monitor_outbox_depth") == 7
    assert value("monitor_source_last_success_timestamp_seconds", source="m-last") == when.timestamp()


def test_developments_by_state_are_replaced_not_accumulated() -> None:
    metrics.set_developments({"corroborated": 4, "single_source": 9})
    metrics.set_developments({"corroborated": 5})
    assert value("monitor_developments", state="corroborated") == 5
    assert value("monitor_developments", state="single_source") == 0  # gone from the store


def test_the_registry_is_our_own_not_the_process_default() -> None:
    from prometheus_client import REGISTRY as DEFAULT

    assert metrics.REGISTRY is not DEFAULT
    assert "python_gc_objects_collected" not in scraped()
