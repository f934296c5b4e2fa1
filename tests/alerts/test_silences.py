"""The silences store on every engine: add, list, expire, remove."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.store.silences import active_silences, add_silence, list_silences, remove_silence

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def test_round_trip_and_expiry(store) -> None:
    with store.transaction() as conn:
        topic_id = add_silence(conn, "topic", "export-controls", "known story", T0, T0 + timedelta(hours=24))
        match_id = add_silence(conn, "match", "tariff", "noise", T0, T0 + timedelta(hours=1))
    with store.connect() as conn:
        active = active_silences(conn, T0 + timedelta(minutes=30))
        later = active_silences(conn, T0 + timedelta(hours=2))

    assert [(s.id, s.matcher, s.value, s.reason) for s in active] == [
        (topic_id, "topic", "export-controls", "known story"),
        (match_id, "match", "tariff", "noise"),
    ]
    assert active[0].expires == T0 + timedelta(hours=24)
    assert active[0].expires.tzinfo is not None
    assert [s.id for s in later] == [topic_id]  # the one-hour silence expired


def test_remove_ends_a_silence_and_list_keeps_the_history(store) -> None:
    with store.transaction() as conn:
        kept = add_silence(conn, "source", "noisy-blog", "spam", T0, T0 + timedelta(days=2))
        gone = add_silence(conn, "development", "42", "handled", T0, T0 + timedelta(days=2))
        expired = add_silence(conn, "match", "x", "short", T0, T0 + timedelta(minutes=5))
    now = T0 + timedelta(hours=1)
    with store.transaction() as conn:
        assert remove_silence(conn, gone, now) is True
        assert remove_silence(conn, gone, now) is False  # already removed
        assert remove_silence(conn, expired, now) is False  # already over
        assert remove_silence(conn, 9999, now) is False
    with store.connect() as conn:
        assert [s.id for s in active_silences(conn, now)] == [kept]
        assert [row.id for row in list_silences(conn, now)] == [kept]
        history = {row.id: row.status for row in list_silences(conn, now, include_expired=True)}
    assert history == {kept: "active", gone: "removed", expired: "expired"}


def test_bad_silences_are_refused(store) -> None:
    with store.transaction() as conn:
        with pytest.raises(ValueError, match="unknown silence matcher"):
            add_silence(conn, "channel", "#x", "r", T0, T0 + timedelta(hours=1))
        with pytest.raises(ValueError, match="expire after"):
            add_silence(conn, "topic", "x", "r", T0, T0)


FEEDS_YAML = """\
store:
  url: sqlite:///monitor.db
topics:
  - id: export-controls
    name: Export controls
    rules:
      any: ["export controls"]
routes:
  - topic: export-controls
    channel: "#export-controls"
"""


def monitor(config: Path, *argv: str) -> int:
    from monitor.cli.main import main

    return main(["--config", str(config), *argv])


def test_silence_commands_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(FEEDS_YAML)

    assert monitor(config, "silence", "add", "--topic", "export-controls", "--for", "2h", "--reason", "known story") == 0
    assert monitor(config, "silence", "add", "--match", "tariff", "--reason", "noise") == 0
    added = capsys.readouterr().out
    assert "silence #1: topic=export-controls until" in added and "(known story)" in added

    assert monitor(config, "silence", "list") == 0
    listing = capsys.readouterr().out
    assert "topic=export-controls" in listing and "match=tariff" in listing and "active" in listing

    assert monitor(config, "silence", "remove", "1") == 0
    assert monitor(config, "silence", "remove", "1") == 1
    assert "no active silence #1" in capsys.readouterr().err
    assert monitor(config, "silence", "list") == 0
    assert "export-controls" not in capsys.readouterr().out
    assert monitor(config, "silence", "list", "--all") == 0
    assert "removed" in capsys.readouterr().out


def test_silence_add_needs_exactly_one_matcher_and_a_reason(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(FEEDS_YAML)
    with pytest.raises(SystemExit):
        monitor(config, "silence", "add", "--topic", "a", "--source", "b", "--reason", "r")
    with pytest.raises(SystemExit):
        monitor(config, "silence", "add", "--topic", "a")
    with pytest.raises(SystemExit):
        monitor(config, "silence", "add", "--topic", "a", "--for", "soon", "--reason", "r")
