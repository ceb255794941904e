"""Connections and pools, built from Settings; the password is never logged."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from observatory_storage.db import embedded
from observatory_storage.settings import Settings, redact_text

APPLICATION_NAME = "observatory-storage"


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached; the message carries no secret."""


def with_dbname(url: str, dbname: str) -> str:
    """The same server URL pointing at another database (host, user, options kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def conninfo(settings: Settings, *, start_embedded: bool = True) -> str:
    """libpq connection string for the configured database (starts the embedded one)."""
    if settings.database_url:
        base = settings.database_url
    elif start_embedded:
        base = embedded.ensure_started(settings.embedded_pg_dir)
    else:
        base = embedded.running_uri(settings.embedded_pg_dir)
        if base is None:
            raise DatabaseUnavailable(
                f"embedded PostgreSQL is not running ({settings.embedded_pg_dir}); "
                "start it with `observatory-storage db start`"
            )
    extra: dict[str, object] = {}
    params = conninfo_to_dict(base)
    if "connect_timeout" not in params:
        extra["connect_timeout"] = settings.db_connect_timeout
    if "application_name" not in params:
        extra["application_name"] = APPLICATION_NAME
    if settings.db_sslmode:
        extra["sslmode"] = settings.db_sslmode
    if settings.db_sslrootcert:
        extra["sslrootcert"] = settings.db_sslrootcert
    return make_conninfo(base, **extra)


# libpq's words for the failures an operator meets first, and what to check.
_HINTS = (
    ("password authentication failed", "check the password of this user (DATABASE_URL, "
     "DATABASE_URL_FILE or DB_PASSWORD_FILE)"),
    ("certificate verify failed", "the server's certificate does not chain to the CA of "
     "DB_SSLROOTCERT (or the URL's sslrootcert)"),
    ("does not match host name", "the host name in DATABASE_URL is not in the server "
     "certificate; connect by a name it holds"),
    ("root certificate file", "DB_SSLMODE=verify-ca/verify-full needs a CA: set "
     "DB_SSLROOTCERT"),
    ("server does not support SSL", "the server does not offer TLS; turn ssl on there or "
     "lower DB_SSLMODE"),
    ("no encryption", "pg_hba.conf refuses this connection unencrypted: set "
     "DB_SSLMODE=verify-full"),
)


def _hint(message: str) -> str:
    for needle, hint in _HINTS:
        if needle in message:
            return f" (hint: {hint})"
    return ""


def connect(settings: Settings, *, autocommit: bool = False, **kwargs) -> psycopg.Connection:
    """A new connection, or DatabaseUnavailable with a redacted reason."""
    info = conninfo(settings)
    try:
        return psycopg.connect(info, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        reason = redact_text(str(exc).strip(), settings)
        raise DatabaseUnavailable(
            f"cannot connect to {settings.redacted_database_url}: {reason}{_hint(reason)}"
        ) from None


def make_pool(settings: Settings, *, name: str, open: bool = True, **kwargs) -> ConnectionPool:
    """A psycopg_pool sized by DB_POOL_*; connections are checked before use.

    ``last_connect_error(pool)`` tells why the pool's latest new connection failed (None
    once one succeeds), so a pool timeout can be reported with libpq's reason.
    """
    failures: dict[str, str | None] = {"last": None}

    class _Connection(psycopg.Connection):
        @classmethod
        def connect(cls, *args, **kw):
            try:
                conn = super().connect(*args, **kw)
            except psycopg.OperationalError as exc:
                reason = redact_text(str(exc).strip(), settings)
                failures["last"] = reason + _hint(reason)
                raise
            failures["last"] = None
            return conn

    pool = ConnectionPool(
        conninfo(settings),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_pool_timeout,
        name=name,
        open=False,
        check=ConnectionPool.check_connection,
        connection_class=_Connection,
        **kwargs,
    )
    pool._obs_connect_failures = failures  # read through last_connect_error()
    if open:
        pool.open(wait=False)
    return pool


def last_connect_error(pool: ConnectionPool) -> str | None:
    """Why the pool's latest attempt to open a connection failed (redacted), or None."""
    failures = getattr(pool, "_obs_connect_failures", None)
    return failures["last"] if failures else None
