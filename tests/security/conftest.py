"""Password + TLS servers for the security tests, started once per session.

``scripts/provision-timescaledb.sh start-secure`` initdbs two throw-away PostgreSQL 17
clusters on free loopback ports: one with TimescaleDB preloaded and one plain (no
``shared_preload_libraries``), both ``ssl = on`` with a server certificate for
127.0.0.1/localhost signed by a CA made here with trustme, ``scram-sha-256`` passwords,
and a pg_hba.conf that rejects unencrypted TCP. ``stop-secure`` stops them and deletes
their data when the session ends. The shared trust-auth servers are not touched.

It needs root and the PostgreSQL 17 that ``scripts/provision-timescaledb.sh start``
installs (``scripts/test.sh`` does that in CI). Where neither can be had (the compose
``test`` profile runs as UID 1000), ``OBS_SECURE_SERVERS=skip`` skips these tests with
that reason; otherwise a server that cannot start fails them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from observatory_storage.settings import PROJECT_ROOT
from tests.process_utils import free_port

SCRIPT = PROJECT_ROOT / "scripts" / "provision-timescaledb.sh"
CLI = Path(sys.executable).with_name("observatory-storage")
BACKENDS = ("timescaledb", "postgres")


@dataclass(frozen=True)
class SecureServers:
    ports: dict[str, int]  # backend -> port
    password: str  # of the superuser `postgres`
    ca: Path  # the CA that signed the server certificates
    other_ca: Path  # a CA that signed nothing of ours
    folder: Path  # holds the files above; secret files of the tests go here too
    env: dict[str, str]  # what the script needs to find the clusters again

    def url(self, backend: str, dbname: str = "postgres", *, user: str = "postgres",
            password: str | None = None, host: str = "127.0.0.1", query: str = "") -> str:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        return (f"postgresql://{auth}@{host}:{self.ports[backend]}/{dbname}"
                + (f"?{query}" if query else ""))

    def admin(self, backend: str, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            self.url(backend, dbname, password=self.password,
                     query=f"sslmode=verify-full&sslrootcert={self.ca}"),
            autocommit=True, connect_timeout=10,
        )

    def psql(self, backend: str, *args: str, stdin: str | None = None
             ) -> subprocess.CompletedProcess:
        """psql as the superuser over the cluster's unix socket (peer), e.g. for setup scripts."""
        return subprocess.run(
            ["bash", str(SCRIPT), "secure-psql", str(self.ports[backend]), *args],
            input=stdin, capture_output=True, text=True, timeout=120, env=self.env,
        )

    def secret_file(self, name: str, content: str) -> Path:
        path = self.folder / f"{name}-{uuid.uuid4().hex[:6]}"
        path.write_text(content + "\n")  # a trailing newline, as `echo ... > file` leaves
        path.chmod(0o600)
        return path


@pytest.fixture(scope="session")
def secure() -> Iterator[SecureServers]:
    import trustme

    if os.environ.get("OBS_SECURE_SERVERS") == "skip":
        pytest.skip("OBS_SECURE_SERVERS=skip: no password+TLS test servers here")
    folder = Path(tempfile.mkdtemp(prefix="obs-secure-"))
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(folder / "server.crt"))
    server.private_key_pem.write_to_path(str(folder / "server.key"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    other.cert_pem.write_to_path(str(folder / "other-ca.pem"))
    password = f"Pg-{secrets.token_hex(12)}"
    (folder / "postgres_password").write_text(password + "\n")
    ports = {"timescaledb": free_port(), "postgres": free_port()}
    env = {**os.environ, "OBS_TSDB_SECURE_DIR": str(folder),
           "OBS_TSDB_SECURE_PORT": str(ports["timescaledb"]),
           "OBS_PG_SECURE_PORT": str(ports["postgres"])}
    started = subprocess.run(["bash", str(SCRIPT), "start-secure"], env=env,
                             capture_output=True, text=True, timeout=600)
    servers = SecureServers(ports, password, folder / "ca.pem", folder / "other-ca.pem",
                            folder, env)
    try:
        if started.returncode != 0:
            pytest.fail(f"start-secure failed (needs root and the provisioned PostgreSQL 17):\n"
                        f"{started.stderr[-3000:]}")
        yield servers
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop-secure"], env=env, capture_output=True,
                       timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def secure_backend(request) -> str:
    return request.param


@pytest.fixture
def secure_database(secure, secure_backend) -> Iterator[str]:
    """A fresh, empty database on the backend's secure cluster (dropped afterwards)."""
    name = f"obs_sec_{uuid.uuid4().hex[:10]}"
    with secure.admin(secure_backend) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with secure.admin(secure_backend) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def product_env(**settings: str) -> dict[str, str]:
    """The environment of a product process: the caller's settings only, none inherited."""
    from observatory_storage.settings import Settings

    names = {n.upper() for n in Settings.model_fields}
    env = {k: v for k, v in os.environ.items()
           if k not in names and not k.startswith(("PG", "DAGSTER_"))}
    return {**env, "LOG_LEVEL": "INFO", **settings}


from tests.service.conftest import serve  # noqa: E402,F401 - `serve` as a subprocess, reused
