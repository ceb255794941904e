"""`observatory-storage serve` as a real subprocess, on free ports, against real databases."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from observatory_storage.settings import PROJECT_ROOT
from tests.process_utils import free_port

CLI = Path(sys.executable).with_name("observatory-storage")
START_TIMEOUT = 60.0


@dataclass
class Served:
    """A running `serve` process and how to talk to it."""

    process: subprocess.Popen
    health_port: int
    metrics_port: int
    log_path: Path
    responses: list[str] = field(default_factory=list)  # every body read, for secret checks

    def get(self, path: str, *, port: int | None = None, timeout: float = 15.0):
        url = f"http://127.0.0.1:{port or self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                status, body = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode()
        self.responses.append(body)
        return status, body

    def health(self, path: str = "/health") -> tuple[int, dict]:
        status, body = self.get(path)
        return status, json.loads(body)

    def metrics(self) -> str:
        status, body = self.get("/metrics", port=self.metrics_port)
        assert status == 200, body
        return body

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of one sample of the current exposition, None when absent."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            metric, _, value = line.rpartition(" ")
            m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?", metric)
            if not m or m.group(1) != name:
                continue
            got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
            if got == wanted:
                return float(value)
        return None

    def wait_for(self, predicate, what: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{self.output()}")

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def serve(tmp_path):
    """Factory: serve(database_url, landing_dir, **env) -> Served, stopped at teardown."""
    started: list[Served] = []

    def start(database_url: str, landing: Path, **extra_env: str) -> Served:
        health_port, metrics_port = free_port(), free_port()
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "DB_", "LANDING_", "HEALTH_", "METRICS_"))
        }
        env.update(
            DATABASE_URL=database_url,
            LANDING_URL=str(landing),
            METRICS_REFRESH_SECONDS="0.3",
            DB_POOL_MIN_SIZE="1",
            DB_POOL_MAX_SIZE="4",
            LOG_LEVEL="INFO",
            **extra_env,
        )
        log_path = tmp_path / f"serve-{len(started)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(CLI), "serve", "--health-port", str(health_port),
                 "--metrics-port", str(metrics_port)],
                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            )
        served = Served(process, health_port, metrics_port, log_path)
        started.append(served)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{served.output()}")
            try:
                if served.get("/health/live", timeout=2)[0] == 200:
                    return served
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"serve did not answer within {START_TIMEOUT} s:\n{served.output()}")

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(10)


@pytest.fixture(scope="session")
def promtool() -> str | None:
    """promtool from OBS_PROMTOOL, PATH or scripts/install-promtool.sh's cache folder."""
    candidates = [os.environ.get("OBS_PROMTOOL"), shutil.which("promtool"),
                  str(PROJECT_ROOT / ".cache" / "promtool" / "bin" / "promtool")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    message = "promtool not found: run `bash scripts/install-promtool.sh` or set OBS_PROMTOOL"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
