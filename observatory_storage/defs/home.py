"""Where this project's Dagster runs are recorded: DAGSTER_HOME, else ``.cache/dagster_home``.

Shared by ``dev`` (the UI and daemon read it) and by the CLI's in-process runs
(``defs/in_process.py``), so that a run of ``ingest``, ``demo`` or ``maintenance`` shows in
``dev``'s UI. Plain paths: no Dagster import.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from observatory_storage.settings import PROJECT_ROOT

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".cache" / "dagster_home"
PROJECT_DAGSTER_YAML = PROJECT_ROOT / "dagster.yaml"


def dagster_home(env: Mapping[str, str] | None = None) -> Path:
    """DAGSTER_HOME from ``env`` (the process environment by default), else the project-local
    home, created with the project's dagster.yaml.

    A DAGSTER_HOME chosen by the user keeps its own dagster.yaml; one is copied in only
    when it has none (so Dagster does not warn about a missing one). Under the
    project-local default the project's dagster.yaml is authoritative and refreshed on
    every call.
    """
    chosen = (os.environ if env is None else env).get("DAGSTER_HOME")
    home = Path(chosen).expanduser().resolve() if chosen else DEFAULT_DAGSTER_HOME
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not chosen or not target.exists():
        shutil.copyfile(PROJECT_DAGSTER_YAML, target)
    return home
