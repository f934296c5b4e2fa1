"""The distributed mode (README "Running on several machines"), run as operators run it:
`monitor worker` processes on a real broker, `monitor run --role …` on PostgreSQL, the local
feed farm of tests/distributed.py and the fake Slack.

Each test needs MONITOR_TEST_POSTGRES_URL and MONITOR_TEST_BROKER_URL (.ci/run sets both) and
skips, saying so, without them.
"""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import postgres_schema
from tests.distributed import (
    BROKER_ENV,
    FULL_ENV,
    POSTGRES_ENV,
    Farm,
    Process,
    monitor,
    needs,
    rows,
    slack_view,
    snapshot,
    unique_queue,
    wait_for,
    workers,
    write_config,
)
from tests.fakeslack import FakeSlack

pytestmark = pytest.mark.timeout(1500)  # CI runs 22 kill runs of ~15 s each

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def sqlite_snapshot(db: Path) -> dict[str, list[tuple]]:
    return snapshot(f"sqlite:///{db}")


def two_cycles(farm: Farm, config: Path, *args: str) -> list[str]:
    outputs = []
    for cycle in (1, 2):
        farm.cycle = cycle
        result = monitor("run", "--once", *args, config=config, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        outputs.append(result.stdout)
    return outputs


def test_one_process_and_four_workers_give_the_same_articles_developments_alerts_and_messages(tmp_path: Path) -> None:
    env = needs(POSTGRES_ENV, BROKER_ENV)
    with Farm(NOW).running() as farm:
        with FakeSlack(channels={"alerts": "C0ALERTS01"}) as slack:
            single = write_config(tmp_path / "single.yaml", farm, slack, store=f"sqlite:///{tmp_path / 'single.db'}")
            two_cycles(farm, single)
            expected = sqlite_snapshot(tmp_path / "single.db"), slack_view(slack)
        assert expected[0]["alerts"], "the farm should give alerts"
        assert any(d[3] == "corroborated" for d in expected[0]["developments"])

        with postgres_schema(env[POSTGRES_ENV]) as url, FakeSlack(channels={"alerts": "C0ALERTS01"}) as slack:
            config = write_config(tmp_path / "cluster.yaml", farm, slack, store=url, broker=env[BROKER_ENV], queue=unique_queue())
            with workers(config, 4, tmp_path):
                outputs = two_cycles(farm, config, "--role", "leader")
            got = snapshot(url), slack_view(slack)
    assert "polls analysed" in outputs[0]
    assert got[0]["articles"] == expected[0]["articles"]
    assert got[0]["developments"] == expected[0]["developments"]
    assert got[0]["alerts"] == expected[0]["alerts"]
    assert got[1] == expected[1]  # the same messages, threads and replies


# -- failures ----------------------------------------------------------------------------------


def kill_runs() -> int:
    """20 in CI (MONITOR_TEST_FULL_KILLS, set by .ci/run), 2 in a developer's default run."""
    return 20 if os.environ.get(FULL_ENV) else 2


def received_task_ids(log: str) -> list[str]:
    return re.findall(r"Task monitor\.poll_batch\[([0-9a-f-]+)\] received", log)


def baseline(tmp_path: Path, farm: Farm) -> tuple[set[str], int]:
    """Article pages and Slack parent messages (stories alerted) of the one-process run of cycle 2."""
    with FakeSlack(channels={"alerts": "C0ALERTS01"}) as slack:
        config = write_config(tmp_path / "single.yaml", farm, slack, store=f"sqlite:///{tmp_path / 'single.db'}")
        farm.cycle = 2
        result = monitor("run", "--once", config=config, timeout=300)
        assert result.returncode == 0, result.stderr
        alerted = len(slack.messages("#alerts"))
    found = snapshot(f"sqlite:///{tmp_path / 'single.db'}")
    return {a[2] for a in found["articles"]}, alerted


def settled(url: str, articles: int) -> bool:
    try:
        waiting = rows(url, "SELECT count(*) FROM intake_batch WHERE done_at IS NULL")[0][0]
        stored = rows(url, "SELECT count(*) FROM article")[0][0]
        pending = rows(url, "SELECT count(*) FROM alert WHERE state NOT IN ('sent', 'silenced', 'superseded', 'failed')")[0][0]
        claims = rows(url, "SELECT count(*) FROM source_state WHERE claim_token IS NOT NULL")[0][0]
    except Exception:  # tables not there yet
        return False
    return waiting == 0 and stored >= articles and pending == 0 and claims == 0


def test_killed_workers_owner_and_relay_lose_nothing_and_post_nothing_twice(tmp_path: Path) -> None:
    env = needs(POSTGRES_ENV, BROKER_ENV)
    runs = kill_runs()
    twice = 0
    with Farm(NOW, delay=0.4).running() as farm:
        expected, corroborated = baseline(tmp_path, farm)
        assert corroborated
        # `runs` runs kill a whole worker, a quarter as many more kill one pool child, then one
        # run kills the analysis owner mid-drain and one kills it mid-delivery (its relay).
        kills = ["worker"] * runs + ["child"] * max(1, runs // 4) + ["owner", "relay"]
        for run, what in enumerate(kills):
            twice += one_kill_run(tmp_path / f"run{run}", farm, env, what, expected, corroborated)
    assert twice > 0, "no run showed a task executed twice: idempotency was not exercised"


def one_kill_run(tmp: Path, farm: Farm, env: dict[str, str], what: str, expected: set, corroborated: int) -> int:
    tmp.mkdir()
    farm.cycle = 2
    with postgres_schema(env[POSTGRES_ENV]) as url, FakeSlack(channels={"alerts": "C0ALERTS01"}) as slack:
        config = write_config(tmp / "cluster.yaml", farm, slack, store=url, broker=env[BROKER_ENV], queue=unique_queue(), interval="1h")
        with workers(config, 2, tmp, concurrency=2) as started:
            leader = Process(config, "run", "--role", "leader", log=tmp / "leader.log")
            owner = Process(config, "run", "--role", "analysis", log=tmp / "owner.log")
            spare: list[Process] = []
            try:
                if what in ("worker", "child"):
                    wait_for(lambda: any(received_task_ids(p.output()) for p in started), 60, leader.output)
                    victim = next(p for p in started if received_task_ids(p.output()))
                    time.sleep(0.3)  # mid-batch: its article pages take 0.4 s each
                    if what == "worker":
                        victim.kill()
                        spare.append(Process(config, "worker", "--concurrency", "2", log=tmp / "spare.log"))
                    else:
                        for pid in victim.children():
                            os.kill(pid, signal.SIGKILL)
                else:
                    if what == "owner":  # mid-drain: some polls analysed, more coming
                        wait_for(lambda: settled_tables(url) and rows(url, "SELECT count(*) FROM intake_batch WHERE done_at IS NOT NULL")[0][0] > 0, 60, owner.output)
                    else:  # mid-delivery: the first message is out, the rest are not
                        wait_for(lambda: bool(slack.calls_to("chat.postMessage")), 60, owner.output)
                    owner.kill()
                    owner = Process(config, "run", "--role", "analysis", log=tmp / "owner2.log")
                wait_for(lambda: settled(url, len(expected)), 120, lambda: leader.output()[-3000:] + owner.output()[-3000:])
                time.sleep(1)  # a redelivered task may still be running: let it finish
                wait_for(lambda: settled(url, len(expected)), 60, owner.output)
                logs = "".join(p.output() for p in (*started, *spare))
            finally:
                for process in (leader, owner, *spare):
                    process.stop()
        # By page: polled in parallel, a mirror's copy may be stored before the original's
        # (the one-process run reads the feeds in order), but every story is stored once.
        urls = [a[2] for a in snapshot(url)["articles"]]
        assert len(urls) == len(set(urls)), f"{what}: an article stored twice"
        assert set(urls) == expected, f"{what}: lost {expected - set(urls)}, extra {set(urls) - expected}"
        ids = received_task_ids(logs)
        twice = len(ids) - len(set(ids))
        parents = slack.messages("#alerts")
        by_dev: dict[str, int] = {}
        for message in parents:
            by_dev[message.get("text", "")] = by_dev.get(message.get("text", ""), 0) + 1
        assert all(n == 1 for n in by_dev.values()), f"{what}: a development posted twice: {by_dev}"
        # Every corroborated story alerted, as the one-process run alerts it, and every parent
        # the store decided on is in Slack.
        decided = rows(url, "SELECT count(*) FROM alert WHERE kind = 'new' AND state = 'sent'")[0][0]
        assert len(parents) == corroborated == decided, f"{what}: {len(parents)} messages, {decided} sent, {corroborated} expected"
        for message in parents:
            texts = [r.get("text") for r in slack.replies("#alerts", message["ts"])]
            assert len(texts) == len(set(texts)), f"{what}: a thread reply posted twice"
    return twice


def settled_tables(url: str) -> bool:
    try:
        rows(url, "SELECT 1 FROM intake_batch LIMIT 1")
    except Exception:
        return False
    return True
