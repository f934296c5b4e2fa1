"""Issue 12, cases 15-17: configuration that `check` used to accept and `run` could not use.

What an operator sees is the point: `monitor check` prints one `file:line: key: message`
line per problem and exits 1 (never a traceback), and a reload that cannot be applied leaves
the settings, the runtime and the schedule exactly as they were.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from monitor.cli.check import cmd_check
from monitor.config.load import ConfigError, load_settings
from monitor.run.app import open_app
from monitor.run.scheduler import Service

BASE = """\
store:
  url: sqlite:///{db}
defaults:
  interval: {interval}
sources:
  - id: bis
    name: BIS
    url: https://www.bis.gov/news.rss
topics:
  - id: ai
    name: AI export controls
{extra}"""


def config(tmp_path: Path, *, interval: str = "15m", extra: str = "") -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(BASE.format(db=tmp_path / "m.db", interval=interval, extra=extra), encoding="utf-8")
    return path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cmd_check(argparse.Namespace(file=str(path)))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.err.splitlines()


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        ("0s", "must be at least 1s (the scheduler polls whole seconds), got 0s"),
        ("500ms", "must be at least 1s (the scheduler polls whole seconds), got 500ms"),
        ("99999999999d", "duration '99999999999d' is too long: at most 36500d (100 years)"),
    ],
)
def test_case15_17_intervals_run_cannot_use_are_refused_by_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], interval: str, message: str
) -> None:
    path = config(tmp_path, interval=interval)
    code, lines = check(path, capsys)
    assert code == 1
    assert lines == [f"{path}:4: defaults.interval: {message}", f"{path}: 1 problem"]


def test_case16_quiet_hours_need_real_clock_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes = 'routes:\n  - topic: ai\n    channel: "#c"\n    quiet_hours: {start: "25:00", end: "07:60"}\n'
    path = config(tmp_path, extra=routes)
    code, lines = check(path, capsys)
    assert code == 1
    assert lines == [
        f"{path}:15: routes[0].quiet_hours.end: invalid time '07:60': hours are 00-23 and minutes 00-59, e.g. 07:30",
        f"{path}:15: routes[0].quiet_hours.start: invalid time '25:00': hours are 00-23 and minutes 00-59, e.g. 07:30",
        f"{path}: 2 problems",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9" * 400 + "MB", "size is too large: at most 1TB"),
        ("0", "must be greater than or equal to 1000, got 0"),
        ("-5", "a size cannot be negative, got -5"),
        ("5GB", "must be less than or equal to 1000000000, got 5000000000"),
    ],
)
def test_case17_max_body_must_be_a_usable_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    path = config(tmp_path, extra=f"http:\n  max_body: {value}\n")
    code, lines = check(path, capsys)
    assert code == 1
    assert lines[0].startswith(f"{path}:13: http.max_body: ")
    assert lines[0].endswith(message)


def test_case17_a_cron_that_never_fires_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digests = 'digests:\n  - id: leap\n    cron: "0 0 31 2 *"\n    channel: "#c"\n'
    path = config(tmp_path, extra=digests)
    code, lines = check(path, capsys)
    assert code == 1
    assert lines[0] == f"{path}:14: digests[0].cron: cron expression '0 0 31 2 *' never fires (no such date in the next years)"


def test_case15_http_timeouts_of_zero_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, extra="http:\n  deadline: 0s\n")
    code, lines = check(path, capsys)
    assert code == 1
    assert lines[0] == f"{path}:13: http.deadline: must be at least 100ms, got 0s"


async def test_case15_a_reload_that_cannot_be_applied_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = config(tmp_path, interval="1h")
    async with open_app(path) as app:
        service = Service(app.holder, app.runtime, relay=app.relay.deliver_due)
        service.scheduler.start(paused=True)  # real job store semantics, nothing runs
        service.schedule_sources()
        before = (app.runtime.settings, dict(app.runtime.sources), [j.id for j in service.scheduler.get_jobs()])
        loaded_at = app.holder.loaded_at

        def refuse() -> None:  # a part of the monitor that cannot take the new settings
            if app.holder.settings.defaults.interval.total_seconds() == 120:
                raise RuntimeError("cannot reschedule\nsecond line of detail")

        service.on_reload.append(refuse)
        path.write_text(path.read_text().replace("interval: 1h", "interval: 2m").replace(
            "sources:\n", "sources:\n  - {id: new, name: New, url: https://n.example/feed}\n"), encoding="utf-8")
        with caplog.at_level(logging.INFO):
            service.reload()

        assert (app.runtime.settings, dict(app.runtime.sources), [j.id for j in service.scheduler.get_jobs()]) == before
        assert app.holder.settings is before[0] and app.holder.loaded_at == loaded_at
        ok, message = app.holder.last_result
        assert not ok
        assert message.startswith(f"{path}: could not be applied (cannot reschedule); keeping the settings loaded at ")
        assert "config reload could not be applied: cannot reschedule" in caplog.text
        assert "Traceback" not in caplog.text

        # The same edit without the refusal applies whole.
        service.on_reload.remove(refuse)
        service.reload()
        assert sorted(app.runtime.sources) == ["bis", "new"]
        assert sorted(j.id for j in service.scheduler.get_jobs()) == ["source:bis", "source:new"]
        service.scheduler.shutdown(wait=False)


def test_a_removed_key_says_what_to_do_instead(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("topics:\n  - id: t\n    name: T\n    impact:\n      act_threshold: 8\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    [problem] = caught.value.problems
    assert str(problem) == (
        f"{path}:5: topics[0].impact.act_threshold: 'act_threshold' is no longer a setting: nothing read it; "
        "on-call alerts follow routes[].oncall_threshold, so delete it"
    )
