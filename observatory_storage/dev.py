"""``observatory-storage dev``: the whole stack on one machine, stopped by one Ctrl-C.

Order: the database (the embedded PostgreSQL when DATABASE_URL is unset, started once and
handed to every child as DATABASE_URL) -> migrations -> ``dagster dev`` on
``workspace.yaml`` with a persistent DAGSTER_HOME -> ``observatory-storage serve``.

Process hygiene is the point of this module. A child started from a non-interactive parent
inherits SIGINT as *ignored*; ``dagster dev`` then maps SIGTERM to that ignored handler and
can no longer be stopped, orphaning its webserver, daemon and code servers. So ``dev``
handles SIGINT, SIGTERM, SIGHUP and SIGQUIT itself before it starts a child (a handled
signal is back to its default in a child after exec; only an ignored one is inherited),
every child starts in its own session, and :meth:`Supervisor.stop` sends SIGTERM to each
child's process group, waits, then SIGKILLs the group and any descendant that escaped it.

Start-up jobs (the rollups and the asset checks, so the UI shows them evaluated from the
first page) start once the UI answers: Dagster has created its storage by then, which two
processes creating it at once would break.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from dotenv import dotenv_values

from observatory_storage.datasets import DATASETS
from observatory_storage.db import embedded
from observatory_storage.db.connection import connect
from observatory_storage.defs.home import dagster_home
from observatory_storage.landing import LandingMissing, open_landing
from observatory_storage.maintenance.migrate import migrate
from observatory_storage.settings import PROJECT_ROOT, Settings

DEFAULT_LANDING = Path("landing")  # LANDING_URL's default, ./landing: the one dev creates

# `dagster dev` itself warns that it is superseded by `dg dev` (a separate CLI package we
# do not install): a warning about the command, not about our definitions.
_DEV_SUPERSEDED = "ignore:Function `dev_command` is superseded:Warning"
# Handled by dev while its children run (so none of them inherits one as ignored).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    descendants: set[int] = field(default_factory=set)
    oneshot: bool = False  # expected to finish (a start-up job), not to run until Ctrl-C
    reported: bool = False

    def remember_descendants(self) -> None:
        """Record the pids below this child, to kill them even if they leave its group."""
        try:
            for proc in psutil.Process(self.process.pid).children(recursive=True):
                self.descendants.add(proc.pid)
        except psutil.NoSuchProcess:
            pass


class Supervisor:
    """Starts children in their own sessions and stops every one of them."""

    def __init__(self, *, env: dict[str, str], cwd: Path, out=None,
                 plain: bool | None = None):
        self.env = env
        self.cwd = cwd
        self.out = out or sys.stderr
        self.children: list[Child] = []
        self.stopping = threading.Event()
        # Output going to a file or pipe gets no colour codes: children write into a pipe
        # that pump_output() copies, escape sequences removed (Dagster colours its log
        # lines whether or not they go to a terminal).
        self.plain = (not _is_terminal(self.out)) if plain is None else plain
        self._lock = threading.Lock()  # start() (also from a thread) against stop()

    def start(self, name: str, argv: list[str], *, cwd: Path | None = None,
              oneshot: bool = False) -> Child | None:
        """Start a child (None once stopping: nothing starts after stop())."""
        with self._lock:
            if self.stopping.is_set() and self.children:
                return None
            return self._start(name, argv, cwd=cwd, oneshot=oneshot)

    def _start(self, name: str, argv: list[str], *, cwd: Path | None, oneshot: bool) -> Child:
        piped = subprocess.PIPE if self.plain else None
        process = subprocess.Popen(
            argv,
            cwd=cwd or self.cwd,
            env=self.env,
            stdout=piped,
            stderr=subprocess.STDOUT if self.plain else None,
            start_new_session=True,  # own process group: killpg reaches its whole tree
        )
        if process.stdout is not None:
            threading.Thread(target=self._copy, args=(process.stdout,), daemon=True,
                             name=f"dev-output-{name}").start()
        child = Child(name, process, oneshot=oneshot)
        self.children.append(child)
        return child

    def _copy(self, pipe) -> None:
        """A child's output to ours, colour codes removed (``plain``)."""
        for line in iter(pipe.readline, b""):
            text = _ANSI.sub("", line.decode("utf-8", "replace"))
            try:
                self.out.write(text)
                self.out.flush()
            except (OSError, ValueError):  # our own output closed: keep draining the pipe
                pass
        pipe.close()

    def request_stop(self, signum=None, _frame=None) -> None:
        self.stopping.set()

    def wait(self, poll_seconds: float = 0.5) -> int:
        """Block until a stop is requested (0) or a child exits (its exit code, 1 if 0)."""
        while not self.stopping.wait(poll_seconds):
            for child in self.children:
                child.remember_descendants()
                code = child.process.poll()
                if code is None:
                    continue
                if child.oneshot:
                    if not child.reported:
                        child.reported = True
                        self._say(f"{child.name}: " + ("done" if code == 0 else
                                                      f"exited with code {code} (see above)"))
                    continue
                self._say(f"{child.name} exited with code {code}; stopping the others")
                return code or 1
        return 0

    def stop(self, grace_seconds: float = 20.0) -> None:
        """SIGTERM every child's group, wait up to ``grace_seconds``, then SIGKILL leftovers."""
        with self._lock:
            self.stopping.set()
        for child in self.children:
            child.remember_descendants()
        for child in reversed(self.children):
            self._signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for child in self.children:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self._say(f"{child.name} did not stop in {grace_seconds:.0f} s; killing it")
        for child in self.children:
            self._signal_group(child, signal.SIGKILL)
            if child.process.poll() is None:
                child.process.wait(timeout=10)
            survivors = _alive(child.descendants)
            if survivors:
                _wait_or_kill(survivors, timeout=max(0.1, deadline - time.monotonic()))

    @staticmethod
    def _signal_group(child: Child, signum: int) -> None:
        try:
            os.killpg(child.process.pid, signum)  # pgid == pid: start_new_session
        except (ProcessLookupError, PermissionError):
            pass

    def _say(self, text: str) -> None:
        print(f"[dev] {text}", file=self.out, flush=True)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # CSI escape sequences (colours, cursor)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _alive(pids: set[int]) -> list[psutil.Process]:
    alive = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_or_kill(procs: list[psutil.Process], timeout: float) -> None:
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, still = psutil.wait_procs(procs, timeout=timeout)
    for proc in still:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(still, timeout=5)


# --- the stack --------------------------------------------------------------------------


@dataclass(frozen=True)
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    serve: bool = True
    keep_db: bool = False


def _cli_argv(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("observatory-storage")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from observatory_storage.cli import main; main()", *args]


class DevRefused(RuntimeError):
    """``dev`` cannot start; the message says why and what to do (exit 2)."""


LOCK_NAME = "observatory-dev.lock"


class DevLock:
    """One ``dev`` per Dagster home: a second one would start a second daemon on the same
    instance. An exclusive flock on a file in DAGSTER_HOME, holding the owner's pid and UI
    URL; the kernel drops it when the process ends, however it ends."""

    def __init__(self, home: Path, ui_url: str):
        self.path = home / LOCK_NAME
        self.handle = open(self.path, "a+")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            try:
                owner = json.loads(self.handle.read() or "{}")
            except ValueError:
                owner = {}
            self.handle.close()
            raise DevRefused(
                f"another `observatory-storage dev` (pid {owner.get('pid', '?')}) runs on this "
                f"Dagster home ({home}); its UI is {owner.get('ui', 'unknown')}. Use that one, "
                "stop it first, or give this one its own DAGSTER_HOME"
            ) from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(json.dumps({"pid": os.getpid(), "ui": ui_url,
                                      "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        self.handle.flush()

    def release(self) -> None:
        try:
            self.handle.seek(0)
            self.handle.truncate()
        finally:
            self.handle.close()  # releases the flock


def _prepare_landing(settings: Settings, url: str) -> None:
    """A landing that is not there is a configuration error, except the default ./landing,
    which ``dev`` creates (with its dataset folders) for a first start."""
    if url.startswith("s3://"):
        try:
            for _ in open_landing(settings, url).list_outside():
                break
        except LandingMissing as exc:
            raise DevRefused(str(exc)) from None
        return
    root = Path(url)
    if not root.is_dir() and root != DEFAULT_LANDING.resolve():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DevRefused(f"landing folder {root} {what} (LANDING_URL); create it, or unset "
                         "LANDING_URL for ./landing")
    for name in DATASETS:
        (root / name).mkdir(parents=True, exist_ok=True)


def run_dev(settings: Settings, options: DevOptions, out=None) -> int:
    """Run the stack until Ctrl-C/SIGTERM or a child dies; returns the exit code.

    Raises DevRefused before starting anything when the landing is missing or another
    ``dev`` runs on the same Dagster home."""
    out = out or sys.stdout
    env = dict(os.environ)
    home = dagster_home(env)
    lock = DevLock(home, f"http://{options.host}:{options.port}")
    try:
        _prepare_landing(settings, _absolute_landing(settings.landing_url))
        return _run(settings, options, out, env, home)
    finally:
        lock.release()


def _run(settings: Settings, options: DevOptions, out, env: dict, home: Path) -> int:
    started_db = False
    settings_had_url = bool(settings.database_url)
    if not settings.database_url:
        was_running = embedded.running_uri(settings.embedded_pg_dir) is not None
        env["DATABASE_URL"] = embedded.ensure_started(settings.embedded_pg_dir)
        settings = settings.model_copy(update={"database_url": env["DATABASE_URL"]})
        started_db = not was_running
        note = ("already running: left running on exit" if was_running else
                "left running on exit (--keep-db)" if options.keep_db else "stopped on exit")
        print(f"[dev] embedded PostgreSQL: {settings.embedded_pg_dir} ({note})", file=out,
              flush=True)
    else:
        env["DATABASE_URL"] = settings.database_url  # also when it came from .env
        print(f"[dev] database: {settings.redacted_database_url}", file=out, flush=True)

    # Children run where the user ran us (.env and a relative LANDING_URL resolve alike),
    # and get the landing as an absolute path so that every process watches one folder.
    env["LANDING_URL"] = _absolute_landing(settings.landing_url)
    # Dagster's processes run from DAGSTER_HOME (see below): hand them this folder's .env.
    for key, value in dotenv_values(Path.cwd() / ".env").items():
        if value is not None:
            env.setdefault(key, value)
    supervisor = Supervisor(env=env, cwd=Path.cwd(), out=out)
    previous = {s: signal.signal(s, supervisor.request_stop) for s in _STOP_SIGNALS}
    try:
        with connect(settings, autocommit=True) as conn:
            applied = migrate(conn, settings)
        print(f"[dev] migrations: {len(applied)} applied", file=out, flush=True)

        env["DAGSTER_HOME"] = str(home)
        env.setdefault("PYTHONUNBUFFERED", "1")
        supervisor.start(
            "dagster dev",
            [sys.executable, "-W", _DEV_SUPERSEDED, "-m", "dagster", "dev",
             "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", options.host, "-p", str(options.port)],
            # From DAGSTER_HOME: `dagster dev` warns that a dagster.yaml in its working folder
            # "will not be used", which is misleading (ours is copied into DAGSTER_HOME).
            cwd=home,
        )
        if options.serve:
            supervisor.start("serve", _cli_argv("serve"))
        _print_urls(settings, options, home, out)
        threading.Thread(target=_start_up_jobs, args=(supervisor, options), daemon=True,
                         name="dev-start-up-jobs").start()
        code = 0 if supervisor.stopping.is_set() else supervisor.wait()
    finally:
        print("[dev] stopping...", file=out, flush=True)
        supervisor.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if not settings_had_url and not (started_db and not options.keep_db):
            print("[dev] embedded PostgreSQL left running "
                  + ("(--keep-db)" if started_db else "(it was running before `dev` started)")
                  + "; `observatory-storage db stop` stops it", file=out, flush=True)
        if started_db and not options.keep_db:
            embedded.stop(settings.embedded_pg_dir)
            if embedded.running_uri(settings.embedded_pg_dir) is None:
                print("[dev] embedded PostgreSQL stopped", file=out, flush=True)
            else:
                print("[dev] embedded PostgreSQL did not stop; run `observatory-storage db stop`",
                      file=out, flush=True)
    print("[dev] stopped", file=out, flush=True)
    return code


def _start_up_jobs(supervisor: Supervisor, options: DevOptions, timeout: float = 300.0) -> None:
    """The rollups and the asset checks once, recorded in DAGSTER_HOME, as soon as the UI
    answers: its first page then shows every check evaluated and the rollups materialized
    instead of waiting for the hourly schedules."""
    url = f"http://{options.host}:{options.port}/server_info"
    deadline = time.monotonic() + timeout
    while not supervisor.stopping.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                break
        except OSError:
            supervisor.stopping.wait(1)
    else:
        return
    supervisor.start("start-up rollups", _cli_argv("maintenance", "rollups"), oneshot=True)
    supervisor.start("start-up checks", _cli_argv("maintenance", "checks"), oneshot=True)


def _absolute_landing(url: str) -> str:
    if url.startswith("s3://"):
        return url
    return str(Path(url.removeprefix("file://")).expanduser().resolve())


def _print_urls(settings: Settings, options: DevOptions, home: Path, out) -> None:
    lines = [
        f"Dagster UI      http://{options.host}:{options.port}",
        f"DAGSTER_HOME    {home}",
        f"landing         {_absolute_landing(settings.landing_url)}",
    ]
    if options.serve:
        lines += [
            f"health          http://{settings.health_host}:{settings.health_port}/health",
            f"metrics         http://{settings.health_host}:{settings.metrics_port}/metrics",
        ]
    lines.append("Ctrl-C stops everything.")
    for line in lines:
        print(f"[dev] {line}", file=out, flush=True)
