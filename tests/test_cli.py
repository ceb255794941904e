"""The CLI end to end, as a user runs it: real processes, real databases, exit codes."""

import json
import os
import subprocess

import pytest

from observatory_storage.db import embedded
from observatory_storage.settings import PROJECT_ROOT
from tests.defs.files import write_broken, write_sample
from tests.process_utils import VENV_BIN, embedded_pgdata

CLI = str(VENV_BIN / "observatory-storage")
EXIT_DATABASE = 3


def cli(*args, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "LANDING_URL", "DAGSTER_HOME", "EMBEDDED_PG_DIR")}
    return subprocess.run([CLI, *args], env=base | env, cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def counts(db) -> dict[str, int]:
    return {
        name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608 - fixed names
        for name in ("traces", "metrics", "logs")
    }


def test_ingest_loads_everything_once_and_reports_per_dataset(database_url, landing_dir, db):
    expected = write_sample(landing_dir, traces_files=2, rows=7)
    write_broken(landing_dir)
    env = {"DATABASE_URL": database_url, "LANDING_URL": str(landing_dir)}

    done = cli("ingest", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["files"] == 5
    assert report["datasets"]["traces"]["loaded"] == 2
    assert report["datasets"]["traces"]["quarantined"] == 1
    assert report["rows"] == sum(expected.values())
    [problem] = report["problems"]
    assert problem["key"] == "traces/broken.parquet" and problem["status"] == "quarantined"
    assert counts(db) == expected

    again = cli("ingest", env=env)
    assert again.returncode == 0, again.stderr
    assert counts(db) == expected  # nothing twice


def test_ingest_with_an_unreachable_database_exits_3_without_the_password(landing_dir):
    write_sample(landing_dir, traces_files=1, rows=1)
    env = {"DATABASE_URL": "postgresql://app:hunter2-secret@127.0.0.1:1/db",
           "LANDING_URL": str(landing_dir), "DB_CONNECT_TIMEOUT": "2"}
    done = cli("ingest", env=env, timeout=60)
    assert done.returncode == EXIT_DATABASE
    assert "hunter2-secret" not in done.stdout + done.stderr
    assert "cannot connect" in done.stderr


def test_demo_against_database_url(database_url, tmp_path, db):
    done = cli("demo", "--json", "--landing", str(tmp_path / "demo"),
               env={"DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    ingest = result["ingest"]
    assert ingest["ok"]
    assert ingest["datasets"]["traces"]["loaded"] == 7  # 4 Parquet, Arrow file, stream, OTLP
    assert ingest["datasets"]["traces"]["quarantined"] == 1
    assert {p["status"] for p in ingest["problems"]} == {"quarantined"}
    assert "trace_id" in ingest["problems"][0]["error"]
    assert [q["title"] for q in result["queries"]] == [
        "Cost per model", "Slowest LLM calls", "Error rate per provider",
        "Who set the cost (OTLP spans are priced at ingest)"]
    assert all(q["rows"] for q in result["queries"])
    sources = {row[0] for row in result["queries"][3]["rows"]}
    assert {"producer", "unpriced"} < sources and any(s.startswith("genai-prices") for s in sources)
    assert counts(db) == {"traces": 14_000, "metrics": 2_000, "logs": 2_000}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_demo_on_the_embedded_default_prints_tables_and_stops_the_server(backend, tmp_path):
    with embedded_pgdata() as pgdata:
        done = cli("demo", "--landing", str(tmp_path / "demo"),
                   env={"EMBEDDED_PG_DIR": str(pgdata)}, timeout=600)
        stopped = embedded.running_uri(pgdata) is None
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "embedded PostgreSQL" in out
    for heading in ("Cost per model", "Slowest LLM calls", "Error rate per provider"):
        assert heading in out
    assert "quarantined: traces/" in out and "required column is missing" in out
    assert stopped  # the demo stops the server it started
