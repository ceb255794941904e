"""The shape of the code: imports point down the data's path and close no circle
(``scripts/check-layers``, contracts in pyproject.toml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from observatory_storage.settings import PROJECT_ROOT

CHECK = PROJECT_ROOT / "scripts" / "check-layers"
LINT = Path(sys.executable).with_name("lint-imports")


def _check(package_parent: Path) -> subprocess.CompletedProcess:
    """scripts/check-layers on the package found in ``package_parent``."""
    env = dict(os.environ, PYTHONPATH=str(package_parent), LINT_IMPORTS=str(LINT))
    return subprocess.run(["bash", str(CHECK)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=package_parent)


def test_the_package_keeps_its_layers():
    done = _check(PROJECT_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


def test_an_upward_import_and_a_circle_are_refused(tmp_path):
    """The check can fail: a copy of the package where the ledger imports the Dagster layer
    (up) and the landing keys import the loader (a circle through ingest)."""
    copy = tmp_path / "observatory_storage"
    shutil.copytree(PROJECT_ROOT / "observatory_storage", copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    ledger = copy / "ingest" / "ledger.py"
    ledger.write_text(ledger.read_text() + "\nimport observatory_storage.defs.ingest  # noqa\n")
    keys = copy / "landing" / "keys.py"
    keys.write_text(keys.read_text() + "\nimport observatory_storage.landing.local  # noqa\n")
    done = _check(tmp_path)
    assert done.returncode != 0
    assert "observatory_storage.ingest.ledger -> observatory_storage.defs.ingest" in done.stdout
    assert "No cycles are allowed in observatory_storage.landing" in done.stdout


def test_every_module_imports():
    """A broken import anywhere (a module no other test loads: bench, tools) fails here."""
    import importlib
    import pkgutil

    import observatory_storage

    names = [m.name for m in pkgutil.walk_packages(observatory_storage.__path__,
                                                   "observatory_storage.")]
    assert "observatory_storage.bench.suite" in names
    for name in names:
        importlib.import_module(name)
