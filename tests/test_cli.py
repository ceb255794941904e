"""The CLI end to end, as a user runs it: real processes, real databases, exit codes."""

import json
import os
import subprocess

import dagster as dg
import pytest

from observatory_storage.db import embedded
from observatory_storage.settings import PROJECT_ROOT
from tests.defs.files import logs_table, write, write_broken, write_sample
from tests.process_utils import VENV_BIN, embedded_pgdata

CLI = str(VENV_BIN / "observatory-storage")
EXIT_DATABASE = 3


def cli(*args, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "LANDING_URL", "EMBEDDED_PG_DIR")}  # DAGSTER_HOME: the test one
    return subprocess.run([CLI, *args], env=base | env, cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def counts(db, schema: str = "public") -> dict[str, int]:
    return {
        name: db.execute(f"SELECT count(*) FROM {schema}.{name}").fetchone()[0]  # noqa: S608
        for name in ("traces", "metrics", "logs")
    }


def test_ingest_loads_everything_once_and_reports_per_dataset(database_url, landing_dir, db,
                                                            tmp_path):
    expected = write_sample(landing_dir, traces_files=2, rows=7)
    write_broken(landing_dir)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {"DATABASE_URL": database_url, "LANDING_URL": str(landing_dir),
           "DAGSTER_HOME": str(home)}

    done = cli("ingest", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no third-party INFO (pg_ctl, alembic, Dagster events)
    report = json.loads(done.stdout)
    assert report["ok"] and report["files"] == 5
    assert report["datasets"]["traces"]["loaded"] == 2
    assert report["datasets"]["traces"]["quarantined"] == 1
    assert report["rows"] == sum(expected.values())
    [problem] = report["problems"]
    assert problem["key"] == "traces/broken.parquet" and problem["status"] == "quarantined"
    assert counts(db) == expected

    again = cli("ingest", "--verbose", env=env)
    assert again.returncode == 0, again.stderr
    assert "no files to ingest" in again.stdout
    assert again.stderr == ""  # nothing pending: no run, so no run log even with --verbose
    assert counts(db) == expected  # nothing twice

    # The runs are in DAGSTER_HOME's instance (what the UI reads), with a materialization per
    # dataset loaded; the second ingest found nothing pending and started no run; a run
    # for a logs file plans only `logs`; --ephemeral records nothing.
    write(landing_dir, "logs/late.parquet", logs_table(2))
    late = cli("ingest", "--verbose", env=env)
    assert late.returncode == 0, late.stderr
    assert "1 file(s) to load" in late.stderr  # --verbose: the run's log at LOG_LEVEL (INFO)
    write(landing_dir, "logs/later.parquet", logs_table(3))
    assert cli("ingest", "--ephemeral", env=env).returncode == 0
    assert counts(db)["logs"] == expected["logs"] + 5
    with dg.DagsterInstance.from_config(str(home)) as instance:
        first, logs_only = sorted(instance.get_run_records(dg.RunsFilter(job_name="ingest_job")),
                                  key=lambda r: r.create_timestamp)
        assert first.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        planned = instance.get_records_for_run(
            logs_only.dagster_run.run_id,
            of_type={dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                     dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}).records
        keys = [r.event_log_entry.dagster_event.event_specific_data.asset_key for r in planned]
        assert keys == [dg.AssetKey("logs")] * 3  # the asset and its two run-time checks
        [traces] = [e.asset_materialization for e in instance.get_records_for_run(
            first.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
            if e.asset_materialization.asset_key == dg.AssetKey("traces")]
        assert traces.metadata["rows_loaded"].value == expected["traces"]
        assert traces.metadata["files_quarantined"].value == 1


def test_ingest_with_an_unreachable_database_exits_3_without_the_password(landing_dir):
    write_sample(landing_dir, traces_files=1, rows=1)
    env = {"DATABASE_URL": "postgresql://app:hunter2-secret@127.0.0.1:1/db",
           "LANDING_URL": str(landing_dir), "DB_CONNECT_TIMEOUT": "2"}
    done = cli("ingest", env=env, timeout=60)
    assert done.returncode == EXIT_DATABASE
    assert "hunter2-secret" not in done.stdout + done.stderr
    assert "cannot connect" in done.stderr


def test_demo_against_database_url(database_url, tmp_path, db):
    first = cli("demo", "--json", "--landing", str(tmp_path / "demo-1"),
                env={"DATABASE_URL": database_url})
    assert first.returncode == 0, first.stderr
    done = cli("demo", "--json", "--landing", str(tmp_path / "demo-2"),
               env={"DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # its own summary only: no Dagster or server log lines
    result = json.loads(done.stdout)
    assert result["schema"] == "observatory_demo"
    ingest = result["ingest"]
    assert ingest["ok"]
    assert result["dagster_home"] == os.environ["DAGSTER_HOME"]  # the run is recorded there
    assert ingest["datasets"]["traces"]["loaded"] == 7  # 4 Parquet, Arrow file, stream, OTLP
    assert ingest["datasets"]["traces"]["quarantined"] == 1
    assert {p["status"] for p in ingest["problems"]} == {"quarantined"}
    assert "trace_id" in ingest["problems"][0]["error"]
    assert [q["title"] for q in result["queries"]] == [
        "Cost per model", "Slowest LLM calls", "Error rate per provider",
        "Who set the cost (OTLP spans are priced at ingest)"]
    assert all(q["rows"] for q in result["queries"])
    # Its own schema, re-created: a re-run shows the same totals, and the schema `dev`
    # and `serve` use (public) holds none of its rows, ledger entries or quarantines.
    assert counts(db, "observatory_demo") == {"traces": 14_000, "metrics": 2_000, "logs": 2_000}
    assert counts(db) == {"traces": 0, "metrics": 0, "logs": 0}
    assert db.execute("SELECT count(*) FROM ingest_files").fetchone()[0] == 0
    # The README's example query, on the demo's data: an LLM model first, not a blank one.
    readme = (PROJECT_ROOT / "README.md").read_text()
    query = readme.split("```sql\n", 1)[1].split("```", 1)[0]
    db.execute("SET search_path TO observatory_demo")
    top = db.execute(query).fetchall()
    assert top and top[0][0] and top[0][2] == max(row[2] for row in top)
    db.execute("RESET search_path")
    sources = {row[0] for row in result["queries"][3]["rows"]}
    assert {"producer", "unpriced"} < sources and any(s.startswith("genai-prices") for s in sources)
    # Recorded where `dev`'s UI reads, on assets that name the demo's tables
    # (observatory_demo/traces...), never on public's traces, metrics, logs.
    with dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        events = instance.all_logs(result["run_id"])
        keys = {e.dagster_event.asset_key.to_user_string() for e in events
                if e.dagster_event and e.dagster_event.event_type_value in (
                    "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION")
                and e.dagster_event.asset_key is not None}
    assert keys == {"observatory_demo/traces", "observatory_demo/metrics",
                    "observatory_demo/logs"}


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


def test_db_url_psql_and_the_embedded_lifetime_rule():
    with embedded_pgdata() as pgdata:
        env = {"EMBEDDED_PG_DIR": str(pgdata)}
        status = cli("db", "status", "--json", env=env)  # reports; never starts the server
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["running"] is False
        assert embedded.running_uri(pgdata) is None
        url = cli("db", "url", env=env)
        assert url.returncode == 0, url.stderr
        assert "keeps running until `observatory-storage db stop`" in url.stderr
        assert url.stdout.strip() == f"postgresql://postgres@/postgres?host={pgdata.resolve()}"
        plain = subprocess.run([str(embedded.psql_program()), url.stdout.strip(), "-Atc",
                                "SELECT 6 * 7"], capture_output=True, text=True, timeout=60)
        assert plain.stdout.strip() == "42", plain.stderr  # the URL works in psql as printed
        done = cli("db", "psql", "-Atc", "SELECT current_database()", env=env)
        assert (done.returncode, done.stdout.strip()) == (0, "postgres"), done.stderr
        done = cli("db", "psql", "-c", "SELECT no_such_column", env=env)
        assert done.returncode == 1 and "no_such_column" in done.stderr  # psql's exit code
        assert embedded.running_uri(pgdata) is not None  # `db url` started it: it stays up

        # The rule: a command that starts the server stops it, and says so.
        assert cli("db", "stop", env=env).stdout.strip() == "embedded PostgreSQL stopped"
        done = cli("migrate", env=env)
        assert done.returncode == 0, done.stderr
        assert "embedded PostgreSQL stopped: this command started it" in done.stderr
        assert embedded.running_uri(pgdata) is None


def test_db_psql_on_database_url_and_db_url_hides_the_password(database_url):
    done = cli("db", "psql", "-Atc", "SELECT count(*) FROM ingest_files",
               env={"DATABASE_URL": database_url})
    assert (done.returncode, done.stdout.strip()) == (0, "0"), done.stderr
    env = {"DATABASE_URL": "postgresql://app:hunter2-secret@db.internal:5432/obs"}
    assert cli("db", "url", env=env).stdout.strip() == "postgresql://app:***@db.internal:5432/obs"
    shown = cli("db", "url", "--show-password", env=env | {"DB_SCHEMA": "obs"})
    assert shown.stdout.strip() == (
        "postgresql://app:hunter2-secret@db.internal:5432/obs?options=-csearch_path%3Dobs")


def test_version_db_status_and_run_metadata_say_which_decoder(database_url):
    """`version`, `db status` and the ingest run's Dagster metadata name the OTLP decoder."""
    from observatory_storage.defs.ingest import report_metadata
    from observatory_storage.ingest.otlp import native
    from observatory_storage.ingest.summary import IngestReport

    done = cli("version", env={})
    assert done.returncode == 0 and done.stdout.splitlines()[1] == (
        f"otlp decoder: {native.describe()}"), done.stdout
    done = cli("version", env={native.ENV: "python"})
    assert done.stdout.splitlines()[1] == "otlp decoder: python"
    done = cli("db", "status", "--json", env={"DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["otlp_decoder"] == native.describe()
    assert report_metadata(IngestReport())["otlp_decoder"].value == native.describe()
