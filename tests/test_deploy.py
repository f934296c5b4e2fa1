"""The deployment files match the package: paths, entry point, health endpoint, and the offline
validators accept them and reject broken copies."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy import verify
from monitor.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTIONS = verify.parse_dockerfile(verify.DOCKERFILE.read_text(encoding="utf-8"))
FINAL = verify.final_stage(INSTRUCTIONS)


def test_every_copy_source_exists_in_the_build_context() -> None:
    sources = [source for source, _line in verify.copy_sources(INSTRUCTIONS)]
    assert {"monitor", "alerts", "pyproject.toml", "feeds.yaml"} <= set(sources)
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert missing == []


def test_entry_point_is_the_console_script_and_runs_the_monitor() -> None:
    (entry,) = [verify.exec_form(i.args) for i in FINAL if i.keyword == "ENTRYPOINT"]
    (cmd,) = [verify.exec_form(i.args) for i in FINAL if i.keyword == "CMD"]
    assert entry == ["monitor"]
    assert verify.console_scripts()["monitor"] == "monitor.cli.main:main"
    args = build_parser().parse_args(cmd)
    assert args.command == "run" and args.once is False


def test_bundled_config_is_where_monitor_config_points() -> None:
    env = verify.env_values(FINAL)
    copies = {verify.shlex.split(i.args)[-1]: verify.shlex.split(i.args)[0] for i in FINAL if i.keyword == "COPY" and "--from" not in i.args}
    assert copies[env["MONITOR_CONFIG"]] == "feeds.yaml"
    assert env["MONITOR_STORE_URL"].startswith("sqlite:////var/lib/monitor/")
    assert "/var/lib/monitor" in {i.args.strip('[]" ') for i in FINAL if i.keyword == "VOLUME"}


def test_runs_as_a_non_root_user_and_stops_on_sigterm() -> None:
    (user,) = [i.args for i in FINAL if i.keyword == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert [i.args for i in FINAL if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]


async def test_the_healthcheck_command_passes_against_a_live_monitor_and_fails_without(tmp_path: Path) -> None:
    from monitor.ops.server import serve_if_enabled
    from monitor.run.app import open_app
    from monitor.run.scheduler import Service

    (check,) = [verify.exec_form(i.args.split(None, 5)[-1].removeprefix("CMD ").strip()) for i in FINAL if i.keyword == "HEALTHCHECK"]
    assert check is not None and check[0] == "python"  # no curl in the slim image

    config = tmp_path / "feeds.yaml"
    config.write_text("store:\n  url: sqlite:///m.db\nserver:\n  enabled: true\n", encoding="utf-8")
    async with open_app(config) as app:
        service = Service(app.holder, app.runtime, relay=app.relay.deliver_due)
        async with serve_if_enabled(app, service, port=0) as server:
            assert server is not None
            command = [sys.executable, *check[1:-1], check[-1].replace("127.0.0.1:9108", f"127.0.0.1:{server.port}")]
            alive = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=30)
        dead = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=30)
    assert alive.returncode == 0
    assert dead.returncode != 0


def test_dockerfile_check_passes_and_catches_a_broken_copy(tmp_path: Path) -> None:
    assert verify.check_dockerfile().problems == []
    broken = tmp_path / "Dockerfile"
    text = verify.DOCKERFILE.read_text(encoding="utf-8")
    broken.write_text(
        text.replace("COPY alerts ./alerts", "COPY alert ./alerts")
        .replace('ENTRYPOINT ["monitor"]', 'ENTRYPOINT ["exportwatch"]')
        .replace("/healthz", "/health"),
        encoding="utf-8",
    )
    problems = " ".join(verify.check_dockerfile(broken).problems)
    assert "COPY source 'alert' does not exist" in problems
    assert "'exportwatch' is not a console script" in problems
    assert "HEALTHCHECK asks /health," in problems


def _compose_copy(tmp_path: Path, doc: dict) -> Path:
    target = tmp_path / "deploy" / "compose.yaml"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(doc), encoding="utf-8")  # JSON: no shared anchors left
    shutil.copy(verify.DEPLOY / ".env.example", target.parent / ".env.example")
    shutil.copy(verify.DOCKERFILE, target.parent / "Dockerfile")
    return target


def test_compose_passes_and_a_missing_health_gate_or_bad_key_fails(tmp_path: Path) -> None:
    assert verify.check_compose().problems == []
    doc = yaml.safe_load(verify.COMPOSE.read_text(encoding="utf-8"))
    del doc["services"]["postgres"]["healthcheck"]
    doc["services"]["monitor"]["depends_on"] = ["postgres"]
    doc["services"]["monitor"]["restart_policy"] = "always"  # not a compose key
    problems = verify.check_compose(_compose_copy(tmp_path, doc)).problems
    text = " ".join(problems)
    assert "compose-spec schema" in text
    assert "condition: service_healthy" in text
    assert "postgres needs a healthcheck" in text


def test_unit_has_the_hardening_and_systemd_accepts_it() -> None:
    result = verify.check_unit()
    assert result.problems == []
    values = verify.unit_settings(verify.UNIT.read_text(encoding="utf-8"))
    assert values["ExecStart"] == ["/opt/monitor/bin/monitor run"]
    assert values["KillSignal"] == ["SIGTERM"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_catches_a_misspelt_directive() -> None:
    text = verify.UNIT.read_text(encoding="utf-8").replace("ProtectSystem=strict", "ProtectSystem=strictest")
    problems = verify.systemd_analyze(shutil.which("systemd-analyze") or "", text, "monitor.service")
    assert any("ProtectSystem" in p or "protect system" in p.lower() for p in problems), problems


def test_missing_hardening_is_reported(tmp_path: Path) -> None:
    unit = tmp_path / "monitor.service"
    unit.write_text(verify.UNIT.read_text(encoding="utf-8").replace("NoNewPrivileges=yes\n", ""), encoding="utf-8")
    assert "NoNewPrivileges=yes is missing" in verify.check_unit(unit).problems


def test_k8s_manifests_validate_and_their_config_loads() -> None:
    result = verify.check_k8s()
    assert result.problems == []
    assert any("ConfigMap feeds.yaml validates" in note for note in result.notes)


def test_k8s_two_replicas_and_an_unknown_field_are_rejected(tmp_path: Path) -> None:
    for path in verify.K8S.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    deployment = yaml.safe_load((tmp_path / "deployment.yaml").read_text(encoding="utf-8"))
    deployment["spec"]["replicas"] = 2
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/healthz"
    (tmp_path / "deployment.yaml").write_text(json.dumps(deployment), encoding="utf-8")
    problems = " ".join(verify.check_k8s(tmp_path).problems)
    assert "exactly one replica" in problems
    assert "kubernetes-validate" in problems and "pth" in problems


def test_verify_command_exits_zero_on_the_repository() -> None:
    done = subprocess.run([sys.executable, "-m", "deploy.verify"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not verified here" in done.stdout


# --- the distributed mode: compose profile, Kubernetes roles, the image's extra ---------------


def test_compose_default_is_one_process_and_the_profile_holds_the_roles() -> None:
    result = verify.check_compose()
    assert result.problems == []
    doc = yaml.safe_load(verify.COMPOSE.read_text(encoding="utf-8"))
    services = doc["services"]
    assert sorted(n for n, s in services.items() if not s.get("profiles")) == ["monitor", "postgres"]
    roles = {name: verify.cli_role(services[name]["command"]) for name in ("leader", "worker", "analysis")}
    assert roles == {"leader": "leader", "worker": "worker", "analysis": "analysis"}
    assert services["leader"]["deploy"]["replicas"] == 2 and services["analysis"]["deploy"]["replicas"] == 2
    assert services["worker"]["environment"]["MONITOR_BROKER_URL"].startswith("amqp://monitor:")
    assert any("profile `distributed`: rabbitmq, leader ×2, worker ×2, analysis ×2" in note for note in result.notes)


def test_compose_typos_and_a_lone_leader_fail(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(yaml.safe_load(verify.COMPOSE.read_text(encoding="utf-8"))))
    services = doc["services"]
    services["worker"]["command"] = ["worker", "--concurency", "2"]
    services["analysis"]["command"] = "run --role leader"
    services["leader"]["deploy"]["replicas"] = 1
    services["worker"]["healthcheck"]["test"] = ["CMD", "monitor", "db", "curent"]
    del services["rabbitmq"]["profiles"]
    services["worker"]["depends_on"] = ["postgres", "rabbitmq"]
    problems = "\n".join(verify.check_compose(_compose_copy(tmp_path, doc)).problems)
    assert "service worker: command `monitor worker --concurency 2`: monitor: error: unrecognized arguments: --concurency 2" in problems
    assert "service analysis: its command runs leader, not analysis" in problems
    assert "service worker: healthcheck `monitor db curent`" in problems
    assert "service leader: deploy.replicas should be 2" in problems
    assert "must start the one-process monitor and postgres only, not monitor, postgres, rabbitmq" in problems
    assert "service worker must depend on rabbitmq with condition: service_healthy" in problems


def test_k8s_distributed_manifests_validate() -> None:
    result = verify.check_k8s_distributed()
    assert result.problems == []
    assert "roles: monitor-analysis runs analysis, monitor-leader runs leader, monitor-worker runs worker" in result.notes
    assert any("PostgreSQL and the broker from their environment" in note for note in result.notes)


def test_k8s_distributed_typo_single_leader_and_overlapping_selector_fail(tmp_path: Path) -> None:
    for path in verify.K8S_DISTRIBUTED.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)

    def edit(name: str, change) -> None:  # noqa: ANN001
        doc = yaml.safe_load((tmp_path / name).read_text(encoding="utf-8"))
        change(doc)
        (tmp_path / name).write_text(json.dumps(doc), encoding="utf-8")

    edit("leader.yaml", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(args=["run", "--roel", "leader"]))
    edit("analysis.yaml", lambda d: d["spec"].update(replicas=1))
    edit("worker.yaml", lambda d: (d["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "exportwatch-monitor"}),
                                   d["spec"]["template"]["metadata"]["labels"].update({"app.kubernetes.io/name": "exportwatch-monitor"})))
    problems = "\n".join(verify.check_k8s_distributed(tmp_path).problems)
    assert "Deployment monitor-leader: args `monitor run --roel leader`: monitor: error: unrecognized arguments: --roel" in problems
    assert "no Deployment for the role(s) leader" in problems
    assert "Deployment monitor-analysis: replicas should be 2" in problems
    assert "Deployment monitor's selector also picks monitor-worker's pods" in problems
    assert "Service monitor-metrics selects monitor-worker's pods" in problems


def test_the_image_installs_the_distributed_extra_unless_told_not_to(tmp_path: Path) -> None:
    assert verify.installed_extras(INSTRUCTIONS) == ["distributed"]
    assert "celery[redis]>=5.4" in verify.optional_dependencies()["distributed"]
    slim = tmp_path / "Dockerfile"
    slim.write_text(verify.DOCKERFILE.read_text(encoding="utf-8").replace("ARG EXTRAS=distributed", "ARG EXTRAS="), encoding="utf-8")
    assert verify.installed_extras(verify.parse_dockerfile(slim.read_text(encoding="utf-8"))) == []
    assert any("without the `distributed` extra" in p for p in verify.check_dockerfile(slim).problems)


def test_every_monitor_command_line_is_checked_with_the_real_parser() -> None:
    assert verify.cli_problem(["run", "--role", "analysis"]) is None
    assert verify.cli_role(["--config", "/etc/monitor/feeds.yaml", "run", "--role", "leader"]) == "leader"
    assert verify.cli_role(["run"]) == "monitor" and verify.cli_role(["run", "--once"]) is None
    assert "invalid choice: 'owner'" in (verify.cli_problem(["run", "--role", "owner"]) or "")
    assert verify.monitor_argv(["CMD", "monitor", "status"], entrypoint="") == ["status"]
    assert verify.monitor_argv(["CMD-SHELL", "pg_isready -U monitor"], entrypoint="") is None
