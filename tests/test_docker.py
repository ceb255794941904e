"""docker/ checked against the code, since Docker cannot run here.

The compose file, Dockerfile, entrypoint and Dagster instance config are parsed and every
reference is resolved for real: files exist and are in the build context, every command
is run with ``--help`` through the real CLI (so a renamed command or option fails here),
every variable is a setting or a documented Dagster/Postgres/AWS one, ports match the
settings, the production dagster.yaml opens a real Postgres storage, and the entrypoint
is executed against the real TimescaleDB.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import uuid
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

import click
import psycopg
import pytest
import yaml
from click.testing import CliRunner as ClickRunner
from psycopg import sql
from typer.testing import CliRunner

from observatory_storage.cli import app
from observatory_storage.settings import PROJECT_ROOT, Settings

DOCKER = PROJECT_ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"
ENTRYPOINT = DOCKER / "entrypoint.sh"
INSTANCE_YAML = DOCKER / "dagster.yaml"
WORKSPACE_YAML = DOCKER / "workspace.yaml"
APP_DIR = "/app"  # WORKDIR of the image: relative paths in commands resolve against the repo
BIN = Path(sys.executable).parent

HEALTH_PORT = Settings.model_fields["health_port"].default
METRICS_PORT = Settings.model_fields["metrics_port"].default
WEBSERVER_PORT, CODE_SERVER_PORT = 3000, 4000
LONG_RUNNING = ("code-location", "dagster-webserver", "dagster-daemon", "observatory")

# Variables documented by the images and tools the compose file configures.
POSTGRES_IMAGE_VARS = {
    "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE", "POSTGRES_DB", "POSTGRES_INITDB_ARGS", "PGDATA",
    "TIMESCALEDB_TELEMETRY", "TS_TUNE_MEMORY", "TS_TUNE_NUM_CPUS", "TS_TUNE_MAX_CONNS",
}
LIBPQ_VARS = {"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE",
              "PGSSLROOTCERT", "PGAPPNAME", "PGCONNECT_TIMEOUT"}
AWS_VARS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
            "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE"}
PYTHON_VARS = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_DISABLE_PIP_VERSION_CHECK",
               "PIP_NO_CACHE_DIR", "VIRTUAL_ENV", "PATH"}


# --- parsing --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> [(INSTRUCTION, arguments)], continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.I)
            current = stages.setdefault(m.group(2) or m.group(1), [])
            current.append(("FROM", m.group(1)))
        elif current is not None:
            current.append((instruction, args.strip()))
    return stages


def copy_instructions(stage: list[tuple[str, str]]) -> list[tuple[list[str], str, bool]]:
    """(sources, destination, from_another_stage) of each COPY."""
    found = []
    for instruction, args in stage:
        if instruction != "COPY":
            continue
        words = shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        found.append((paths[:-1], paths[-1], any(f.startswith("--from") for f in flags)))
    return found


def stage_chain(stages: dict, name: str) -> list[str]:
    """The stage and the stages it is built FROM, nearest first."""
    chain = [name]
    while (parent := stages[chain[-1]][0][1]) in stages:
        chain.append(parent)
    return chain


def service_command(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def service_environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: str(v) for k, v in env.items()}


def commands_used(services: dict) -> list[tuple[str, list[str]]]:
    """Every argv the deployment runs: service commands, healthchecks, Dockerfile CMDs."""
    found = []
    for name, service in services.items():
        if not str(service.get("image", "")).startswith("observatory-storage:"):
            continue  # third-party images (TimescaleDB, Prometheus) run their own programs
        if service.get("command"):
            found.append((name, service_command(service)))
        test = (service.get("healthcheck") or {}).get("test")
        if isinstance(test, list) and test and test[0] == "CMD":
            found.append((f"{name} healthcheck", test[1:]))
    for line in ENTRYPOINT.read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("#") and (m := re.search(r"observatory-storage [a-z ]+", line)):
            found.append(("entrypoint.sh", m.group(0).split()))
    for stage, instructions in dockerfile_stages().items():
        for instruction, args in instructions:
            if instruction in ("CMD", "HEALTHCHECK"):
                exec_form = args[args.index("["):] if "[" in args else None
                if exec_form:
                    found.append((f"Dockerfile {stage} {instruction}", yaml.safe_load(exec_form)))
    return found


_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against ``env``."""

    def substitute(m: re.Match) -> str:
        name, op, arg = m.groups()
        present = env.get(name)
        if op in (":?", "?") and not present:
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and not present:
            return arg
        return present or ""

    return _VARIABLE.sub(substitute, value)


def ports(service: dict) -> dict[int, int]:
    """container port -> published host port."""
    mapped = {}
    for spec in service.get("ports", []):
        parts = str(spec).split(":")
        mapped[int(parts[-1])] = int(parts[-2])
    return mapped


# --- files ------------------------------------------------------------------------------------


def test_build_and_bind_mount_sources_exist(services):
    for name, service in services.items():
        if build := service.get("build"):
            context = (DOCKER / build["context"]).resolve()
            assert context == PROJECT_ROOT, name
            assert (context / build["dockerfile"]).is_file(), name
            assert build["target"] in dockerfile_stages(), f"{name}: no stage {build['target']}"
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"{name}: bind mount {source} missing"
        for env_file in service.get("env_file", []):
            entry = env_file if isinstance(env_file, dict) else {"path": env_file}
            if entry.get("required", True):
                assert (DOCKER / entry["path"]).exists(), f"{name}: env_file {entry['path']}"


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes", {}))
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} not declared"
    assert {"tsdb-data", "landing"} <= declared


def test_every_copy_source_exists_and_is_in_the_build_context():
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!")
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat.rstrip("/*")) or (
                pat.endswith("/**") and path.startswith(pat[:-3] + "/")
            ):
                result = not negate
        return result

    for stage, instructions in dockerfile_stages().items():
        for sources, _, from_stage in copy_instructions(instructions):
            if from_stage:
                continue
            for source in sources:
                assert (PROJECT_ROOT / source).exists(), f"{stage}: COPY {source} missing"
                assert not ignored(source), f"{stage}: COPY {source} excluded by .dockerignore"
    assert ignored(".venv/bin/python") and ignored(".cache/pgdata/PG_VERSION")
    assert ignored(".git/config") and not ignored("sql/migrations/0001_backend_helpers.sql")
    assert ignored("secrets/postgres_password") and ignored(".env")  # secrets stay out


def test_image_carries_every_path_the_package_reads_at_runtime():
    """PROJECT_ROOT / "x" in the package means /app/x must be in the image."""
    needed = {"workspace.yaml", "dagster.yaml"}
    for source in (PROJECT_ROOT / "observatory_storage").rglob("*.py"):
        for top in re.findall(r"PROJECT_ROOT\s*/\s*\"([^\"/]+)", source.read_text(encoding="utf-8")):
            # created at run time, or read only by the doc generators (not in the image)
            if top not in (".cache", "bench-results", "landing", ".env.example"):
                needed.add(top)
    stages = dockerfile_stages()
    copied = set()
    for stage in stage_chain(stages, "runtime"):
        for sources, dest, from_stage in copy_instructions(stages[stage]):
            if not from_stage:
                copied.update(Path(s).name if dest.endswith("/") or dest == "./" else s
                              for s in sources)
                copied.add(Path(dest).name)
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
    assert "sql" in needed and "README.md" in copied


def test_migrations_are_found_in_the_image_layout():
    """The image installs the package editable under /app, so PROJECT_ROOT is /app."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "WORKDIR /app" in text and 'pip install -e ".[postgres-storage]"' in text
    assert "COPY sql ./sql" in text
    from observatory_storage.maintenance.migrate import MIGRATIONS_DIR

    assert MIGRATIONS_DIR == PROJECT_ROOT / "sql" / "migrations"


def test_dagster_postgres_extra_is_pinned_with_the_dagster_family():
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'postgres-storage = \["dagster-postgres==0\.29\.27"[],]', pyproject)
    assert '"dagster==1.13.27"' in pyproject
    assert importlib.util.find_spec("dagster_postgres") is not None


# --- image ------------------------------------------------------------------------------------


def test_dockerfile_runs_as_uid_1000_with_a_liveness_healthcheck():
    stages = dockerfile_stages()
    assert list(stages)[-1] == "runtime", "runtime must be the default (last) stage"
    assert stages["base"][0] == ("FROM", "${PYTHON_IMAGE}")
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE.read_text())
    for target in ("runtime", "dev"):
        users = [args for ins, args in stages[target] if ins == "USER"]
        assert users and users[-1].split(":")[0] == "1000", target
    assert "--uid 1000" in " ".join(args for _, args in stages["base"])
    healthcheck = " ".join(args for ins, args in stages["runtime"] if ins == "HEALTHCHECK")
    assert "/health/live" in healthcheck
    assert "127.0.0.1" in healthcheck and f"'HEALTH_PORT', '{HEALTH_PORT}'" in healthcheck
    assert "curl" not in healthcheck and "urllib" in healthcheck
    exposed = {int(p) for ins, args in stages["runtime"] if ins == "EXPOSE" for p in args.split()}
    assert exposed == {HEALTH_PORT, METRICS_PORT, WEBSERVER_PORT, CODE_SERVER_PORT}
    entry = [args for ins, args in stages["app"] if ins == "ENTRYPOINT"]
    assert entry == ['["observatory-entrypoint"]']


def test_healthcheck_python_snippets_compile():
    for where, argv in commands_used(yaml.safe_load(COMPOSE_FILE.read_text())["services"]):
        if argv[:2] == ["python", "-c"]:
            compile(argv[2], where, "exec")


# --- commands ---------------------------------------------------------------------------------


def console_script(program: str) -> click.Command:
    """The click command behind an installed console script (its module's ``cli``)."""
    (entry,) = entry_points(group="console_scripts", name=program)
    command = importlib.import_module(entry.value.split(":")[0]).cli
    assert isinstance(command, click.Command), program
    return command


def test_every_command_exists_in_the_real_clis(services):
    runner = CliRunner()
    checked = set()
    for where, argv in commands_used(services):
        program, args = argv[0], argv[1:]
        if program == "observatory-storage":
            result = runner.invoke(app, [*args, "--help"])
            assert result.exit_code == 0, f"{where}: `{shlex.join(argv)}`: {result.output}"
            checked.add(args[0])
        elif program in ("dagster", "dagster-webserver", "dagster-daemon"):
            result = ClickRunner().invoke(console_script(program), [*args, "--help"])
            assert result.exit_code == 0, f"{where}: `{shlex.join(argv)}`: {result.output}"
            if "-m" in args:
                module = args[args.index("-m") + 1]
                assert importlib.util.find_spec(module), f"{where}: no module {module}"
            if "-w" in args:
                assert (PROJECT_ROOT / args[args.index("-w") + 1]).is_file(), where
        elif program.startswith("scripts/"):
            assert os.access(PROJECT_ROOT / program, os.X_OK), f"{where}: {program}"
        elif program != "python":
            pytest.fail(f"{where}: unknown program {program}")
    assert {"migrate", "serve", "dev", "bench", "db"} <= checked


def test_migrations_run_once_in_their_own_service(services):
    assert service_command(services["migrate"]) == ["observatory-storage", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in LONG_RUNNING:
        depends = services[name]["depends_on"]
        if name in ("dagster-webserver", "dagster-daemon"):  # behind the code location
            assert depends["code-location"]["condition"] == "service_healthy"
        else:
            assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert services[name]["restart"] == "unless-stopped"
        assert "limits" in services[name]["deploy"]["resources"], name
    code = [line for line in ENTRYPOINT.read_text().splitlines()
            if not line.lstrip().startswith("#")]
    assert not [line for line in code if "migrate" in line], "the entrypoint must not migrate"


def test_profiles_as_in_the_seed(services):
    assert services["dev"]["profiles"] == ["dev"]
    assert services["test"]["profiles"] == ["test"]
    assert services["bench"]["profiles"] == ["bench"]
    assert services["prometheus"]["profiles"] == ["monitoring"]  # tests/service/test_alert_rules.py
    assert service_command(services["dev"])[:2] == ["observatory-storage", "dev"]
    assert service_command(services["bench"])[:2] == ["observatory-storage", "bench"]
    assert service_command(services["test"])[0] == "scripts/test.sh"
    test_url = interpolate(service_environment(services["test"])["TEST_TIMESCALEDB_URL"], {})
    assert urlsplit(test_url).hostname == "timescaledb"
    for name in LONG_RUNNING + ("timescaledb", "migrate"):
        assert "profiles" not in services[name]


def test_timescaledb_service(services):
    tsdb = services["timescaledb"]
    assert re.fullmatch(r"timescale/timescaledb:2\.19\.\d+-pg17", tsdb["image"])
    assert "pg_isready" in " ".join(tsdb["healthcheck"]["test"])
    volumes = [str(v) for v in tsdb["volumes"]]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in volumes)
    # The init script is mounted as a file, so the image's own init scripts still run.
    init = [v for v in volumes if "/docker-entrypoint-initdb.d/" in v]
    assert init and all(not v.split(":")[1].endswith("initdb.d/") for v in init)
    assert all(str(p).startswith("127.0.0.1:") for p in tsdb["ports"])


# --- environment ------------------------------------------------------------------------------


def instance_env_vars() -> set[str]:
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(INSTANCE_YAML.read_text(encoding="utf-8")))
    return found


def allowed_variables() -> set[str]:
    settings = {name.upper() for name in Settings.model_fields}
    entrypoint = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", ENTRYPOINT.read_text()))
    entrypoint |= {f"{n}_FILE" for n in re.findall(r"for name in ([A-Z_ ]+);", ENTRYPOINT.read_text())[0].split()}
    test_harness = set()
    for path in (PROJECT_ROOT / "tests" / "conftest.py", PROJECT_ROOT / "scripts" / "test.sh",
                 PROJECT_ROOT / "tests" / "security" / "conftest.py"):
        test_harness |= set(re.findall(r"\b(TEST_[A-Z_]+|OBS_[A-Z_]+)\b", path.read_text()))
    dagster = {"DAGSTER_HOME"} | instance_env_vars()
    return (settings | entrypoint | test_harness | dagster | POSTGRES_IMAGE_VARS | LIBPQ_VARS
            | AWS_VARS | PYTHON_VARS)


def test_every_variable_is_a_setting_or_documented(services):
    allowed = allowed_variables()
    for name, service in services.items():
        unknown = set(service_environment(service)) - allowed
        assert not unknown, f"{name}: unknown variables {sorted(unknown)}"
    for stage, instructions in dockerfile_stages().items():
        for instruction, args in instructions:
            if instruction == "ENV":
                names = set(re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", args))
                assert names <= allowed, f"Dockerfile {stage}: {sorted(names - allowed)}"


def entrypoint_file_variables() -> set[str]:
    """NAME of each NAME_FILE the entrypoint turns into NAME."""
    return set(re.findall(r"for name in ([A-Z_ ]+);", ENTRYPOINT.read_text())[0].split())


def test_dagster_services_get_every_instance_variable(services):
    needed = instance_env_vars()
    assert {"DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD"} <= needed
    from_files = entrypoint_file_variables()
    for name in ("migrate", "code-location", "dagster-webserver", "dagster-daemon", "dev"):
        env = service_environment(services[name])
        given = set(env) | {n.removesuffix("_FILE") for n in env
                            if n.removesuffix("_FILE") in from_files}
        assert needed <= given, f"{name}: missing {sorted(needed - given)}"
        assert env["DAGSTER_HOME"] == "/opt/dagster/home"
        assert env["DAGSTER_PG_HOST"] == "timescaledb"
        database_url = interpolate(env["DATABASE_URL"], {})
        assert urlsplit(database_url).hostname == "timescaledb"
    initdb = (DOCKER / "initdb" / "100_dagster_database.sql").read_text()
    assert f"CREATE DATABASE {service_environment(services['code-location'])['DAGSTER_PG_DB']} " in initdb


def test_passwords_are_docker_secrets_never_values(compose, services):
    """Every password is a file under /run/secrets of a secret the service mounts; no
    environment value, URL or argument holds one, and the secret file stays out of git."""
    declared = compose["secrets"]
    assert set(declared) == {"postgres_password"}
    for secret in declared.values():
        assert secret["file"].startswith("../secrets/"), secret  # the repo's git-ignored secrets/
    assert "secrets/" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    product_settings = {n.upper() for n in Settings.model_fields}
    readers = product_settings | {f"{n}_FILE" for n in entrypoint_file_variables()} | {
        "POSTGRES_PASSWORD_FILE"}
    for name, service in services.items():
        mounted = set(service.get("secrets", []))
        for key, raw in service_environment(service).items():
            value = interpolate(raw, {})  # no variable from the host is needed for a secret
            if "PASSWORD" in key:
                assert key.endswith("_FILE") and key in readers, f"{name}: {key} is not a file"
                secret = value.removeprefix("/run/secrets/")
                assert value.startswith("/run/secrets/") and secret in declared, (name, key)
                assert secret in mounted, f"{name}: {key} names {secret}, not mounted"
            if "://" in value:
                assert urlsplit(value).password is None, f"{name}: {key} holds a password"
        for arg in service_command(service):
            assert "PASSWORD" not in arg, f"{name}: a password in argv is visible to ps"
            if "://" in arg:
                assert urlsplit(interpolate(arg, {})).password is None, name
    timescaledb = service_environment(services["timescaledb"])
    assert timescaledb["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    app = service_environment(services["code-location"])
    assert app["DB_PASSWORD_FILE"] == app["DAGSTER_PG_PASSWORD_FILE"] == \
        timescaledb["POSTGRES_PASSWORD_FILE"]  # one secret: the server's and the clients'

    assert set(compose_required_variables()) == set(), "compose must start without a .env"


def compose_required_variables() -> list[str]:
    return re.findall(r"\$\{([A-Z_][A-Z0-9_]*):?\?", COMPOSE_FILE.read_text(encoding="utf-8"))


# --- ports ------------------------------------------------------------------------------------


def test_ports_match_settings_and_commands(services):
    assert ports(services["observatory"]) == {HEALTH_PORT: 8082, METRICS_PORT: 9092}
    assert ports(services["dagster-webserver"]) == {WEBSERVER_PORT: WEBSERVER_PORT}
    assert all(str(p).startswith("127.0.0.1:") for p in services["dagster-webserver"]["ports"])
    web = service_command(services["dagster-webserver"])
    assert web[web.index("-p") + 1] == str(WEBSERVER_PORT)
    code = service_command(services["code-location"])
    assert code[code.index("-p") + 1] == str(CODE_SERVER_PORT)
    assert code[code.index("-h") + 1] == "0.0.0.0"
    grpc = yaml.safe_load(WORKSPACE_YAML.read_text())["load_from"][0]["grpc_server"]
    assert (grpc["host"], grpc["port"]) == ("code-location", CODE_SERVER_PORT)
    assert services["code-location"]["healthcheck"]["test"][-1] == str(CODE_SERVER_PORT)
    assert ports(services["dev"]) == {WEBSERVER_PORT: 3001, HEALTH_PORT: 8083, METRICS_PORT: 9093}
    serve = service_command(services["observatory"])
    assert serve[serve.index("--host") + 1] == "0.0.0.0"


# --- Dagster instance -------------------------------------------------------------------------


def test_production_instance_equals_the_local_one_except_storage():
    local = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    production = yaml.safe_load(INSTANCE_YAML.read_text(encoding="utf-8"))
    for key, value in local.items():
        assert production.get(key) == value, f"docker/dagster.yaml differs from dagster.yaml at {key}"
    assert "postgres" in production["storage"]
    assert production["run_queue"]["dequeue_interval_seconds"] == 1
    limits = production["concurrency"]["runs"]["tag_concurrency_limits"]
    assert any(limit["key"] == "dataset" for limit in limits)
    assert production["run_retries"]["enabled"] and production["run_monitoring"]["enabled"]


def test_production_instance_opens_real_postgres_storage(server_urls, tmp_path, monkeypatch):
    from dagster import DagsterInstance
    from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    admin_url = server_urls["timescaledb"]
    name = f"obs_test_dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    monkeypatch.setenv("DAGSTER_PG_HOST", parts.hostname)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(parts.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_DB", name)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", parts.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", parts.password or "unused-with-trust-auth")
    (tmp_path / "dagster.yaml").write_text(INSTANCE_YAML.read_text())
    try:
        with DagsterInstance.from_config(str(tmp_path)) as instance:
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            queue = instance.get_concurrency_config().run_queue_config
            assert queue.tag_concurrency_limits[0]["key"] == "dataset"
            assert instance.run_retries_enabled and instance.run_monitoring_enabled
            assert instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.QUEUED])) == []
        with psycopg.connect(admin_url.rsplit("/", 1)[0] + f"/{name}") as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
        assert {"runs", "event_logs", "jobs", "job_ticks"} <= tables
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


# --- entrypoint, executed ---------------------------------------------------------------------


def run_entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in
             {n.upper() for n in Settings.model_fields} and not k.endswith("_FILE")}
    clean["PATH"] = f"{BIN}{os.pathsep}{clean.get('PATH', '')}"
    return subprocess.run(["sh", str(ENTRYPOINT), *command], env=clean | env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_entrypoint_waits_for_the_database_then_execs(server_urls):
    result = run_entrypoint({"DATABASE_URL": server_urls["timescaledb"]}, "echo", "started")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "started\n"


def test_entrypoint_gives_up_after_its_bound_without_leaking_the_password():
    secret = "Entry-p0int-secret"
    result = run_entrypoint(
        {"DATABASE_URL": f"postgresql://obs:{secret}@127.0.0.1:1/observatory",
         "WAIT_FOR_DB_SECONDS": "2"},
        "echo", "must-not-run",
    )
    assert result.returncode == 3
    assert "must-not-run" not in result.stdout
    assert "database not reachable after 2s" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_entrypoint_fails_fast_on_a_bad_setting():
    result = run_entrypoint(
        {"DATABASE_URL": "postgresql://obs@127.0.0.1:1/x", "DB_POOL_MAX_SIZE": "abc"}, "true"
    )
    assert result.returncode == 2
    assert "DB_POOL_MAX_SIZE" in result.stderr and "waiting" not in result.stderr


def test_entrypoint_reads_secrets_from_files(server_urls, tmp_path):
    """DAGSTER_PG_PASSWORD_FILE/PGPASSWORD_FILE become variables; DATABASE_URL_FILE is left
    to the product, whose settings read it (the wait's `db status` reaches the database)."""
    (tmp_path / "database_url").write_text(server_urls["timescaledb"] + "\n")
    (tmp_path / "dagster_pw").write_text("dagster-S3cret\n")
    result = run_entrypoint(
        {"DATABASE_URL_FILE": str(tmp_path / "database_url"),
         "DAGSTER_PG_PASSWORD_FILE": str(tmp_path / "dagster_pw"),
         "PGPASSWORD_FILE": str(tmp_path / "dagster_pw"), "EXPECTED": server_urls["timescaledb"]},
        "python", "-c",
        "import os; from observatory_storage.settings import load_settings;"
        " print(load_settings().database_url == os.environ['EXPECTED'],"
        " 'DATABASE_URL' in os.environ, os.environ['DAGSTER_PG_PASSWORD'] == 'dagster-S3cret',"
        " os.environ['PGPASSWORD'] == 'dagster-S3cret', 'DAGSTER_PG_PASSWORD_FILE' in os.environ)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True False True True False\n"
    assert "dagster-S3cret" not in result.stderr
    missing = run_entrypoint({"DATABASE_URL_FILE": str(tmp_path / "nope")}, "true")
    assert missing.returncode == 2 and "DATABASE_URL_FILE: cannot read" in missing.stderr
    missing = run_entrypoint({"DAGSTER_PG_PASSWORD_FILE": str(tmp_path / "nope")}, "true")
    assert missing.returncode == 2 and "DAGSTER_PG_PASSWORD_FILE" in missing.stderr
