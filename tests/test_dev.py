"""`observatory-storage dev` starts the stack, answers, and leaves NO process behind.

The trap it guards against: a child of a non-interactive parent inherits SIGINT as
ignored, and `dagster dev` then ignores SIGTERM too, orphaning its code servers.
"""

import os
import signal
import subprocess
import time

import dagster as dg
import pytest

from observatory_storage.db import embedded
from observatory_storage.settings import PROJECT_ROOT
from tests.process_utils import (
    VENV_BIN,
    alive,
    descendants,
    embedded_pgdata,
    free_port,
    get,
    running,
    wait_for_url,
)

pytestmark = pytest.mark.slow


def dev_env(tmp_path, **extra) -> tuple[dict[str, str], dict[str, int]]:
    ports = {"ui": free_port(), "health": free_port(), "metrics": free_port()}
    (tmp_path / "landing").mkdir(exist_ok=True)  # dev creates only the default ./landing
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_HOME")}
    env |= {
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "LANDING_URL": str(tmp_path / "landing"),
        "HEALTH_PORT": str(ports["health"]),
        "METRICS_PORT": str(ports["metrics"]),
        **extra,
    }
    return env, ports


def ignore_sigint():  # what a non-interactive shell does to a background job
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_and_stop(tmp_path, env, ports, signum) -> set[int]:
    """Start dev, check its URLs, send ``signum``; returns every pid it ever had."""
    log = tmp_path / "dev.log"
    argv = [str(VENV_BIN / "observatory-storage"), "dev", "-p", str(ports["ui"])]
    with running(argv, env=env, cwd=PROJECT_ROOT, log=log, preexec_fn=ignore_sigint) as proc:
        wait_for_url(f"http://127.0.0.1:{ports['ui']}/server_info", proc, timeout=180, log=log)
        wait_for_url(f"http://127.0.0.1:{ports['health']}/health/live", proc, log=log)
        status, _ = get(f"http://127.0.0.1:{ports['metrics']}/metrics")
        assert status == 200
        # the daemon's and webserver's code servers exist by now
        deadline = time.monotonic() + 60
        pids = descendants(proc.pid)
        while len(pids) < 4 and time.monotonic() < deadline:
            time.sleep(1)
            pids |= descendants(proc.pid)
        assert len(pids) >= 4, pids  # dagster dev, webserver, daemon, code server(s)

        # a second dev on the same Dagster home is refused at once, naming the running one
        second = subprocess.run(argv[:-1] + [str(free_port())], env=env, cwd=PROJECT_ROOT,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"its UI is http://127.0.0.1:{ports['ui']}" in second.stderr
        assert str(proc.pid) in second.stderr

        # the start-up jobs: every asset check evaluated, the rollups materialized, before
        # any schedule ran
        home = env["DAGSTER_HOME"]
        deadline = time.monotonic() + 180
        while "start-up checks: done" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        with dg.DagsterInstance.from_config(home) as instance:
            for table in ("traces", "metrics", "logs", "traces_hourly", "metrics_hourly"):
                key = dg.AssetCheckKey(dg.AssetKey(table), "columns_match_contract")
                record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
                    [key]).get(key)
                assert record is not None and record.status.value == "SUCCEEDED", table
            assert instance.get_latest_materialization_event(dg.AssetKey("traces_hourly"))

        os.kill(proc.pid, signum)
        code = proc.wait(timeout=90)
        assert code == 0, log.read_text()[-3000:]
        pids |= {proc.pid}
    text = log.read_text()
    assert "[dev] stopped" in text
    # no noise from our own setup: dagster.yaml is used (from DAGSTER_HOME), no warnings
    # about superseded, beta or preview APIs
    assert "will not be used" not in text
    for noise in ("SupersessionWarning", "BetaWarning", "PreviewWarning", "DeprecationWarning"):
        assert noise not in text, noise
    assert "did not stop" not in text  # stopped by SIGTERM, not by the SIGKILL fallback
    assert "\x1b[" not in text  # output to a file: no colour codes (Dagster's included)
    return pids


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_sigterm_stops_every_process(backend, database_url, tmp_path):
    env, ports = dev_env(tmp_path, DATABASE_URL=database_url)
    pids = run_and_stop(tmp_path, env, ports, signal.SIGTERM)
    assert alive(pids) == set()
    assert (tmp_path / "dagster_home" / "dagster.yaml").exists()  # persistent instance
    assert (tmp_path / "landing" / "traces").is_dir()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_sigint_stops_every_process_and_the_embedded_database(backend, tmp_path):
    with embedded_pgdata() as pgdata:
        env, ports = dev_env(tmp_path, EMBEDDED_PG_DIR=str(pgdata))
        pids = run_and_stop(tmp_path, env, ports, signal.SIGINT)
        assert alive(pids) == set()
        assert embedded.running_uri(pgdata) is None
        assert "embedded PostgreSQL stopped" in (tmp_path / "dev.log").read_text()


def test_a_missing_landing_is_refused_and_never_created(tmp_path):
    """LANDING_URL naming a folder that is not there: exit 2 at once, naming it; nothing is
    created and no database is started (only the default ./landing is made by dev)."""
    missing = tmp_path / "landig"
    env, ports = dev_env(tmp_path, LANDING_URL=str(missing),
                         EMBEDDED_PG_DIR=str(tmp_path / "never-started"))
    done = subprocess.run([str(VENV_BIN / "observatory-storage"), "dev", "-p", str(ports["ui"])],
                          env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"landing folder {missing} does not exist" in done.stderr
    assert not missing.exists() and not (tmp_path / "never-started").exists()
