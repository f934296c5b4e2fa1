"""Offline checks of the deployment files: `python -m deploy.verify` (part of `make lint`).

What is checked, and with what:

- compose.yaml: against the Compose Specification JSON schema vendored in check-jsonschema
  (`--builtin-schema vendor.compose-spec`, no network), plus `docker-compose config` /
  `docker compose config` when one of them is installed (neither needs an engine), plus the
  wiring the monitor relies on (PostgreSQL health-gated start, named volume, env file, the
  Dockerfile it builds). The `distributed` profile: the default services stay the one-process
  monitor and PostgreSQL; RabbitMQ, two leaders, scalable workers and two analysis owners sit
  behind the profile, start after PostgreSQL and RabbitMQ are healthy, and reach both.
- Every `monitor` command line in the files (compose `command`s and healthchecks, the
  Kubernetes `args`, the unit's ExecStart, the image's CMD) parses with the real argparse
  parser and runs the role its service is named for, so a typo fails here, not at start.
- monitor.service: `systemd-analyze verify` when installed (with ExecStart pointed at this
  checkout's `monitor` script, since /opt/monitor does not exist on a build machine; any
  warning about the unit fails), plus the hardening directives the README promises.
- k8s/*.yaml: `kubernetes-validate --strict` (offline schemas), plus one replica, Recreate,
  probes on paths the server serves, non-root and a read-only root file system, and the
  ConfigMap's feeds.yaml passing the monitor's own validation.
- k8s/distributed/*.yaml: `kubernetes-validate --strict`, plus a leader Deployment with two
  replicas, an analysis owner with two, a worker Deployment; the one-process Deployment's
  image and ConfigMap; the store and broker URLs from a Secret; selectors that catch no other
  Deployment's pods; and the ConfigMap's feeds.yaml giving a PostgreSQL store and a broker
  with that environment.
- Dockerfile: COPY sources exist, the entry point is the console script pyproject declares,
  the HEALTHCHECK asks a path monitor/ops/server.py serves, non-root user, SIGTERM, and the bundled
  feeds.yaml is where MONITOR_CONFIG points. The bundled feeds.yaml itself must validate. The
  package is installed with the `distributed` extra by default (the roles need Celery).

Nothing here builds an image or starts a container: there is no engine on the build machines.
A tool that is not installed is reported as "skipped: ..." and does not fail the run.
"""

from __future__ import annotations

import contextlib
import io
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
K8S_DISTRIBUTED = K8S / "distributed"
TOOL_TIMEOUT = 120
DISTRIBUTED = "distributed"  # the compose profile and the pip extra

# Environment a deployment provides; used to validate the configs the way they will be loaded.
DEPLOY_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-0000-verify",
    "MONITOR_STORE_URL": "sqlite:////var/lib/monitor/monitor.db",
    "MONITOR_SERVER_ENABLED": "true",
    "MONITOR_SERVER_HOST": "0.0.0.0",
}
# What the distributed roles' environment adds (compose sets it, Kubernetes from a Secret).
ROLE_ENV = {
    "MONITOR_STORE_URL": "postgresql+psycopg://monitor:verify@postgres:5432/monitor",
    "MONITOR_BROKER_URL": "amqp://monitor:verify@rabbitmq:5672//",
}
# The role each distributed service or Deployment runs, named as `cli_role` names it.
ROLE_SERVICES = {"leader": "leader", "worker": "worker", "analysis": "analysis"}
STANDBY_ROLES = ("leader", "analysis")  # one holds the lock, the other stands by


# --- command lines ---------------------------------------------------------------------------


def cli_problem(argv: list[str]) -> str | None:
    """Why `monitor ARGV` would not start (argparse's own message), or None when it parses."""
    from monitor.cli.main import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:
            return f"`monitor {' '.join(argv)}` prints help and exits"
        lines = err.getvalue().strip().splitlines()
        return f"`monitor {' '.join(argv)}`: {lines[-1] if lines else f'exit status {exc.code}'}"
    return None


def cli_role(argv: list[str]) -> str | None:
    """The role `monitor ARGV` runs: 'monitor' (one process), 'leader', 'analysis', 'worker';
    None for any other command (or one that does not parse)."""
    from monitor.cli.main import build_parser

    if cli_problem(argv) is not None:
        return None
    args = build_parser().parse_args(argv)
    if args.command == "worker":
        return "worker"
    if args.command == "run" and not args.once:
        return "monitor" if args.role == "all" else str(args.role)
    return None


def monitor_argv(command: Any, entrypoint: str = "monitor") -> list[str] | None:
    """A command's arguments to `monitor` (a list or a shell-style string, after the image's
    entry point, or a healthcheck's `CMD monitor ...`); None when it runs something else."""
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    if words[:1] in (["CMD"], ["CMD-SHELL"]):
        words = shlex.split(words[1]) if words[0] == "CMD-SHELL" and len(words) == 2 else words[1:]
        entrypoint = ""
    if not entrypoint:
        if not words or Path(words[0]).name not in console_scripts():
            return None
        words = words[1:]
    return words


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
        result.notes += _validate_role_config(context / "feeds.yaml", ROLE_ENV, problems)
    if cmd and cmd[-1] and (problem := cli_problem(cmd[-1])):
        problems.append(f"CMD: {problem}")
    extras = installed_extras(instructions)
    declared = optional_dependencies()
    if extras is None:
        problems.append("no `pip install .[...]` of the package found in the Dockerfile")
    elif DISTRIBUTED not in extras:
        problems.append(f"the image installs the package without the `{DISTRIBUTED}` extra (the roles need Celery): pip install \".[{DISTRIBUTED}]\"")
    else:
        unknown = sorted(set(extras) - set(declared))
        if unknown:
            problems.append(f"pip installs extras pyproject.toml does not declare: {', '.join(unknown)}")
        result.notes.append(f"the image installs the package with the extras {', '.join(extras)} (by default)")
    return result


def optional_dependencies() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return dict(tomllib.load(handle)["project"].get("optional-dependencies", {}))


def expand_args(text: str, values: dict[str, str]) -> str:
    """Shell expansion of `$X`, `${X}`, `${X:-word}` and `${X:+word}` with build-arg values."""

    def one(match: re.Match[str]) -> str:
        name, op, word = match.group(1) or match.group(4), match.group(2), match.group(3) or ""
        value = values.get(name, "")
        if op == ":-":
            return value or expand_args(word, values)
        if op == ":+":
            return expand_args(word, values) if value else ""
        return value

    return re.sub(r"\$\{(\w+)(?:(:[-+])([^}]*))?\}|\$(\w+)", one, text)


def installed_extras(instructions: list[Instruction]) -> list[str] | None:
    """The extras the build's `pip install .[...]` of the package asks for, with the ARG
    defaults in force (None: no such install)."""
    args: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            args[name.strip()] = default.strip().strip('"')
        elif ins.keyword == "RUN" and "pip install" in ins.args:
            for word in shlex.split(expand_args(ins.args, args)):
                if word == "." or word.startswith(".["):
                    inner = word[2:-1] if word.startswith(".[") else ""
                    return [e.strip() for e in inner.split(",") if e.strip()]
    return None


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


def _validate_role_config(path: Path, env: dict[str, str], problems: list[str], label: str = "") -> list[str]:
    """The file gives the distributed roles a PostgreSQL store and a broker in `env`."""
    from monitor.config.load import ConfigError, load_settings

    name = label or path.name
    try:
        settings = load_settings(path, {**os.environ, **DEPLOY_ENV, **env})
    except ConfigError as exc:
        problems += [f"{name} (distributed environment): {problem}" for problem in exc.problems]
        return []
    if not settings.store.url.startswith("postgresql"):
        problems.append(f"{name}: with MONITOR_STORE_URL set the store is {settings.store.url}, not PostgreSQL (store.url: ${{MONITOR_STORE_URL:-…}})")
    if settings.distributed.broker_url != env.get("MONITOR_BROKER_URL"):
        problems.append(f"{name}: distributed.broker_url does not read MONITOR_BROKER_URL (broker_url: ${{MONITOR_BROKER_URL:-}})")
    return [f"{name} gives the distributed roles PostgreSQL and the broker from their environment"]


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
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    result.problems += compose_structure(doc, path.parent)
    if not result.problems:
        services = doc.get("services") or {}
        roles = ", ".join(f"{name} ×{(services[name].get('deploy') or {}).get('replicas', 1)}" for name in ROLE_SERVICES)
        result.notes.append(f"default: monitor and postgres; profile `{DISTRIBUTED}`: rabbitmq, {roles}; every `monitor` command parses")
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
    problems += compose_commands(services, str(monitor.get("image", "")))
    problems += compose_distributed(doc, base)
    return problems


def compose_commands(services: dict[str, Any], image: str) -> list[str]:
    """Every `command` of a service running the monitor's image, and every healthcheck that
    runs `monitor`, parses with the real parser; each service runs the role it is named for."""
    problems = []
    for name, service in services.items():
        runs_monitor = bool(service.get("build")) or (image and service.get("image") == image)
        command = service.get("command")
        if runs_monitor:
            argv = monitor_argv(command) if command is not None else ["run"]  # the image's CMD
            if argv is not None and (problem := cli_problem(argv)):
                problems.append(f"service {name}: command {problem}")
            else:
                wanted = ROLE_SERVICES.get(name, "monitor" if name == "monitor" else None)
                role = cli_role(argv or [])
                if wanted is not None and role != wanted:
                    problems.append(f"service {name}: its command runs {role or 'no role'}, not {wanted}")
        test = (service.get("healthcheck") or {}).get("test")
        if test:
            argv = monitor_argv(test, entrypoint="")
            if argv is not None and (problem := cli_problem(argv)):
                problems.append(f"service {name}: healthcheck {problem}")
    return problems


def _profiles(service: dict[str, Any]) -> list[str]:
    return [str(p) for p in service.get("profiles") or []]


def _depends_healthy(service: dict[str, Any], on: str) -> bool:
    depends = service.get("depends_on") or {}
    gate = depends.get(on) if isinstance(depends, dict) else None
    return isinstance(gate, dict) and gate.get("condition") == "service_healthy"


def compose_distributed(doc: dict[str, Any], base: Path) -> list[str]:
    """The `distributed` profile: RabbitMQ, two leaders, scalable workers, two analysis
    owners, none of which starts without the profile."""
    services = doc.get("services") or {}
    problems = []
    default = sorted(name for name, service in services.items() if not _profiles(service))
    if default != ["monitor", "postgres"]:
        problems.append(
            f"without a profile `docker compose up` must start the one-process monitor and postgres only, not {', '.join(default)}"
        )
    wanted = ("rabbitmq", *ROLE_SERVICES)
    missing = [name for name in wanted if name not in services]
    if missing:
        return [*problems, f"the `{DISTRIBUTED}` profile lacks the services {', '.join(missing)}"]
    for name in wanted:
        if DISTRIBUTED not in _profiles(services[name]):
            problems.append(f"service {name} must be in the `{DISTRIBUTED}` profile")
    rabbit = services["rabbitmq"]
    if not (rabbit.get("healthcheck") or {}).get("test"):
        problems.append("rabbitmq needs a healthcheck for the roles' health-gated start")
    for name in ROLE_SERVICES:
        service = services[name]
        for dependency in ("postgres", "rabbitmq"):
            if not _depends_healthy(service, dependency):
                problems.append(f"service {name} must depend on {dependency} with condition: service_healthy")
        env = service.get("environment") or {}
        if not isinstance(env, dict):
            problems.append(f"service {name}: environment should be a mapping")
            continue
        if "@postgres:" not in str(env.get("MONITOR_STORE_URL", "")) or not str(env.get("MONITOR_STORE_URL")).startswith("postgresql"):
            problems.append(f"service {name}: MONITOR_STORE_URL should point at the postgres service")
        broker = str(env.get("MONITOR_BROKER_URL", ""))
        if not broker.startswith("amqp://") or "@rabbitmq:" not in broker:
            problems.append(f"service {name}: MONITOR_BROKER_URL should point at the rabbitmq service (amqp://…@rabbitmq:5672//)")
        # `monitor run --role …` serves /healthz (the image's HEALTHCHECK); Celery's worker does not.
        test = (service.get("healthcheck") or {}).get("test")
        command = service.get("command") or [""]
        words = command.split() if isinstance(command, str) else [str(word) for word in command]
        serves_health = words[:1] == ["run"]
        if not serves_health and (not test or "/healthz" in json.dumps(test)):
            problems.append(f"service {name}: needs a healthcheck of its own (the image's asks /healthz, which `monitor worker` does not serve)")
        if service.get("container_name") or service.get("ports"):
            problems.append(f"service {name}: no container_name or published ports (replicas would collide)")
    for name in STANDBY_ROLES:
        replicas = (services[name].get("deploy") or {}).get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 2:
            problems.append(f"service {name}: deploy.replicas should be 2 (one holds the role, one stands by)")
    env_example = base / ".env.example"
    if env_example.exists() and "RABBITMQ_PASSWORD" not in env_example.read_text(encoding="utf-8"):
        problems.append(".env.example does not mention RABBITMQ_PASSWORD")
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
    elif exec_start and (problem := cli_problem(exec_start[1:])):
        result.problems.append(f"ExecStart: {problem}")
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
    _kubernetes_validate(sorted(str(p) for p in directory.glob("*.yaml")), result)
    result.problems += k8s_structure(list(k8s_documents(directory)), result.notes)
    return result


def _kubernetes_validate(files: list[str], result: Result) -> None:
    """kubernetes-validate --strict over the manifests: a problem, or a note that they pass."""
    done = _run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", *files])
    if done is None:
        result.problems.append("kubernetes-validate is not installed (pip install -e '.[test]')")
    elif done.returncode != 0:
        result.problems.append("kubernetes-validate: " + _tail(done.stdout + done.stderr, 8))
    else:
        result.notes.append(f"kubernetes-validate --strict: {len(files)} files pass")


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


def check_k8s_distributed(directory: Path = K8S_DISTRIBUTED, shared: Path = K8S) -> Result:
    """The distributed roles' manifests, next to the one-process ones whose ConfigMap, Slack
    Secret and image they share."""
    result = Result(f"Kubernetes manifests, distributed ({directory.relative_to(K8S.parent) if directory.is_relative_to(K8S.parent) else directory})")
    files = sorted(str(p) for p in directory.glob("*.yaml"))
    if not files:
        result.problems.append(f"no manifests in {directory}")
        return result
    _kubernetes_validate(files, result)
    result.problems += k8s_distributed_structure(list(k8s_documents(directory)), list(k8s_documents(shared)), result.notes)
    return result


def _by_kind(docs: list[tuple[Path, dict[str, Any]]], kind: str) -> dict[str, dict[str, Any]]:
    return {str(doc.get("metadata", {}).get("name")): doc for _path, doc in docs if doc.get("kind") == kind}


def _selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """Whether a matchLabels selector (or a Service's plain selector) picks pods with `labels`."""
    wanted = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def k8s_distributed_structure(
    docs: list[tuple[Path, dict[str, Any]]], shared: list[tuple[Path, dict[str, Any]]], notes: list[str]
) -> list[str]:
    problems: list[str] = []
    mine = _by_kind(docs, "Deployment")
    theirs = _by_kind(shared, "Deployment")
    secrets = {**_by_kind(shared, "Secret"), **_by_kind(docs, "Secret")}
    configmaps = {**_by_kind(shared, "ConfigMap"), **_by_kind(docs, "ConfigMap")}
    images = {c.get("image") for d in theirs.values() for c in d["spec"]["template"]["spec"].get("containers", [])}
    roles: dict[str, str] = {}
    role_env: dict[str, str] = {}
    config_name = ""
    for name, deployment in mine.items():
        spec = deployment.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        containers = pod.get("containers", [])
        if len(containers) != 1:
            problems.append(f"Deployment {name}: one container expected")
            continue
        container = containers[0]
        command = container.get("command")
        if command and Path(str(command[0])).name not in console_scripts():
            problems.append(f"Deployment {name}: command {command[0]} is not the `monitor` console script")
        argv = [*(command or [])[1:], *container.get("args", [])]
        problem = cli_problem(argv)
        role = cli_role(argv)
        if problem:
            problems.append(f"Deployment {name}: args {problem}")
        elif role not in ROLE_SERVICES:
            problems.append(f"Deployment {name}: `monitor {' '.join(argv)}` is not a distributed role")
        elif role in roles.values():
            problems.append(f"Deployment {name}: a second Deployment of the role {role}")
        else:
            roles[name] = role
        replicas = spec.get("replicas", 1)
        if role in STANDBY_ROLES and replicas != 2:
            problems.append(f"Deployment {name}: replicas should be 2 (one holds the {role} role, one stands by), not {replicas}")
        if images and container.get("image") not in images:
            problems.append(f"Deployment {name}: image {container.get('image')} is not the one-process Deployment's ({', '.join(sorted(map(str, images)))})")
        if not (pod.get("securityContext") or {}).get("runAsNonRoot"):
            problems.append(f"Deployment {name}: pod securityContext.runAsNonRoot must be true")
        if not (container.get("securityContext") or {}).get("readOnlyRootFilesystem"):
            problems.append(f"Deployment {name}: readOnlyRootFilesystem must be true")
        env = {item["name"]: item for item in container.get("env", [])}
        for key in ("MONITOR_STORE_URL", "MONITOR_BROKER_URL"):
            ref = ((env.get(key) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
            secret = secrets.get(str(ref.get("name")))
            values = (secret or {}).get("stringData") or (secret or {}).get("data") or {}
            if not ref:
                problems.append(f"Deployment {name}: {key} should come from a Secret (secretKeyRef)")
            elif ref.get("key") not in values:
                problems.append(f"Deployment {name}: {key} refers to Secret {ref.get('name')} key {ref.get('key')}, which is not defined here")
            elif "stringData" in (secret or {}):
                role_env[key] = str(values[ref["key"]])
        mounts = {m.get("name"): m.get("mountPath") for m in container.get("volumeMounts", [])}
        volumes = {v.get("name"): v for v in pod.get("volumes", [])}
        config_path = str((env.get("MONITOR_CONFIG") or {}).get("value", ""))
        for volume, mount in mounts.items():
            maps = (volumes.get(volume) or {}).get("configMap")
            if maps and config_path.startswith(str(mount).rstrip("/") + "/"):
                config_name = str(maps.get("name"))
                if config_name not in configmaps:
                    problems.append(f"Deployment {name}: ConfigMap {config_name} is not defined")
        if not config_name:
            problems.append(f"Deployment {name}: MONITOR_CONFIG ({config_path or 'unset'}) is not on a mounted ConfigMap")
        labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
        for other, deployment_ in {**theirs, **mine}.items():
            if other != name and _selects(deployment_["spec"].get("selector", {}), labels):
                problems.append(f"Deployment {other}'s selector also picks {name}'s pods")
        for service_name, service in _by_kind(shared, "Service").items():
            if _selects(service.get("spec", {}).get("selector", {}), labels):
                problems.append(f"Service {service_name} selects {name}'s pods, which serve no port")
    absent = sorted(set(ROLE_SERVICES) - set(roles.values()))
    if absent:
        problems.append(f"no Deployment for the role(s) {', '.join(absent)}")
    config = configmaps.get(config_name)
    if config is not None and "feeds.yaml" in (config.get("data") or {}):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "feeds.yaml"
            path.write_text(config["data"]["feeds.yaml"], encoding="utf-8")
            notes += [f"ConfigMap {n}" for n in _validate_role_config(path, {**ROLE_ENV, **role_env}, problems, "feeds.yaml")]
    if roles:
        notes.append("roles: " + ", ".join(f"{name} runs {role}" for name, role in sorted(roles.items())))
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


CHECKS: tuple[Callable[[], Result], ...] = (check_dockerfile, check_compose, check_unit, check_k8s, check_k8s_distributed)


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
