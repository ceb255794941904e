"""Every setting of the product, read from the environment (and an optional .env file).

One module owns configuration: the CLI, the Dagster resources and the service all call
:func:`get_settings`. A bad value fails at start-up with :class:`SettingsError`, whose
message names the variable and never repeats a password.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SQS_URL = re.compile(r"^sqs://(?:[0-9]{12}/)?[A-Za-z0-9_-]{1,80}$")  # LANDING_NOTIFICATIONS


class SettingsError(ValueError):
    """A setting has a bad value; the message names the environment variable."""


class Settings(BaseSettings):
    """Configuration from environment variables (names are the field names, upper case)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # --- database -------------------------------------------------------------------
    database_url: str | None = Field(
        None,
        repr=False,  # repr(settings) must never print the password
        description="PostgreSQL/TimescaleDB URL (postgresql://user:pass@host:5432/db). "
        "Unset: an embedded PostgreSQL is started under EMBEDDED_PG_DIR.",
    )
    database_url_file: Path | None = Field(
        None,
        description="File holding DATABASE_URL (a Docker/Kubernetes secret), read once at "
        "start-up, surrounding whitespace trimmed. Setting it and a non-empty DATABASE_URL "
        "is an error.",
    )
    db_password_file: Path | None = Field(
        None,
        description="File holding the database password (a Docker/Kubernetes secret, e.g. "
        "the one the timescaledb image reads as POSTGRES_PASSWORD_FILE), read once at "
        "start-up, trimmed, and used for DATABASE_URL, which must then carry no password.",
    )
    db_schema: str = Field("public", description="Schema holding the dataset tables and the ledger.")
    db_pool_min_size: int = Field(1, ge=0, description="Connections a pool keeps open.")
    db_pool_max_size: int = Field(10, ge=1, description="Most connections a pool opens.")
    db_pool_timeout: float = Field(30.0, gt=0, description="Seconds to wait for a pooled connection.")
    db_connect_timeout: int = Field(10, ge=1, description="Seconds to wait for a new connection.")
    db_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        Field(None, description="libpq sslmode; overrides the URL's own sslmode when set.")
    )
    db_sslrootcert: str | None = Field(
        None,
        description="CA certificate file the server's certificate must chain to (libpq "
        "sslrootcert; `system` uses the OS trust store); overrides the URL's sslrootcert "
        "and PGSSLROOTCERT when set; checked by the verify-ca and verify-full modes.",
    )
    embedded_pg_dir: Path = Field(
        PROJECT_ROOT / ".cache" / "pgdata",
        description="Data folder of the embedded PostgreSQL used when DATABASE_URL is unset.",
    )

    # --- COPY -----------------------------------------------------------------------
    copy_batch_size: int = Field(
        10_000,
        ge=1,
        description="Rows per record batch read, conformed and COPYed (bounds memory: a 1 GB "
        "Parquet file peaks at ~240 MB RSS at 10,000).",
    )
    copy_flush_interval: int = Field(
        1000,
        ge=0,
        description="Most milliseconds encoded COPY data waits in the client buffer before it "
        "is sent, even when COPY_BUFFER_SIZE is not reached.",
    )
    copy_buffer_size: int = Field(
        1 << 20, ge=8192, description="Bytes of encoded COPY data sent to the server per write."
    )
    copy_workers: int | None = Field(
        None,
        ge=1,
        description="Connections one ingest run COPYs on at once (threads; files, and parts of "
        "split files, load side by side). Empty: the CPUs this process may use, at most 4. 1 loads "
        "one file after the other.",
    )
    copy_split_bytes: int = Field(
        32 << 20,
        ge=1,
        description="Parquet/Arrow IPC files at least this big are split into parts (row-group "
        "/ record-batch ranges) loaded concurrently, each in its own transaction; smaller files "
        "stay atomic. Only when COPY_WORKERS > 1. 32 MiB: about 500,000 generated spans.",
    )
    copy_group_files: int = Field(
        100,
        ge=1,
        description="Most small files (below COPY_GROUP_BYTES) of one dataset loaded in one "
        "transaction, a group commit: one claim, one COPY per table, one commit, each file still "
        "with its own ledger row; a bad file leaves its group, the rest commits. 1 loads every "
        "file in a transaction of its own.",
    )
    copy_group_bytes: int = Field(
        1 << 20,
        ge=0,
        description="Files smaller than this join group commits (COPY_GROUP_FILES); a group "
        "holds at most 16 MiB of files (read into memory before its transaction).",
    )
    copy_dedupe_traces: bool = Field(
        False,
        description="Skip spans whose (trace_id, span_id, start_time) is already stored "
        "(staging table + INSERT ... WHERE NOT EXISTS; slower).",
    )
    price_missing_costs: bool = Field(
        True,
        description="Fill traces.cost_usd where it is null and a model and token counts are "
        "present, from the genai-prices table (never overwrites a producer's cost; "
        "cost_source says who set it; unknown models are counted in unpriced_rows).",
    )

    # --- retention ------------------------------------------------------------------
    retention_traces_days: int = Field(30, ge=1, description="Days of raw traces kept.")
    retention_metrics_days: int = Field(90, ge=1, description="Days of raw metrics kept.")
    retention_logs_days: int = Field(7, ge=1, description="Days of logs kept.")
    retention_rollups_days: int = Field(400, ge=1, description="Days of hourly rollups kept.")
    retention_ledger_days: int = Field(
        90, ge=1, description="Days of ingest ledger rows kept (totals are kept forever)."
    )
    retention_landing_days: int | None = Field(
        7,
        ge=0,
        description="Days a loaded landing file is kept before deletion; empty keeps them forever.",
    )
    dagster_run_retention_days: int | None = Field(
        30,
        ge=1,
        description="Days Dagster keeps a finished run and its event log (the dagster_retention "
        "job deletes older ones, never a run still going nor one holding an asset's latest "
        "materialization or check result); empty keeps them forever.",
    )
    partitions_ahead_days: int = Field(
        7, ge=1, description="Days of partitions (plain PostgreSQL) or chunks (TimescaleDB) "
        "created ahead by the partitions job."
    )
    compress_after_days: int = Field(
        3, ge=1, description="Age before chunks are compressed (licensed TimescaleDB only)."
    )
    chunk_interval_traces: str = Field("1 day", description="Hypertable chunk interval of traces.")
    chunk_interval_metrics: str = Field("1 day", description="Hypertable chunk interval of metrics.")
    chunk_interval_logs: str = Field("1 day", description="Hypertable chunk interval of logs.")

    # --- landing bucket -------------------------------------------------------------
    landing_url: str = Field(
        "./landing", description="Local folder or s3://bucket/prefix files are dropped into."
    )
    landing_quarantine_move: bool = Field(
        True, description="Move quarantined files to <landing>/_quarantine/."
    )
    landing_lookback_minutes: float = Field(
        15.0,
        ge=0,
        description="Discovery walks a time-partitioned folder (year=/month=/.../minute=, "
        "YYYY/MM/DD/HH) only while its span ends within this many minutes before its "
        "stream's newest one: a sensor tick lists what was written lately, not all history. "
        "Older late files are found by the rolling sweep (LANDING_SWEEP_BATCH).",
    )
    landing_sweep_batch: int = Field(
        5000,
        ge=0,
        description="Keys of each landing root every discovery pass (sensor tick, ingest) "
        "also lists in key order, continuing where the last pass stopped: a full sweep of "
        "N retained files takes N / this many passes (1.8M files at 5,000 a tick every 5 s: "
        "~30 minutes). It finds late files in old folders and keys outside any time layout. "
        "0 turns the sweep off (ingest --sweep still lists everything).",
    )
    landing_sweep_minutes: float = Field(
        60.0,
        ge=0,
        description="Least minutes between the start of two rolling sweeps of a landing "
        "root: once a sweep has listed every key, passes list only the recent folders "
        "until this long after it finished. A late file in an old folder (or a key "
        "outside any time layout) is found within this plus one sweep's duration. "
        "0: a new sweep starts as soon as one ends.",
    )
    landing_notifications: str = Field(
        "",
        description="sqs://<queue name> (or sqs://<account id>/<queue name>): an SQS queue "
        "receiving the landing bucket's S3 event notifications (ObjectCreated). Every "
        "discovery pass also reads it, so a file in an old folder is found by the next pass, "
        "not the next sweep (which stays the safety net). Needs an s3:// LANDING_URL; "
        "empty: off.",
    )
    sqs_endpoint_url: str | None = Field(
        None, description="SQS endpoint of LANDING_NOTIFICATIONS (default: S3_ENDPOINT_URL, "
        "else AWS's endpoint of the region).",
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, moto...).")
    s3_region: str | None = Field(None, description="S3 region (AWS_REGION also works).")
    ingest_max_files_per_run: int = Field(500, ge=1, description="Most files one ingest run takes.")
    ingest_max_bytes_per_run: int = Field(
        2 << 30, ge=1, description="Most bytes one ingest run takes (one larger file still runs alone)."
    )
    sensor_interval_seconds: int = Field(
        1,
        ge=1,
        description="Least seconds between two landing sensor ticks. Dagster's daemon "
        "evaluates sensors every 5 s at most often, so below 5 the sensor ticks every ~5 s; "
        "5 or more can skip a loop (ticks a multiple of ~5 s apart).",
    )

    # --- Dagster assets -------------------------------------------------------------
    freshness_warn_minutes: int = Field(
        60, ge=1, description="A raw table (traces, metrics, logs) not loaded for this long "
        "is WARN in Dagster's freshness.",
    )
    freshness_fail_minutes: int = Field(
        240, ge=1, description="A raw table not loaded for this long FAILs its freshness policy.",
    )
    asset_checks_cron: str = Field(
        "35 * * * *", description="Schedule (UTC cron) of the asset_checks job: schema drift of "
        "every table and rollups against raw.",
    )

    # --- service --------------------------------------------------------------------
    health_host: str = Field("127.0.0.1", description="Address the health/metrics service binds to.")
    health_port: int = Field(8080, ge=1, le=65535, description="Port of /health.")
    metrics_port: int = Field(9090, ge=1, le=65535, description="Port of Prometheus /metrics.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    metrics_refresh_seconds: float = Field(
        15.0,
        gt=0,
        description="Seconds between recomputations of the ingest counters and histograms "
        "/metrics serves (one aggregate over the ingest ledger).",
    )

    @field_validator("db_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data):
        """DATABASE_URL_FILE and DB_PASSWORD_FILE, read before any field is validated."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        url_file = data.get("database_url_file")
        if url_file not in (None, ""):
            if (data.get("database_url") or "").strip():
                raise ValueError(
                    "DATABASE_URL and DATABASE_URL_FILE are both set: keep one (an empty "
                    "DATABASE_URL lets the file win)"
                )
            data["database_url"] = read_secret_file("DATABASE_URL_FILE", url_file)
        password_file = data.get("db_password_file")
        if password_file not in (None, ""):
            url = (data.get("database_url") or "").strip()
            if not url:
                raise ValueError("DB_PASSWORD_FILE is set but DATABASE_URL is not (the embedded "
                                 "server needs no password)")
            password = read_secret_file("DB_PASSWORD_FILE", password_file)
            try:
                parts = urlsplit(url)
            except ValueError:
                return data  # the DATABASE_URL validator reports it
            if parts.password is not None:
                raise ValueError("DATABASE_URL already holds a password and DB_PASSWORD_FILE is "
                                 "set: keep one")
            data["database_url"] = with_password(url, password)
        return data

    @field_validator("db_sslrootcert")
    @classmethod
    def _rootcert_exists(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if value != "system" and not Path(value).is_file():
            raise ValueError("no such file")
        return value

    @field_validator("database_url")
    @classmethod
    def _url_is_postgres(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"is not a valid URL ({exc})") from None
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("must start with postgresql:// or postgres://")
        return value

    @field_validator("retention_landing_days", "dagster_run_retention_days", "copy_workers",
                     mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if value in ("", None) else value

    @field_validator("landing_url")
    @classmethod
    def _landing_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("", "file", "s3"):
            raise ValueError("must be a local folder, file://... or s3://bucket/prefix")
        if scheme == "s3" and not urlsplit(value).netloc:
            raise ValueError("s3:// URL needs a bucket name")
        return value

    @field_validator("landing_notifications")
    @classmethod
    def _notifications_url(cls, value: str) -> str:
        value = (value or "").strip()
        if value and not _SQS_URL.match(value):
            raise ValueError("must be sqs://<queue name> or sqs://<account id>/<queue name> "
                             "(letters, digits, - and _; empty turns notifications off)")
        return value

    @model_validator(mode="after")
    def _notifications_need_s3(self) -> Settings:
        if self.landing_notifications and urlsplit(self.landing_url).scheme != "s3":
            raise ValueError(f"LANDING_NOTIFICATIONS={self.landing_notifications} reads S3 event "
                             "notifications: it needs an s3:// LANDING_URL (got "
                             f"{self.landing_url!r}); unset it for a local landing")
        return self

    @model_validator(mode="after")
    def _pool_sizes(self) -> Settings:
        if self.freshness_warn_minutes > self.freshness_fail_minutes:
            raise ValueError("FRESHNESS_WARN_MINUTES must not exceed FRESHNESS_FAIL_MINUTES")
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError(f"DB_POOL_MIN_SIZE={self.db_pool_min_size} must not exceed "
                             f"DB_POOL_MAX_SIZE={self.db_pool_max_size}")
        if self.health_port == self.metrics_port:
            raise ValueError(f"HEALTH_PORT and METRICS_PORT must differ (both {self.health_port})")
        return self

    @property
    def redacted_database_url(self) -> str:
        return redact_url(self.database_url) if self.database_url else "embedded"

    @property
    def copy_workers_resolved(self) -> int:
        """COPY_WORKERS, or the CPUs this process may run on (its affinity set, else the
        CPU count) capped at 4 when unset: beyond that the database, not the client, limits."""
        if self.copy_workers:
            return self.copy_workers
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        return max(1, min(4, cpus))

    def retention_days(self, dataset: str) -> int:
        return getattr(self, f"retention_{dataset}_days")

    def chunk_interval(self, dataset: str) -> str:
        return getattr(self, f"chunk_interval_{dataset}")


def read_secret_file(variable: str, path: str | Path) -> str:
    """The trimmed content of a secret file; errors name the variable and path, never content."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ValueError(f"{variable}: cannot read {path} ({reason})") from None
    if not value:
        raise ValueError(f"{variable}: {path} is empty")
    return value


def with_password(url: str, password: str) -> str:
    """The URL with ``password`` (percent-encoded) in its user info."""
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0] if userinfo else ""
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (also ``password=`` query options)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, settings: Settings | None = None) -> str:
    """Remove a known password and anything shaped like one from free text (errors, logs)."""
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)
    text = re.sub(r"(?i)(password\s*=\s*)('[^']*'|\S+)", r"\1***", text)
    if settings is not None and settings.database_url:
        password = urlsplit(settings.database_url).password
        if password:
            for form in {password, unquote(password)}:
                text = text.replace(form, "***")
    return text


def load_settings(**overrides) -> Settings:
    """Read settings from the environment; raise SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors()]
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


def one_of(values) -> str:
    """``a, b or c``: a choice of values in plain words (no Python list in messages)."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def _problem(error: dict) -> str:
    """One validation error as ``NAME=value: what is wrong`` (DATABASE_URL never shown)."""
    name = "_".join(str(part) for part in error["loc"]).upper()
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind in ("int_parsing", "int_from_float"):
        message = "must be a whole number"
    elif kind == "float_parsing":
        message = "must be a number"
    elif kind == "bool_parsing":
        message = "must be true or false"
    elif kind in _BOUNDS:
        words, bound = _BOUNDS[kind]
        message = f"{words} {ctx.get(bound)}"
    elif kind == "literal_error":
        message = "must be one of " + ctx.get("expected", "").replace("'", "")
    else:
        message = error["msg"].removeprefix("Value error, ")
    if not name:  # a check across settings: its message names the variables and values
        return message
    value = error.get("input")
    if name == "DATABASE_URL" or "PASSWORD" in name or value is None or isinstance(value, dict):
        return f"{name}: {message}"
    shown = str(value)
    if shown == "" or any(c.isspace() for c in shown):
        shown = f'"{shown}"'
    return f"{name}={shown}: {message}"


_BOUNDS = {  # pydantic error type -> (words, the bound's key in the error context)
    "greater_than_equal": ("must be at least", "ge"),
    "greater_than": ("must be more than", "gt"),
    "less_than_equal": ("must be at most", "le"),
    "less_than": ("must be less than", "lt"),
}


@functools.cache
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
