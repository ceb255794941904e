"""Which database errors are worth retrying, and how ops retry them.

A transient error (the server restarted, a connection dropped, a serialization conflict or
deadlock, too many clients) goes away on its own: the op's :data:`DB_RETRY_POLICY` retries
it with exponential backoff and jitter. Anything else (a bug, a missing table, a disk full)
fails the step at once, because retrying it would only delay the alert. Retrying is safe
because the ingest ledger, not the attempt, decides what is loaded.

Maintenance ops use the same pieces: ``retry_policy=DB_RETRY_POLICY`` on the op and the
body wrapped in ``with transient_errors_retried(settings):``.
"""

import contextlib
from collections.abc import Iterator
from typing import Optional

import dagster as dg
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from observatory_storage.db.connection import DatabaseUnavailable
from observatory_storage.settings import Settings, redact_text

DB_RETRY_POLICY = dg.RetryPolicy(
    max_retries=4,
    delay=2,
    backoff=dg.Backoff.EXPONENTIAL,  # 2, 4, 8, 16 s: rides out a server restart
    jitter=dg.Jitter.PLUS_MINUS,  # runs failing together do not retry together
)

_TRANSIENT_CLASSES: tuple[type[BaseException], ...] = (
    pg_errors.SerializationFailure,  # 40001
    pg_errors.DeadlockDetected,  # 40P01
    pg_errors.AdminShutdown,  # 57P01: server shut down or restarted
    pg_errors.CrashShutdown,  # 57P02
    pg_errors.CannotConnectNow,  # 57P03: starting up or in recovery
    pg_errors.TooManyConnections,  # 53300
    pg_errors.LockNotAvailable,  # 55P03: lock_timeout hit under contention
    DatabaseUnavailable,  # our redacted wrapper of a failed connect
)

_TRANSIENT_SQLSTATE_CLASSES = ("08",)  # connection exceptions


class TransientDatabaseError(RuntimeError):
    """A retryable database failure; the message is redacted."""


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is a transient DB failure."""
    seen: set[int] = set()
    current: Optional[BaseException] = exc  # noqa: UP045
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _TRANSIENT_CLASSES):
            return True
        if isinstance(current, psycopg.Error):
            sqlstate = current.sqlstate
            if sqlstate is None and isinstance(current, psycopg.OperationalError):
                return True  # client side: the connection was lost, no server answer
            if sqlstate and sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES):
                return True
        if _is_pool_timeout(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_pool_timeout(exc: BaseException) -> bool:
    return isinstance(exc, PoolTimeout)


def describe(exc: BaseException, settings: Optional[Settings] = None) -> str:  # noqa: UP045
    """``Type: message`` with any password removed, for logs, errors and metadata."""
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {redact_text(text, settings)}"


@contextlib.contextmanager
def transient_errors_retried(settings: Optional[Settings] = None) -> Iterator[None]:  # noqa: UP045
    """Make an op's RetryPolicy apply to transient database errors only.

    Transient errors become :class:`TransientDatabaseError` (retried by the policy);
    everything else becomes ``dg.Failure(allow_retries=False)``, failing the step now.
    Both carry a redacted message; the original is chained (for its traceback) only when
    no message in its chain held a secret.
    """
    try:
        yield
    except (dg.Failure, dg.RetryRequested, dg.DagsterError):
        raise
    except Exception as exc:
        message = describe(exc, settings)
        cause = exc if _chain_is_clean(exc, settings) else None
        if is_transient(exc):
            raise TransientDatabaseError(message) from cause
        raise dg.Failure(description=message, allow_retries=False) from cause


def _chain_is_clean(exc: BaseException, settings: Optional[Settings]) -> bool:  # noqa: UP045
    seen: set[int] = set()
    current: Optional[BaseException] = exc  # noqa: UP045
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if redact_text(str(current), settings) != str(current):
            return False
        current = current.__cause__ or current.__context__
    return True
