"""TLS and passwords against real servers: what connects, what is refused, and why.

Each test runs on the TimescaleDB and the plain PostgreSQL secure cluster (see conftest).
A refusal must be a ``DatabaseUnavailable`` (the CLI's exit 3) whose message says what
libpq found plus a hint, and never holds a password.
"""

from __future__ import annotations

import subprocess

import pytest

from observatory_storage.db.connection import DatabaseUnavailable, connect
from observatory_storage.settings import load_settings
from tests.security.conftest import CLI, product_env


def _ssl_of_own_session(settings) -> tuple[bool, str]:
    with connect(settings) as conn:
        return conn.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()


@pytest.mark.parametrize("ca_from", ["DB_SSLROOTCERT", "URL sslrootcert", "PGSSLROOTCERT"])
def test_verify_full_with_the_right_ca_connects_encrypted(secure, secure_backend, ca_from,
                                                          monkeypatch):
    password_file = secure.secret_file("pw", secure.password)
    query = f"sslrootcert={secure.ca}" if ca_from == "URL sslrootcert" else ""
    if ca_from == "PGSSLROOTCERT":
        monkeypatch.setenv("PGSSLROOTCERT", str(secure.ca))  # libpq's own variable
    settings = load_settings(
        database_url=secure.url(secure_backend, query=query), db_password_file=str(password_file),
        db_sslmode="verify-full",
        **({"db_sslrootcert": str(secure.ca)} if ca_from == "DB_SSLROOTCERT" else {}),
    )
    ssl, version = _ssl_of_own_session(settings)
    assert ssl is True and version.startswith("TLSv1.")


REFUSALS = {
    # case: (settings beyond the right password, what libpq says, our hint)
    "wrong CA": ({"db_sslmode": "verify-full", "ca": "other"}, "certificate verify failed",
                 "does not chain to the CA"),
    "wrong host name": ({"db_sslmode": "verify-full", "ca": "right", "host": "db.wrong.example",
                         "query": "hostaddr=127.0.0.1"},
                        'does not match host name "db.wrong.example"', "not in the server certificate"),
    "verify-full without a CA": ({"db_sslmode": "verify-full"}, "root certificate file",
                                 "set DB_SSLROOTCERT"),
    "plain TCP to a TLS-only server": ({"db_sslmode": "disable"}, "no encryption",
                                       "refuses this connection unencrypted"),
    "wrong password": ({"db_sslmode": "verify-full", "ca": "right", "password": "Wr0ng-pw-123"},
                       'password authentication failed for user "postgres"', "check the password"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_connections_say_why_without_a_password(secure, secure_backend, case,
                                                        monkeypatch, tmp_path):
    options, libpq_says, hint = REFUSALS[case]
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt to fall back on
    options = dict(options)
    ca = {"right": secure.ca, "other": secure.other_ca}.get(options.pop("ca", None))
    password = options.pop("password", secure.password)
    url = secure.url(secure_backend, host=options.pop("host", "127.0.0.1"),
                     query=options.pop("query", ""))
    settings = load_settings(
        database_url=url, db_password_file=str(secure.secret_file("pw", password)),
        db_connect_timeout=5, **options, **({"db_sslrootcert": str(ca)} if ca else {}),
    )
    with pytest.raises(DatabaseUnavailable) as caught:
        connect(settings)
    message = str(caught.value)
    assert libpq_says in message and "(hint: " in message and hint in message, message
    assert f"port {secure.ports[secure_backend]}" in message
    assert password not in message and secure.password not in message


def test_wrong_password_exits_3_naming_host_and_user(secure, secure_backend):
    """`migrate` and `db status` as CLI processes, the password from a file."""
    wrong = "Wr0ng-but-secret-pw"
    env = product_env(
        DATABASE_URL=secure.url(secure_backend, user="obs_nobody_here"),
        DB_PASSWORD_FILE=str(secure.secret_file("pw", wrong)),
        DB_SSLMODE="verify-full", DB_SSLROOTCERT=str(secure.ca), DB_CONNECT_TIMEOUT="5",
    )
    for args in (["migrate"], ["db", "status"]):
        done = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        line = done.stderr.strip()
        assert line.startswith("error: cannot connect to postgresql://obs_nobody_here:***@"
                               f"127.0.0.1:{secure.ports[secure_backend]}/postgres"), line
        assert 'password authentication failed for user "obs_nobody_here"' in line
        assert "Traceback" not in line and "\n" not in line
        assert wrong not in done.stdout + done.stderr


def test_require_against_a_server_without_tls_is_refused(server_urls, monkeypatch):
    """`require` refuses a server that offers no TLS: the shared trust-auth TimescaleDB.

    Only that backend: the plain PostgreSQL of the test suite is the embedded server, which
    listens on a unix socket only, and libpq never negotiates TLS over a socket.
    """
    monkeypatch.delenv("PGSSLMODE", raising=False)
    settings = load_settings(database_url=server_urls["timescaledb"], db_sslmode="require")
    with pytest.raises(DatabaseUnavailable) as caught:
        connect(settings)
    assert "server does not support SSL, but SSL was required" in str(caught.value)
    assert "hint: the server does not offer TLS" in str(caught.value)
