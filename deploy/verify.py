"""Offline checks of the deployment files: `python -m deploy.verify` (part of `make lint`).

What is checked, and with what:

- compose.yaml: against the Compose Specification JSON schema vendored in check-jsonschema
  (`--builtin-schema vendor.compose-spec`, no network), plus `docker-compose config` /
  `docker compose config` when one of them is installed (neither needs an engine), plus the
  wiring the monitor relies on (PostgreSQL health-gated start, named volume, env file, the
  Dockerfile it builds).
- monitor.service: `systemd-analyze verify` when installed (with ExecStart pointed at this
  checkout's `monitor` script, since /opt/monitor does not exist on a build machine; any
  warning about the unit fails), plus the hardening directives the README promises.
- k8s/*.yaml: `kubernetes-validate --strict` (offline schemas), plus one replica, Recreate,
  probes on paths the server serves, non-root and a read-only root file system, and the
  ConfigMap's feeds.yaml passing the monitor's own validation.
- Dockerfile: COPY sources exist, the entry point is the console script pyproject declares,
  the HEALTHCHECK asks a path monitor/ops/server.py serves, non-root user, SIGTERM, and the bundled
  feeds.yaml is where MONITOR_CONFIG points. The bundled feeds.yaml itself must validate.

Nothing here builds an image or starts a container: there is no engine on the build machines.
A tool that is not installed is reported as "skipped: ..." and does not fail the run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
UNIT = DEPLOY / "monitor.service"
K8S = DEPLOY / "k8s"
TOOL_TIMEOUT = 120

# Environment a deployment provides; used to validate the configs the way they will be loaded.
DEPLOY_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-0000-verify",
    "MONITOR_STORE_URL": "sqlite:////var/lib/monitor/monitor.db",
    "MONITOR_SERVER_ENABLED": "true",
    "MONITOR_SERVER_HOST": "0.0.0.0",
}


@dataclass
class Result:
    """One check: `problems` empty means it passed; `skipped` says why it could not run."""

    name: str
    problems: list[str] = field(default_factory=list)
    skipped: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- Dockerfile -------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, COPY, ...
    args: str  # the rest of the (joined) line
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = ""
    return instructions


def exec_form(args: str) -> list[str] | None:
    """`["monitor", "run"]` → ['monitor', 'run']; None for the shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def copy_sources(instructions: list[Instruction]) -> list[tuple[str, int]]:
    """Paths COPY/ADD take from the build context (not `--from=` stages)."""
    sources = []
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        words = [w for w in shlex.split(ins.args)]
        if any(w.startswith("--from=") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        form = exec_form(ins.args)
        if form is not None:
            words = form
        sources += [(src, ins.line) for src in words[:-1]]
    return sources


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    return instructions[starts[-1] :] if starts else instructions


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.args):
                key, sep, value = word.partition("=")
                if sep:
                    values[key] = value
    return values


def console_scripts() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return dict(tomllib.load(handle)["project"].get("scripts", {}))


def served_paths() -> set[str]:
    """The GET routes monitor/ops/server.py registers."""
    from monitor.ops.server import build_web_app

    class _Parts:
        holder: Any = None
        store: Any = None

    class _Service:
        ready = False

    app = build_web_app(_Parts(), _Service())
    return {resource.canonical for resource in app.router.resources()}


def healthcheck_urls(instructions: list[Instruction]) -> list[str]:
    return [
        url
        for ins in instructions
        if ins.keyword == "HEALTHCHECK"
        for url in re.findall(r"https?://[^\s'\"]+", ins.args)
    ]


def check_dockerfile(path: Path = DOCKERFILE, context: Path = ROOT) -> Result:
    result = Result(f"Dockerfile ({path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})")
    problems = result.problems
    instructions = parse_dockerfile(path.read_text(encoding="utf-8"))
    final = final_stage(instructions)
    for source, line in copy_sources(instructions):
        if not (context / source).exists():
            problems.append(f"line {line}: COPY source {source!r} does not exist in the build context")
    scripts = console_scripts()
    entry = [exec_form(i.args) for i in final if i.keyword == "ENTRYPOINT"]
    if not entry or not entry[-1]:
        problems.append("no ENTRYPOINT in exec form")
    elif entry[-1][0] not in scripts:
        problems.append(f"ENTRYPOINT {entry[-1][0]!r} is not a console script in pyproject.toml ({', '.join(scripts)})")
    cmd = [exec_form(i.args) for i in final if i.keyword == "CMD"]
    if not cmd or cmd[-1] != ["run"]:
        problems.append("CMD should be [\"run\"] (the long-running monitor)")
    urls = healthcheck_urls(final)
    paths = served_paths()
    if not urls:
        problems.append("no HEALTHCHECK asking the health endpoint")
    for url in urls:
        route = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
        if route not in paths:
            problems.append(f"HEALTHCHECK asks {route}, which monitor/ops/server.py does not serve ({', '.join(sorted(paths))})")
    if any(i.keyword == "HEALTHCHECK" and "curl" in i.args.split() for i in final):
        problems.append("HEALTHCHECK uses curl, which the slim image does not have")
    users = [i.args for i in final if i.keyword == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the final stage must switch to a non-root USER")
    signals = [i.args for i in final if i.keyword == "STOPSIGNAL"]
    if signals and signals[-1] != "SIGTERM":
        problems.append(f"STOPSIGNAL {signals[-1]}: the monitor stops cleanly on SIGTERM")
    env = env_values(final)
    config = env.get("MONITOR_CONFIG")
    destinations = {shlex.split(i.args)[-1] for i in final if i.keyword == "COPY"}
    if not config:
        problems.append("MONITOR_CONFIG is not set (cli.py reads it as the default --config)")
    elif config not in destinations:
        problems.append(f"MONITOR_CONFIG={config} but no COPY puts a file there")
    if any(i.keyword == "COPY" and shlex.split(i.args)[-1] == config and "feeds.yaml" in i.args for i in final):
        result.notes += _validate_config_file(context / "feeds.yaml", problems)
    return result


def _validate_config_file(path: Path, problems: list[str], env: dict[str, str] | None = None) -> list[str]:
    from monitor.config.load import ConfigError, load_settings

    try:
        settings = load_settings(path, {**os.environ, **(env or DEPLOY_ENV)})
    except ConfigError as exc:
        problems += [f"{path.name}: {problem}" for problem in exc.problems]
        return []
    if not settings.server.enabled:
        problems.append(f"{path.name}: with the deployment's environment the health server is off, so the probes would fail")
    return [f"{path.name} validates with the deployment's environment"]


# --- compose -------------------------------------------------------------------------------


def check_compose(path: Path = COMPOSE) -> Result:
    result = Result(f"compose ({path.name})")
    schema = _run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)])
    if schema is None:
        result.problems.append("check-jsonschema is not installed (pip install -e '.[test]')")
    elif schema.returncode != 0:
        result.problems.append("compose-spec schema: " + _tail(schema.stdout + schema.stderr))
    else:
        result.notes.append("valid against the compose-spec schema (vendored in check-jsonschema)")
    result.notes.append(_compose_config(path, result))
    result.problems += compose_structure(yaml.safe_load(path.read_text(encoding="utf-8")), path.parent)
    return result


def compose_structure(doc: dict[str, Any], base: Path) -> list[str]:
    """The wiring the monitor needs, beyond what the schema says."""
    problems: list[str] = []
    services = doc.get("services") or {}
    monitor, postgres = services.get("monitor"), services.get("postgres")
    if not monitor or not postgres:
        return ["services `monitor` and `postgres` are both needed"]
    depends = monitor.get("depends_on") or {}
    gate = depends.get("postgres") if isinstance(depends, dict) else None  # the short list form has no condition
    if not isinstance(gate, dict) or gate.get("condition") != "service_healthy":
        problems.append("monitor must depend on postgres with condition: service_healthy")
    if not (postgres.get("healthcheck") or {}).get("test"):
        problems.append("postgres needs a healthcheck for the health-gated start")
    named = set(doc.get("volumes") or {})
    mounts = [str(v).split(":")[0] for v in postgres.get("volumes") or []]
    if not any(m in named for m in mounts):
        problems.append("postgres data must live on a named volume declared under `volumes:`")
    env_files = monitor.get("env_file")
    if not env_files:
        problems.append("monitor needs env_file (.env with SLACK_BOT_TOKEN)")
    if not (base / ".env.example").exists():
        problems.append("deploy/.env.example is missing")
    elif "SLACK_BOT_TOKEN" not in (base / ".env.example").read_text(encoding="utf-8"):
        problems.append(".env.example does not mention SLACK_BOT_TOKEN")
    store_url = str((monitor.get("environment") or {}).get("MONITOR_STORE_URL", ""))
    if not store_url.startswith("postgresql"):
        problems.append("monitor's MONITOR_STORE_URL should point at the postgres service")
    build = monitor.get("build") or {}
    if isinstance(build, dict):
        context = (base / str(build.get("context", "."))).resolve()
        dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
        if not dockerfile.exists():
            problems.append(f"build.dockerfile {dockerfile} does not exist")
    return problems


def _compose_config(path: Path, result: Result) -> str:
    """`docker-compose config -q` or `docker compose config -q`, if either is installed."""
    candidates = []
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    if shutil.which("docker"):
        probe = _run(["docker", "compose", "version"])
        if probe is not None and probe.returncode == 0:
            candidates.append(["docker", "compose"])
    if not candidates:
        return "skipped: docker-compose not installed (the schema check above stands in for `docker-compose config`)"
    with tempfile.TemporaryDirectory() as tmp:
        # `config` insists on the env_file; run it on a copy next to the example as `.env`,
        # with the repository linked in so relative paths (build context, mounts) resolve.
        work = Path(tmp) / "deploy"
        work.mkdir()
        shutil.copy(path, work / path.name)
        example = path.parent / ".env.example"
        shutil.copy(example if example.exists() else DEPLOY / ".env.example", work / ".env")
        for item in ROOT.iterdir():
            if item.name != "deploy":
                (Path(tmp) / item.name).symlink_to(item)
        command = [*candidates[0], "-f", str(work / path.name), "config", "-q"]
        done = _run(command, env={**os.environ, "POSTGRES_PASSWORD": "verify"}, cwd=work)
    if done is None:
        return "skipped: docker-compose could not run"
    if done.returncode != 0:
        result.problems.append(f"{' '.join(candidates[0])} config: " + _tail(done.stdout + done.stderr))
        return ""
    return f"`{' '.join(candidates[0])} config` accepts it"


# --- systemd -------------------------------------------------------------------------------

REQUIRED_UNIT = {
    "DynamicUser": "yes",
    "StateDirectory": "monitor",
    "ProtectSystem": "strict",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "Restart": "on-failure",
    "ExecReload": "/bin/kill -HUP $MAINPID",
}


def unit_settings(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values.setdefault(key.strip(), []).append(value.strip())
    return values


def check_unit(path: Path = UNIT) -> Result:
    result = Result(f"systemd unit ({path.name})")
    text = path.read_text(encoding="utf-8")
    values = unit_settings(text)
    for key, wanted in REQUIRED_UNIT.items():
        if wanted not in values.get(key, []):
            result.problems.append(f"{key}={wanted} is missing")
    for key in ("WorkingDirectory", "EnvironmentFile", "ExecStart"):
        if key not in values:
            result.problems.append(f"{key}= is missing")
    exec_start = (values.get("ExecStart") or [""])[0].split()
    if exec_start and Path(exec_start[0]).name not in console_scripts():
        result.problems.append(f"ExecStart runs {exec_start[0]}, not the `monitor` console script")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        result.skipped = "systemd-analyze not installed"
        return result
    result.problems += systemd_analyze(analyze, text, path.name)
    if not result.problems:
        result.notes.append("systemd-analyze verify: no warnings")
    return result


def systemd_analyze(analyze: str, text: str, name: str) -> list[str]:
    """Warnings `systemd-analyze verify` prints about the unit (it exits 0 on many of them)."""
    script = shutil.which("monitor") or str(Path(sys.executable).with_name("monitor"))
    local = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={script}", text)
    with tempfile.TemporaryDirectory() as tmp:
        unit = Path(tmp) / name
        unit.write_text(local, encoding="utf-8")
        done = _run([analyze, "verify", str(unit)])
    if done is None:
        return ["systemd-analyze could not run"]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    # Lines about other units on this machine are not ours to fix.
    ours = [line.replace(str(unit), name) for line in lines if name in line]
    if done.returncode != 0 and not ours:
        ours = lines[-3:] or [f"exit status {done.returncode}"]
    return [f"systemd-analyze: {line}" for line in ours]


# --- Kubernetes ----------------------------------------------------------------------------


def k8s_documents(directory: Path = K8S) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                yield path, doc


def check_k8s(directory: Path = K8S) -> Result:
    result = Result(f"Kubernetes manifests ({directory.name}/)")
    files = sorted(str(p) for p in directory.glob("*.yaml"))
    done = _run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", *files])
    if done is None:
        result.problems.append("kubernetes-validate is not installed (pip install -e '.[test]')")
    elif done.returncode != 0:
        result.problems.append("kubernetes-validate: " + _tail(done.stdout + done.stderr, 8))
    else:
        result.notes.append(f"kubernetes-validate --strict: {len(files)} files pass")
    result.problems += k8s_structure(list(k8s_documents(directory)), result.notes)
    return result


def k8s_structure(docs: list[tuple[Path, dict[str, Any]]], notes: list[str]) -> list[str]:
    problems: list[str] = []
    kinds = {doc.get("kind"): doc for _path, doc in docs}
    deployment = kinds.get("Deployment")
    if deployment is None:
        return ["no Deployment"]
    spec = deployment.get("spec", {})
    if spec.get("replicas") != 1:
        problems.append("Deployment must run exactly one replica (the monitor owns its schedule)")
    if (spec.get("strategy") or {}).get("type") != "Recreate":
        problems.append("Deployment strategy must be Recreate (two pods must never share the SQLite file)")
    pod = spec.get("template", {}).get("spec", {})
    if not (pod.get("securityContext") or {}).get("runAsNonRoot"):
        problems.append("pod securityContext.runAsNonRoot must be true")
    paths = served_paths()
    for container in pod.get("containers", []):
        security = container.get("securityContext") or {}
        if not security.get("readOnlyRootFilesystem"):
            problems.append(f"container {container.get('name')}: readOnlyRootFilesystem must be true")
        for probe, wanted in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            path = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
            if path != wanted:
                problems.append(f"container {container.get('name')}: {probe} should ask {wanted}, not {path}")
            elif path not in paths:
                problems.append(f"{probe} asks {path}, which monitor/ops/server.py does not serve")
    if "PersistentVolumeClaim" not in kinds:
        problems.append("no PersistentVolumeClaim for the SQLite file")
    secret = kinds.get("Secret")
    if secret is None or "SLACK_BOT_TOKEN" not in (secret.get("stringData") or secret.get("data") or {}):
        problems.append("no Secret with SLACK_BOT_TOKEN")
    config = kinds.get("ConfigMap")
    if config is None or "feeds.yaml" not in (config.get("data") or {}):
        problems.append("no ConfigMap with feeds.yaml")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "feeds.yaml"
            path.write_text(config["data"]["feeds.yaml"], encoding="utf-8")
            env = _container_env(pod)
            notes += [f"ConfigMap {n}" for n in _validate_config_file(path, problems, env)]
    return problems


def _container_env(pod: dict[str, Any]) -> dict[str, str]:
    env = dict(DEPLOY_ENV)
    for container in pod.get("containers", []):
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
    return env


# --- running -------------------------------------------------------------------------------


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False, **kwargs)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


CHECKS: tuple[Callable[[], Result], ...] = (check_dockerfile, check_compose, check_unit, check_k8s)


def main() -> int:
    failed = 0
    for check in CHECKS:
        result = check()
        status = "ok" if result.ok else "FAIL"
        print(f"{status}: {result.name}")
        for note in result.notes:
            if note:
                print(f"    {note}")
        if result.skipped:
            print(f"    skipped: {result.skipped}")
        for problem in result.problems:
            print(f"    - {problem}")
        failed += not result.ok
    print("not verified here: building the image, starting containers, a cluster (no engine or cluster on build machines)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
