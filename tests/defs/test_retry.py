"""Transient database errors are retried; everything else fails the step at once."""

import dagster as dg
import psycopg
import pytest

from observatory_storage.db.connection import DatabaseUnavailable, connect
from observatory_storage.defs.retry import (
    DB_RETRY_POLICY,
    TransientDatabaseError,
    is_transient,
    transient_errors_retried,
)
from observatory_storage.settings import load_settings


def real_error(fn) -> Exception:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the test wants the real exception
        return exc
    raise AssertionError("no error raised")


def test_a_terminated_connection_is_transient(database_url):
    victim = psycopg.connect(database_url, autocommit=True)
    pid = victim.info.backend_pid
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    exc = real_error(lambda: victim.execute("SELECT 1"))
    assert isinstance(exc, psycopg.OperationalError)
    assert is_transient(exc)
    with pytest.raises(TransientDatabaseError), transient_errors_retried():
        raise exc


def test_a_missing_table_is_not_transient_and_fails_without_retry(db):
    exc = real_error(lambda: db.execute("SELECT * FROM no_such_table"))
    assert not is_transient(exc)
    with pytest.raises(dg.Failure) as failure, transient_errors_retried():
        raise exc
    assert failure.value.allow_retries is False
    assert "no_such_table" in failure.value.description


def test_unreachable_database_is_transient_and_redacted():
    settings = load_settings(database_url="postgresql://u:pa55word@127.0.0.1:1/x",
                             db_connect_timeout=2)
    exc = real_error(lambda: connect(settings))
    assert isinstance(exc, DatabaseUnavailable) and is_transient(exc)
    with pytest.raises(TransientDatabaseError) as raised, transient_errors_retried(settings):
        raise exc
    assert "pa55word" not in str(raised.value)


def test_serialization_failure_and_deadlock_are_transient(db):
    for state, cls in (("40001", psycopg.errors.SerializationFailure),
                       ("40P01", psycopg.errors.DeadlockDetected)):
        exc = real_error(lambda s=state: db.execute(
            f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{s}'; END $$"))
        assert isinstance(exc, cls) and is_transient(exc)


def test_policy_backs_off_exponentially():
    assert DB_RETRY_POLICY.max_retries >= 3
    assert DB_RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL
