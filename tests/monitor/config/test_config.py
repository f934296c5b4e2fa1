"""feeds.yaml loading: the exact messages an operator reads, and the settings a valid file gives."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli.check import add_commands, cmd_check, summary_lines
from monitor.config.holder import ConfigHolder
from monitor.config.load import ConfigError, ConfigProblem, load_settings, resolve_store_url
from monitor.config.sources import effective_source, effective_sources

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "config"
DURATION_HELP = "use a number and a unit (ms, s, m, h, d, w), e.g. 10m or 1h30m"

MINIMAL = """\
sources:
  - id: bis
    name: BIS
    url: https://www.bis.gov/news.rss
topics:
  - id: ai-export-controls
    name: AI export controls
"""


def problems_of(name: str, env: dict[str, str] | None = None) -> list[str]:
    """The problem lines for a fixture, loaded by its bare name as an operator would type it."""
    with pytest.raises(ConfigError) as caught:
        load_settings(name, env={} if env is None else env)
    return [str(problem) for problem in caught.value.problems]


@pytest.fixture()
def in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)


def write(tmp_path: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ bad-config fixtures


@pytest.mark.usefixtures("in_fixtures")
def test_unknown_keys_name_the_closest_valid_key() -> None:
    assert problems_of("unknown_key.yaml") == [
        "unknown_key.yaml:6: sources[0].intreval: unknown key 'intreval' (did you mean 'interval'?)",
        "unknown_key.yaml:7: htpp: unknown key 'htpp' (did you mean 'http'?)",
    ]


@pytest.mark.usefixtures("in_fixtures")
def test_wrong_types_say_what_was_expected_and_what_was_found() -> None:
    assert problems_of("wrong_type.yaml") == [
        "wrong_type.yaml:2: http.concurrency: expected a whole number, got 'many'",
        "wrong_type.yaml:3: http.max_redirects: must be greater than or equal to 0, got -1",
        "wrong_type.yaml:6: sources[0].name: expected a string, got a list",
        "wrong_type.yaml:8: sources[0].enabled: expected true or false, got 'maybe'",
        "wrong_type.yaml:9: sources[0].tier: invalid value 'wires': expected one of primary, wire, "
        "outlet, aggregator, blog (did you mean 'wire'?)",
    ]


@pytest.mark.usefixtures("in_fixtures")
def test_bad_durations() -> None:
    assert problems_of("bad_duration.yaml") == [
        f"bad_duration.yaml:2: defaults.interval: invalid duration '1h30': {DURATION_HELP}",
        f"bad_duration.yaml:7: sources[0].interval: invalid duration '10x': {DURATION_HELP}",
    ]


@pytest.mark.usefixtures("in_fixtures")
def test_file_and_ftp_urls_are_refused() -> None:
    hint = "(sources are fetched over HTTP; local files and FTP are never read)"
    assert problems_of("file_url.yaml") == [
        "file_url.yaml:4: sources[0].url: only http and https URLs are allowed, got file scheme "
        f"in 'file:///etc/passwd' {hint}",
        "file_url.yaml:7: sources[1].url: only http and https URLs are allowed, got ftp scheme "
        f"in 'ftp://ftp.example.org/feed.xml' {hint}",
    ]


@pytest.mark.usefixtures("in_fixtures")
def test_duplicate_source_id_names_both_lines() -> None:
    assert problems_of("duplicate_id.yaml") == [
        "duplicate_id.yaml:10: sources[2].id: duplicate source id 'bis-press' (first defined at line 2)",
    ]


@pytest.mark.usefixtures("in_fixtures")
def test_duplicate_yaml_key_is_an_error_not_a_silent_overwrite() -> None:
    assert problems_of("duplicate_key.yaml") == [
        "duplicate_key.yaml:6: sources[0].interval: duplicate key 'interval' (first at line 5)",
    ]


@pytest.mark.usefixtures("in_fixtures")
def test_references_to_unknown_topics() -> None:
    assert problems_of("unknown_topic.yaml") == [
        "unknown_topic.yaml:5: sources[0].topics[1]: unknown topic 'chips' (known topics: ai-export-controls)",
        "unknown_topic.yaml:10: routes[0].topic: unknown topic 'ai-export-control' (did you mean 'ai-export-controls'?)",
        "unknown_topic.yaml:12: routes[1].topic: unknown topic 'sanctions' (known topics: ai-export-controls)",
        "unknown_topic.yaml:18: digests[0].topics[1]: unknown topic 'tariffs' (known topics: ai-export-controls)",
    ]


@pytest.mark.usefixtures("in_fixtures")
def test_yaml_syntax_error_has_a_line() -> None:
    assert problems_of("yaml_syntax.yaml") == [
        "yaml_syntax.yaml:6: invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence at line 5)",
    ]


@pytest.mark.usefixtures("in_fixtures")
def test_page_source_needs_selectors_and_selector_typos_are_caught() -> None:
    assert problems_of("page_without_selectors.yaml") == [
        "page_without_selectors.yaml:2: sources[0]: a source of kind 'page' needs 'selectors' (at least 'item')",
        "page_without_selectors.yaml:11: sources[1].selectors.titel: unknown key 'titel' (did you mean 'title'?)",
    ]


@pytest.mark.usefixtures("in_fixtures")
def test_bad_cron_timezone_and_quiet_hours() -> None:
    assert problems_of("bad_digest.yaml") == [
        "bad_digest.yaml:3: digests[0].cron: invalid cron expression '0 8 * *': use five fields "
        "(minute hour day month weekday), e.g. '0 8 * * 1-5'",
        "bad_digest.yaml:4: digests[0].timezone: unknown timezone 'Mars/Olympus': use an IANA name such as UTC or Europe/Berlin",
        "bad_digest.yaml:7: routes[0].topic: unknown topic 'ai' (no topics are defined)",
        "bad_digest.yaml:9: routes[0].quiet_hours.start: invalid time '7:00': use HH:MM, e.g. 07:30",
    ]


def test_missing_key_points_at_its_item(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - id: bis\n    url: https://www.bis.gov/x.rss\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}:2: sources[0].name: required key is missing"


def test_duplicate_topic_and_digest_ids(tmp_path: Path) -> None:
    text = MINIMAL + (
        "  - id: ai-export-controls\n    name: Again\n"
        "digests:\n"
        "  - {id: am, cron: '0 8 * * *', channel: '#a'}\n"
        "  - {id: am, cron: '0 9 * * *', channel: '#a'}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env={})
    assert [(p.line, p.key_path, p.message) for p in caught.value.problems] == [
        (8, "topics[1].id", "duplicate topic id 'ai-export-controls' (first defined at line 6)"),
        (12, "digests[1].id", "duplicate digest id 'am' (first defined at line 11)"),
    ]


def test_unknown_key_without_close_match_lists_the_valid_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  zzz: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert caught.value.problems[0].hint == "valid keys: enabled, host, port"


def test_empty_file_top_level_list_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "# nothing yet\n", "empty.yaml"), env={})
    assert caught.value.problems[0].message == "the file is empty"
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "- a\n- b\n", "list.yaml"), env={})
    assert (
        str(caught.value)
        == f"{tmp_path / 'list.yaml'}:1: expected a mapping of keys at the top level, got a list"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "absent.yaml", env={})
    assert (
        str(caught.value)
        == f"{tmp_path / 'absent.yaml'}: cannot read the file: No such file or directory"
    )


def test_problem_text_with_and_without_line_and_hint() -> None:
    assert str(ConfigProblem("f.yaml", 3, "a.b", "bad", "try c")) == "f.yaml:3: a.b: bad (try c)"
    assert str(ConfigProblem("f.yaml", None, "", "cannot read")) == "f.yaml: cannot read"
    error = ConfigError(
        [ConfigProblem("f.yaml", 1, "x", "one"), ConfigProblem("f.yaml", 2, "y", "two")]
    )
    assert str(error) == "f.yaml:1: x: one\nf.yaml:2: y: two"


# ------------------------------------------------------------------- env interpolation


def test_env_interpolation_with_defaults_and_escapes(tmp_path: Path) -> None:
    text = MINIMAL + (
        "store:\n  url: ${DB_URL:-sqlite:////var/lib/monitor/m.db}\n"
        'http:\n  user_agent: "watch/1 (+${CONTACT}) costs $$0"\n  concurrency: ${CONCURRENCY}\n'
        "slack:\n  token: ${SLACK_BOT_TOKEN}\n"
    )
    env = {"CONTACT": "https://example.org", "CONCURRENCY": "7", "SLACK_BOT_TOKEN": "xoxb-1"}
    settings = load_settings(write(tmp_path, text), env=env)
    assert settings.store.url == "sqlite:////var/lib/monitor/m.db"
    assert settings.http.user_agent == "watch/1 (+https://example.org) costs $0"
    assert settings.http.concurrency == 7
    assert settings.slack.token == "xoxb-1"


def test_unset_slack_secret_means_console_mode(tmp_path: Path) -> None:
    text = MINIMAL + "slack:\n  token: ${SLACK_BOT_TOKEN}\n  webhook_url: ${SLACK_WEBHOOK:-}\n"
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.slack.token is None
    assert settings.slack.webhook_url is None


def test_unset_variable_elsewhere_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "store:\n  url: ${DATABASE_URL}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}:9: store.url: environment variable 'DATABASE_URL' is not set "
        "(set it, or give a default: ${DATABASE_URL:-value})"
    )


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_TEST_AGENT", "from-os-environ (+https://example.org)")
    settings = load_settings(
        write(tmp_path, MINIMAL + "http:\n  user_agent: ${MONITOR_TEST_AGENT}\n")
    )
    assert settings.http.user_agent == "from-os-environ (+https://example.org)"


# ------------------------------------------------------------------------ valid files


def test_bundled_feeds_yaml_is_valid_and_about_ai_export_controls() -> None:
    settings = load_settings(ROOT / "feeds.yaml", env={})
    assert settings.slack.token is None  # no SLACK_BOT_TOKEN here: console mode
    assert [topic.id for topic in settings.topics] == ["ai-export-controls"]
    assert [route.channel for route in settings.routes] == ["#export-controls"]
    tiers = {source.tier for source in effective_sources(settings)}
    assert {"primary", "wire", "aggregator"} <= tiers
    assert any(source.kind == "page" and source.selectors for source in settings.sources)
    assert any("federalregister.gov" in source.url for source in settings.sources)
    assert settings.store.url == f"sqlite:///{ROOT / 'monitor.db'}"


def test_every_bundled_source_has_a_comment_saying_what_it_brings() -> None:
    lines = (ROOT / "feeds.yaml").read_text(encoding="utf-8").splitlines()
    start, end = lines.index("sources:"), lines.index("topics:")
    for number in range(start, end):
        if lines[number].startswith("  - id:"):
            above = lines[number - 1].strip()
            assert above.startswith("#"), f"source at line {number + 1} has no comment above it"


def test_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        write(config_dir, MINIMAL + "store:\n  url: sqlite:///data/m.db?timeout=5\n"), env={}
    )
    assert settings.store.url == f"sqlite:///{config_dir / 'data' / 'm.db'}?timeout=5"
    # Idempotent, and other URLs are left alone.
    assert resolve_store_url(settings, "/elsewhere/feeds.yaml") == settings.store.url
    for url in (
        "sqlite:///:memory:",
        "sqlite://",
        "postgresql+psycopg://u@db/monitor",
        "sqlite:////abs/m.db",
    ):
        other = settings.model_copy(
            update={"store": settings.store.model_copy(update={"url": url})}
        )
        assert resolve_store_url(other, config_dir / "feeds.yaml") == url


def test_effective_source_fills_inherited_values(tmp_path: Path) -> None:
    text = (
        "defaults:\n  interval: 20m\n  jitter: 5s\n  tier: blog\n"
        "sources:\n"
        "  - {id: a, name: Alpha, url: https://a.example/feed}\n"
        "  - {id: b, name: Beta, url: https://b.example/feed, outlet: Beta Daily, owner: beta-group,"
        " tier: wire, interval: 1h30m, topics: [t]}\n"
        "  - {id: c, name: Off, url: https://c.example/feed, enabled: false}\n"
        "topics:\n  - {id: t, name: T}\n"
    )
    settings = load_settings(write(tmp_path, text), env={})
    alpha = effective_source(settings, settings.sources[0])
    assert (
        alpha.outlet,
        alpha.owner,
        alpha.tier,
        alpha.interval,
        alpha.jitter,
        alpha.topics,
        alpha.enabled,
    ) == (
        "Alpha",
        "",
        "blog",
        timedelta(minutes=20),
        timedelta(seconds=5),
        None,
        True,
    )
    beta = effective_source(settings, settings.sources[1])
    assert (beta.outlet, beta.owner, beta.tier, beta.interval, beta.topics) == (
        "Beta Daily",
        "beta-group",
        "wire",
        timedelta(hours=1, minutes=30),
        ("t",),
    )
    assert [source.id for source in effective_sources(settings)] == ["a", "b"]
    everything = effective_sources(settings, include_disabled=True)
    assert [source.id for source in everything] == ["a", "b", "c"]


def test_yaml_scalars_mean_what_an_operator_typed(tmp_path: Path) -> None:
    # YAML 1.1 would read Off as false and 07:30 as the number 450.
    text = (
        "sources:\n  - {id: c, name: Off, url: https://c.example/feed, enabled: no}\n"
        "topics:\n  - {id: t, name: T}\n"
        "routes:\n  - topic: t\n    channel: '#t'\n    quiet_hours: {start: 22:00, end: 07:30}\n"
    )
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.sources[0].name == "Off"
    assert settings.sources[0].enabled is False
    assert settings.routes[0].quiet_hours is not None
    assert (settings.routes[0].quiet_hours.start, settings.routes[0].quiet_hours.end) == (
        "22:00",
        "07:30",
    )


def test_summary_lists_sources_with_next_run_topics_routes_and_digests() -> None:
    settings = load_settings(ROOT / "feeds.yaml", env={})
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    lines = summary_lines(
        settings, "feeds.yaml", now, {"federal-register-bis": now + timedelta(minutes=7)}
    )
    text = "\n".join(lines)
    assert lines[0].startswith(f"feeds.yaml: OK — {len(settings.sources)} sources")
    assert "federal-register-bis" in text and "2026-11-23 12:07 UTC (in 7m)" in text
    assert "ai-export-controls → #export-controls" in text
    # 08:00 in New York on Monday 23 November is 13:00 UTC.
    assert (
        "morning: '0 8 * * 1-5' America/New_York → #export-controls, next 2026-11-23 13:00 UTC (in 1h)"
        in text
    )
    assert "alerts are printed to the console" in text


def test_summary_never_prints_the_slack_token(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "slack:\n  token: ${SLACK_BOT_TOKEN}\n")
    settings = load_settings(path, env={"SLACK_BOT_TOKEN": "xoxb-secret-123"})
    text = "\n".join(summary_lines(settings, path, datetime.now(UTC), None))
    assert "xoxb-secret-123" not in text
    assert "bot token set" in text


# ------------------------------------------------------------------------ monitor check


def run_check(file: str) -> int:
    parser = argparse.ArgumentParser(prog="monitor")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["check", file])
    return int(args.func(args))


def test_check_on_bundled_file_prints_summary_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_check(str(ROOT / "feeds.yaml")) == 0
    out = capsys.readouterr().out
    assert "OK — " in out and "bis-news" in out and "next run" in out


def test_check_on_broken_file_prints_problems_to_stderr_and_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    assert cmd_check(argparse.Namespace(file="duplicate_id.yaml")) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "duplicate_id.yaml:10: sources[2].id: duplicate source id 'bis-press' (first defined at line 2)",
        "duplicate_id.yaml: 1 problem",
    ]


def test_check_defaults_to_feeds_yaml_in_the_working_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    parser = argparse.ArgumentParser(prog="monitor")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["check"])
    assert cmd_check(args) == 0
    assert capsys.readouterr().out.startswith("feeds.yaml: OK")
    # Under `monitor --config FILE check`, the global option names the file.
    args = argparse.Namespace(file=None, config=str(FIXTURES / "duplicate_id.yaml"))
    assert cmd_check(args) == 1
    assert "duplicate source id 'bis-press'" in capsys.readouterr().err


def test_python_dash_m_monitor_cli_check_exit_codes() -> None:
    env = {key: value for key, value in os.environ.items() if key != "SLACK_BOT_TOKEN"}
    bad = subprocess.run(
        [sys.executable, "-m", "monitor.cli.check", str(FIXTURES / "bad_duration.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert bad.returncode == 1
    assert "sources[0].interval: invalid duration '10x'" in bad.stderr
    good = subprocess.run(
        [sys.executable, "-m", "monitor.cli.check", "feeds.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert good.returncode == 0, good.stderr


# -------------------------------------------------------------------------- reloading


def test_reload_keeps_old_settings_when_the_new_file_is_invalid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, MINIMAL)
    times = iter(
        [datetime(2026, 11, 22, 10, 0, tzinfo=UTC), datetime(2026, 11, 22, 10, 5, tzinfo=UTC)]
    )
    holder = ConfigHolder(path, env={}, clock=lambda: next(times))
    original = holder.settings

    path.write_text(
        MINIMAL.replace("name: BIS\n", "name: BIS\n    interval: 10x\n"), encoding="utf-8"
    )
    with caplog.at_level(logging.ERROR, logger="monitor.config.load"):
        ok, message = holder.reload()
    assert not ok
    assert message == f"{path}: 1 problem; keeping the settings loaded at 2026-11-22 10:00:00 UTC"
    assert holder.settings is original
    assert f"{path}:4: sources[0].interval: invalid duration '10x'" in caplog.text

    path.write_text(
        MINIMAL.replace(
            "sources:\n", "sources:\n  - {id: new, name: New, url: https://n.example/feed}\n"
        ),
        encoding="utf-8",
    )
    ok, message = holder.reload()
    assert ok
    assert message == f"{path}: reloaded, sources: 1 added, 0 removed, 0 changed"
    assert [source.id for source in holder.settings.sources] == ["new", "bis"]
    assert holder.loaded_at == datetime(2026, 11, 22, 10, 5, tzinfo=UTC)


def test_reload_of_an_unchanged_file_and_change_detection(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    holder = ConfigHolder.load(path, env={})
    assert not holder.changed_on_disk()
    assert holder.reload() == (True, f"{path}: unchanged")
    path.write_text(MINIMAL + "# a comment changes the size\n", encoding="utf-8")
    assert holder.changed_on_disk()
    assert holder.reload() == (True, f"{path}: unchanged")
    assert not holder.changed_on_disk()


def test_holder_refuses_to_start_on_an_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        ConfigHolder(write(tmp_path, "sources: [1]\n"), env={})


def test_self_referencing_alias_and_alias_bomb_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "sources: &a [*a]\n"), env={})
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'feeds.yaml'}:1: sources[0]: an alias refers to the value that contains it"
    ]
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefg", "bcdefgh", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "\n".join(levels) + "\nsources: [*h]\n"), env={})
    assert "aliases expand this file to more than 200000 values" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n"), env={})
    assert caught.value.problems[0].message == "the file is nested too deeply"


def test_check_shows_next_runs_recorded_in_an_existing_sqlite_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.models import SourceHealth
    from monitor.store import sources
    from monitor.store.db import Store

    path = write(tmp_path, MINIMAL + "store:\n  url: sqlite:///state/monitor.db\n")
    assert cmd_check(argparse.Namespace(file=str(path))) == 0
    assert "at start" in capsys.readouterr().out
    assert not (tmp_path / "state" / "monitor.db").exists()  # check never creates a store

    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    store = Store.open(f"sqlite:///{tmp_path / 'state' / 'monitor.db'}")
    store.upgrade()
    with store.transaction() as conn:
        sources.save_health(conn, SourceHealth(source_id="bis", next_due=due))
    store.engine.dispose()

    assert cmd_check(argparse.Namespace(file=str(path))) == 0
    out = capsys.readouterr().out
    assert due.strftime("%Y-%m-%d %H:%M UTC") in out


def test_a_token_written_in_the_file_is_warned_about_without_echoing_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, MINIMAL + "slack:\n  token: xoxb-written-in-the-file\n")
    with caplog.at_level(logging.WARNING, logger="monitor.config.load"):
        settings = load_settings(path, env={})
    assert settings.slack.token == "xoxb-written-in-the-file"
    assert f"{path}:9: slack.token: a secret written in the file" in caplog.text
    assert "xoxb-written-in-the-file" not in caplog.text
