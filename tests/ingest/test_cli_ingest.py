"""The CLI end to end, as a user runs it: separate processes, configuration from the env."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from observatory_storage.cli import app
from observatory_storage.commands.common import EXIT_ATTENTION, EXIT_CODES
from observatory_storage.landing import open_landing
from observatory_storage.settings import PROJECT_ROOT
from tests.ingest.helpers import count, ledger, put, table


def cli(*args: str, database_url: str, landing: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LANDING_"))}
    environ |= {"DATABASE_URL": database_url, "LANDING_URL": landing, **env}
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "observatory-storage"), *args],
        env=environ, capture_output=True, text=True, timeout=300,
    )


def test_generate_then_ingest_then_nothing_left(database_url, landing_dir, db):
    url, landing = database_url, str(landing_dir)
    done = cli("generate", "--dataset", "traces", "--files", "2", "--rows", "150", "--seed", "3",
               database_url=url, landing=landing)
    assert done.returncode == 0, done.stderr
    assert "wrote 2 parquet files (300 traces rows)" in done.stdout
    done = cli("generate", "--dataset", "logs", "--files", "1", "--rows", "40", "--format", "arrows",
               database_url=url, landing=landing)
    assert done.returncode == 0, done.stderr
    put(open_landing_for(landing), "traces/broken.parquet", b"not parquet")
    put(open_landing_for(landing), "foo/x.parquet", table("traces", 3, seed=9))  # no dataset

    done = cli("ingest", "--json", database_url=url, landing=landing)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["rows"] == 340
    assert (report["misplaced"], report["misplaced_keys"]) == (1, ["foo/x.parquet"])
    assert report["datasets"]["traces"]["loaded"] == 2
    assert report["datasets"]["traces"]["quarantined"] == 1
    assert count(db, "traces") == 300 and count(db, "logs") == 40
    assert ledger(db)["traces/broken.parquet"]["status"] == "quarantined"

    done = cli("ingest", database_url=url, landing=landing)
    assert done.returncode == 0 and "no files to ingest" in done.stdout
    assert "not loaded: foo/x.parquet: not in a dataset folder (<landing>/traces/" in done.stdout

    done = cli("replay", "traces/broken.parquet", database_url=url, landing=landing)
    assert done.returncode == 0 and "requeued" in done.stdout
    done = cli("replay", "traces/nothing.parquet", database_url=url, landing=landing)
    assert done.returncode == 1 and "unknown" in done.stdout

    # The requeued file is still broken: handled (quarantined again), which --strict flags.
    done = cli("ingest", "--strict", database_url=url, landing=landing)
    assert done.returncode == EXIT_ATTENTION, done.stdout + done.stderr
    assert "quarantined: " in done.stdout
    assert ledger(db)["traces/broken.parquet"]["status"] == "quarantined"


def test_exit_codes_agree_in_readme_help_and_code():
    """README's table is EXIT_CODES; `ingest --help` states every code it can return."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in readme
    help_text = " ".join(CliRunner().invoke(app, ["ingest", "--help"]).output.split())
    for phrase in ("0 every file was loaded or quarantined", "1 a file vanished",
                   "2 bad arguments or configuration", "3 database unreachable",
                   "4 with --strict only: at least one file was quarantined or lies in no "
                   "dataset folder"):
        assert phrase in help_text.replace("│", "").replace("  ", " ")


def test_table_output_and_conflict_exit_code(database_url, landing_dir, db):
    landing = open_landing_for(str(landing_dir))
    put(landing, "traces/a.parquet", table("traces", 20, seed=1))
    done = cli("ingest", "--dataset", "traces", database_url=database_url, landing=str(landing_dir))
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()[:2]
    assert header.split()[:4] == ["dataset", "loaded", "quarantined", "skipped"]
    assert row.split()[:3] == ["traces", "1", "0"] and "rows/s" in header
    put(landing, "traces/a.parquet", table("traces", 21, seed=2))
    done = cli("ingest", database_url=database_url, landing=str(landing_dir))
    assert done.returncode == 1 and "conflict" in done.stdout


def test_unreachable_database_exits_3_without_the_password(landing_dir):
    url = "postgresql://observer:hunter2secret@127.0.0.1:1/nowhere"
    done = cli("ingest", database_url=url, landing=str(landing_dir), DB_CONNECT_TIMEOUT="2")
    assert done.returncode == 3, done.stderr
    assert "hunter2secret" not in done.stdout + done.stderr
    assert "127.0.0.1" in done.stderr


def test_bad_arguments_exit_2(landing_dir):
    done = cli("ingest", "--dataset", "spans", database_url="postgresql://x@127.0.0.1:1/x",
               landing=str(landing_dir))
    assert done.returncode == 2
    assert "--dataset spans: unknown dataset; expected traces, metrics or logs" in done.stderr
    done = cli("generate", "--format", "csv", database_url="postgresql://x@127.0.0.1:1/x",
               landing=str(landing_dir))
    assert done.returncode == 2 and "unknown format" in done.stderr and "[" not in done.stderr


def open_landing_for(path: str):
    from observatory_storage.settings import load_settings

    return open_landing(load_settings(landing_url=path))


_PASS = (
    "import sys\n"
    "from observatory_storage.commands.ingest import ingest_pass\n"
    "from observatory_storage.settings import load_settings\n"
    "report = ingest_pass(load_settings())\n"
    "print(len(report.files), 'dagster' in sys.modules, 'pyarrow' in sys.modules)\n"
)


def test_pass_with_nothing_pending_skips_dagster_and_pyarrow(database_url, landing_dir, db):
    """An empty (or fully loaded) landing costs a listing and a ledger lookup, no run."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LANDING_"))}
    environ |= {"DATABASE_URL": database_url, "LANDING_URL": str(landing_dir)}

    def one_pass() -> str:
        done = subprocess.run([sys.executable, "-c", _PASS], env=environ, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert one_pass() == ["0", "False", "False"]
    put(open_landing_for(str(landing_dir)), "traces/a.parquet", table("traces", 5))
    assert one_pass() == ["1", "True", "True"]  # pending: a real run
    assert count(db, "traces") == 5
    assert one_pass() == ["0", "False", "False"]  # loaded: nothing pending again


def test_a_missing_landing_is_a_configuration_error(database_url, tmp_path):
    """`ingest --landing ./landig` (a typo): exit 2 naming the folder, with or without
    --strict, instead of "no files to ingest"; nothing is created."""
    typo = tmp_path / "landig"
    for extra in ([], ["--strict"]):
        done = cli("ingest", "--landing", str(typo), *extra, database_url=database_url,
                   landing=str(tmp_path / "unused"))
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"landing folder {typo} does not exist" in done.stderr
        assert "no files to ingest" not in done.stdout
    assert not typo.exists()
