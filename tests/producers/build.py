"""Build each producer's venv once (cached, keyed by its requirements) and run the driver.

A producer is an LLM instrumentation package with the openai/anthropic SDKs, pinned in
``requirements/<name>.txt``. Its dependencies clash with the product's (OpenLIT pins older
OpenTelemetry and SDKs, year-old releases need wrapt 1), so each gets its own venv under
``.cache/producers/<name>`` in the checkout (gitignored). The venv is reused while the
SHA-256 of its requirements file (and the Python version) is the one recorded in it; a
changed file rebuilds it. ``driver.py`` then runs the real SDK calls against
``fake_llm_server.py`` (loopback only) and writes ``<name>.pb`` (the Collector's
awss3exporter ``otlp_proto``), ``<name>.otlp.json`` and ``<name>.summary.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements"
PRODUCERS = tuple(sorted(p.stem for p in REQUIREMENTS.glob("*.txt")))
MARK = ".producer-spec"


class BuildError(Exception):
    """pip could not install a producer, or its driver failed: the message says which."""


@dataclass(frozen=True)
class Produced:
    name: str
    pb: Path
    json: Path
    summary: Path
    build_seconds: float  # 0 when the cached venv was reused
    run_seconds: float


def spec_key(name: str) -> str:
    text = (REQUIREMENTS / f"{name}.txt").read_bytes()
    return hashlib.sha256(text + sys.version.encode()).hexdigest()


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:  # two test sessions never build one venv together
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_venv(name: str, cache: Path) -> tuple[Path, float]:
    """The producer's venv python (built if missing or stale) and the seconds building took."""
    venv = cache / name
    key = spec_key(name)
    with _locked(cache / f"{name}.lock"):
        if (venv / MARK).is_file() and (venv / MARK).read_text() == key:
            return venv / "bin" / "python", 0.0
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        log = cache / f"{name}.pip.log"
        with open(log, "w") as out:
            for command in ([sys.executable, "-m", "venv", str(venv)],
                            [str(venv / "bin" / "python"), "-m", "pip", "install",
                             "--disable-pip-version-check", "--progress-bar", "off",
                             "-r", str(REQUIREMENTS / f"{name}.txt")]):
                if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode:
                    tail = "".join(log.read_text(errors="replace").splitlines(True)[-8:])
                    raise BuildError(
                        f"producer {name}: `{' '.join(command[-4:])}` failed (offline, or a "
                        f"pinned release is gone?); log {log}:\n{tail}\n"
                        "Set OBS_SKIP_PRODUCERS=1 to skip the producer tests.")
        (venv / MARK).write_text(key)
        return venv / "bin" / "python", time.monotonic() - started


def run_driver(name: str, python: Path, out: Path) -> float:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENLIT"))}
    done = subprocess.run([str(python), str(HERE / "driver.py"), name, str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise BuildError(f"producer {name}: driver failed:\n{done.stdout[-2000:]}"
                         f"{done.stderr[-3000:]}")
    return time.monotonic() - started


def produce(name: str, cache: Path, out: Path) -> Produced:
    python, built = ensure_venv(name, cache)
    ran = run_driver(name, python, out)
    return Produced(name, out / f"{name}.pb", out / f"{name}.otlp.json",
                    out / f"{name}.summary.json", built, ran)
