"""Settings: the seed's defaults, errors that name the variable, and no password leaks."""

from __future__ import annotations

import pytest

from observatory_storage.settings import (
    Settings,
    SettingsError,
    load_settings,
    redact_text,
    redact_url,
)

PASSWORD = "Sup3r-s3cret_pw"  # distinctive, so a leak is found by plain substring search
URL = f"postgresql://observatory:{PASSWORD}@db.internal:5432/observatory"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No variable of the developer's shell or .env file leaks into these tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_seed():
    s = load_settings()
    assert s.database_url is None
    assert s.db_schema == "public"
    assert (s.retention_traces_days, s.retention_metrics_days, s.retention_logs_days) == (30, 90, 7)
    assert (s.health_port, s.metrics_port) == (8080, 9090)
    assert s.landing_url == "./landing"
    assert s.health_host == "127.0.0.1", "the service must bind to loopback unless told"
    assert s.redacted_database_url == "embedded"


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("RETENTION_TRACES_DAYS", "14")
    monkeypatch.setenv("DB_SCHEMA", "observatory")
    monkeypatch.setenv("COPY_DEDUPE_TRACES", "true")
    monkeypatch.setenv("RETENTION_LANDING_DAYS", "")
    s = load_settings()
    assert s.retention_traces_days == 14
    assert s.retention_days("traces") == 14
    assert s.db_schema == "observatory"
    assert s.copy_dedupe_traces is True
    assert s.retention_landing_days is None


def test_dotenv_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text(
        "# comment\nRETENTION_LOGS_DAYS=3\nMETRICS_PORT=9191\nLANDING_URL=s3://bucket/drop\n"
    )
    monkeypatch.setenv("METRICS_PORT", "9292")
    s = load_settings()
    assert s.retention_logs_days == 3
    assert s.landing_url == "s3://bucket/drop"
    assert s.metrics_port == 9292


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("DB_POOL_MAX_SIZE", "abc", "DB_POOL_MAX_SIZE=abc: must be a whole number"),
        ("HEALTH_PORT", "70000", "HEALTH_PORT=70000: must be at most 65535"),
        ("DB_SCHEMA", "x;drop", "DB_SCHEMA=x;drop: must be a lower-case SQL identifier"),
        ("DB_SCHEMA", "Public", "identifier"),
        ("RETENTION_TRACES_DAYS", "0", "RETENTION_TRACES_DAYS=0: must be at least 1"),
        ("DB_SSLMODE", "sometimes", "must be one of disable, allow, prefer, require, "
                                    "verify-ca or verify-full"),
        ("LOG_LEVEL", "chatty", "LOG_LEVEL=chatty: must be one of DEBUG, INFO, WARNING or ERROR"),
        ("COPY_DEDUPE_TRACES", "maybe", "COPY_DEDUPE_TRACES=maybe: must be true or false"),
        ("LANDING_URL", "ftp://host/x", "LANDING_URL=ftp://host/x: must be a local folder"),
        ("LANDING_URL", "s3://", "bucket"),
    ],
)
def test_bad_value_fails_naming_the_variable(monkeypatch, variable, value, reason):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message
    assert reason in message
    assert "'" not in message.replace(value, "") and "{" not in message  # no Python reprs


def test_bad_value_in_dotenv_file_is_named(tmp_path):
    (tmp_path / ".env").write_text("DB_POOL_TIMEOUT=soon\n")
    with pytest.raises(SettingsError, match="DB_POOL_TIMEOUT"):
        load_settings()


def test_cross_field_errors_name_both_variables(monkeypatch):
    monkeypatch.setenv("DB_POOL_MIN_SIZE", "20")
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "5")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid configuration: DB_POOL_MIN_SIZE=20 must not exceed DB_POOL_MAX_SIZE=5")
    monkeypatch.delenv("DB_POOL_MIN_SIZE")
    monkeypatch.delenv("DB_POOL_MAX_SIZE")
    monkeypatch.setenv("METRICS_PORT", "8080")
    with pytest.raises(SettingsError, match="HEALTH_PORT and METRICS_PORT"):
        load_settings()


@pytest.mark.parametrize(
    "bad_url",
    [
        f"mysql://observatory:{PASSWORD}@db:3306/x",  # wrong scheme
        f"postgresql://observatory:{PASSWORD}@db:notaport/x",  # bad port
        f"postgresql://observatory:{PASSWORD}@[db:5432/x",  # unparseable host
    ],
)
def test_database_url_error_never_shows_the_password(monkeypatch, bad_url):
    monkeypatch.setenv("DATABASE_URL", bad_url)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "DATABASE_URL" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


def test_database_url_password_hidden_even_with_another_bad_value(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"mysql://u:{PASSWORD}@h/x")
    monkeypatch.setenv("HEALTH_PORT", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "HEALTH_PORT" in str(caught.value) and "DATABASE_URL" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_redacted_database_url_hides_the_password(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", URL)
    s = load_settings()
    assert s.database_url == URL
    assert PASSWORD not in s.redacted_database_url
    assert s.redacted_database_url == "postgresql://observatory:***@db.internal:5432/observatory"


@pytest.mark.parametrize(
    "url",
    [
        URL,
        f"postgres://observatory:{PASSWORD}@db.internal/observatory?sslmode=require",
        f"postgresql://observatory@db.internal/observatory?password={PASSWORD}&sslmode=require",
        f"postgresql://observatory:{PASSWORD}@db.internal:5432,db2.internal:5432/observatory",
    ],
)
def test_redact_url_hides_the_password_and_keeps_the_rest(url):
    redacted = redact_url(url)
    assert PASSWORD not in redacted
    assert "***" in redacted
    assert "db.internal" in redacted and "observatory" in redacted


def test_redact_url_without_password_is_unchanged():
    url = "postgresql://observatory@db.internal:5432/observatory"
    assert redact_url(url) == url


@pytest.mark.parametrize(
    "text",
    [
        f"connection to {URL} failed: timeout",
        f"could not connect: host=db.internal password={PASSWORD} dbname=observatory",
        f"could not connect: host=db.internal password='{PASSWORD}' dbname=observatory",
        f"PASSWORD = {PASSWORD}",
        f"libpq said: {URL}?sslmode=require and more",
    ],
)
def test_redact_text_without_settings_hides_url_and_conninfo_passwords(text):
    redacted = redact_text(text)
    assert PASSWORD not in redacted
    assert "***" in redacted


def test_redact_text_with_settings_hides_a_bare_password(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", URL)
    s = load_settings()
    message = f"server closed the connection; authentication used {PASSWORD} (debug dump)"
    assert PASSWORD not in redact_text(message, s)
    assert "server closed the connection" in redact_text(message, s)


def test_repr_of_settings_hides_the_password():
    from observatory_storage.settings import load_settings

    s = load_settings(database_url="postgresql://obs:Repr-S3cret@db.example:5432/obs")
    assert "Repr-S3cret" not in repr(s)
    assert "Repr-S3cret" not in str(s)


# --- secrets from files ---------------------------------------------------------------------


def test_database_url_file_is_read_trimmed(monkeypatch, tmp_path):
    secret = tmp_path / "database_url"
    secret.write_text(f"\n  {URL}\n\n")
    monkeypatch.setenv("DATABASE_URL_FILE", str(secret))
    s = load_settings()
    assert s.database_url == URL
    assert s.database_url_file == secret
    assert PASSWORD not in s.redacted_database_url


def test_empty_database_url_lets_the_file_win(monkeypatch, tmp_path):
    (tmp_path / "u").write_text(URL)
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "u"))
    assert load_settings().database_url == URL


def test_database_url_and_its_file_together_are_refused(monkeypatch, tmp_path):
    (tmp_path / "u").write_text(URL)
    monkeypatch.setenv("DATABASE_URL", URL.replace("db.internal", "other.internal"))
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "u"))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "DATABASE_URL and DATABASE_URL_FILE are both set" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("content", [None, "", " \n"])
def test_missing_or_empty_secret_file_names_the_variable_and_path(monkeypatch, tmp_path, content):
    path = tmp_path / "database_url"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("DATABASE_URL_FILE", str(path))
    with pytest.raises(SettingsError, match=r"DATABASE_URL_FILE: .*database_url.*"
                       r"(No such file|is empty)"):
        load_settings()


def test_bad_url_in_a_file_is_reported_without_its_content(monkeypatch, tmp_path):
    (tmp_path / "u").write_text(f"mysql://u:{PASSWORD}@h/x")
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "u"))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "DATABASE_URL" in str(caught.value) and PASSWORD not in str(caught.value)


def test_password_file_fills_the_url_percent_encoded(monkeypatch, tmp_path):
    special = "p@ss:w/rd%" + PASSWORD
    (tmp_path / "pw").write_text(special + "\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://observatory@db.internal:5432/observatory")
    monkeypatch.setenv("DB_PASSWORD_FILE", str(tmp_path / "pw"))
    s = load_settings()
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(s.database_url)
    assert (params["user"], params["password"], params["host"]) == ("observatory", special,
                                                                    "db.internal")
    assert s.redacted_database_url == "postgresql://observatory:***@db.internal:5432/observatory"
    assert special not in redact_text(f"dump: {special}", s)


def test_password_file_needs_a_url_without_a_password(monkeypatch, tmp_path):
    (tmp_path / "pw").write_text(PASSWORD)
    monkeypatch.setenv("DB_PASSWORD_FILE", str(tmp_path / "pw"))
    with pytest.raises(SettingsError, match="DB_PASSWORD_FILE is set but DATABASE_URL is not"):
        load_settings()
    monkeypatch.setenv("DATABASE_URL", URL)
    with pytest.raises(SettingsError, match="already holds a password") as caught:
        load_settings()
    assert PASSWORD not in str(caught.value)


def test_sslrootcert_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("DB_SSLROOTCERT", str(tmp_path / "ca.pem"))
    with pytest.raises(SettingsError, match="DB_SSLROOTCERT=.*ca.pem: no such file$"):
        load_settings()
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    assert load_settings().db_sslrootcert == str(tmp_path / "ca.pem")
    monkeypatch.setenv("DB_SSLROOTCERT", "system")
    assert load_settings().db_sslrootcert == "system"


def test_tls_settings_reach_libpq(monkeypatch, tmp_path):
    from psycopg.conninfo import conninfo_to_dict

    from observatory_storage.db.connection import conninfo

    (tmp_path / "ca.pem").write_text("x")
    s = load_settings(database_url=URL + "?sslmode=disable&sslrootcert=/elsewhere.pem",
                      db_sslmode="verify-full", db_sslrootcert=str(tmp_path / "ca.pem"))
    params = conninfo_to_dict(conninfo(s))
    assert params["sslmode"] == "verify-full"
    assert params["sslrootcert"] == str(tmp_path / "ca.pem")
