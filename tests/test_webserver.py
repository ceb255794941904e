"""The real Dagster webserver loads workspace.yaml and lists every job, sensor and schedule,
and the five table assets with their lineage, kinds, freshness policy and checks."""

import json
import os
import shutil
import time
import urllib.request

import pytest

from observatory_storage.definitions import defs
from observatory_storage.settings import PROJECT_ROOT
from tests.process_utils import VENV_BIN, free_port, running, wait_for_url

pytestmark = pytest.mark.slow

LOCATIONS_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation {
            repositories { name jobs { name } sensors { name } schedules { name } }
          }
          ... on PythonError { message }
        }
      }
    }
  }
}
"""


ASSETS_QUERY = """
{
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    groupName
    kinds
    jobNames
    metadataEntries { label }
    internalFreshnessPolicy {
      ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds }
    }
    assetChecksOrError { ... on AssetChecks { checks { name } } }
  }
}
"""


def graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local
        body = json.load(response)
    assert "errors" not in body, body
    return body["data"]


def expected_names() -> dict[str, set[str]]:
    repo = defs.get_repository_def()
    return {
        "jobs": {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")},
        "sensors": {s.name for s in repo.sensor_defs},
        "schedules": {s.name for s in repo.schedule_defs},
    }


def test_webserver_serves_the_code_location_with_every_definition(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"DAGSTER_HOME": str(home), "LANDING_URL": str(tmp_path / "landing")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [str(VENV_BIN / "dagster-webserver"), "-w", str(PROJECT_ROOT / "workspace.yaml"),
            "-h", "127.0.0.1", "-p", str(port)]
    log = tmp_path / "webserver.log"
    with running(argv, env=env, cwd=PROJECT_ROOT, log=log) as proc:
        info = json.loads(wait_for_url(f"{base}/server_info", proc, log=log))
        assert info["dagster_version"] == "1.13.27"

        deadline = time.monotonic() + 120
        while True:
            entries = graphql(base, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
            if entries and entries[0]["loadStatus"] == "LOADED":
                break
            assert time.monotonic() < deadline, entries
            time.sleep(1)
        nodes = {
            "/".join(node["assetKey"]["path"]): node
            for node in graphql(base, ASSETS_QUERY)["assetNodes"]
        }
        # the project's dagster.yaml (nux: enabled: false): no community pop-up on a new
        # instance's first page (the UI shows it when this field is true)
        assert graphql(base, "{ shouldShowNux }")["shouldShowNux"] is False

    [entry] = entries
    assert entry["name"] == "observatory_storage"
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    [repository] = location["repositories"]
    served = {kind: {item["name"] for item in repository[kind]} for kind in expected_names()}
    for kind, names in expected_names().items():
        assert names <= served[kind], (kind, names - served[kind])
    assert "ingest_job" in served["jobs"]
    assert "landing_sensor" in served["sensors"]

    assert set(nodes) == {"traces", "metrics", "logs", "traces_hourly", "metrics_hourly"}
    deps = {name: {"/".join(k["path"]) for k in n["dependencyKeys"]} for name, n in nodes.items()}
    assert deps == {"traces": set(), "metrics": set(), "logs": set(),
                    "traces_hourly": {"traces"}, "metrics_hourly": {"metrics"}}
    checks = {name: {c["name"] for c in n["assetChecksOrError"]["checks"]}
              for name, n in nodes.items()}
    for raw in ("traces", "metrics", "logs"):
        assert checks[raw] == {"quarantined_files", "loaded_rows_stored", "columns_match_contract"}
        assert "ingest_job" in nodes[raw]["jobNames"]
        policy = nodes[raw]["internalFreshnessPolicy"]
        assert policy == {"failWindowSeconds": 240 * 60, "warnWindowSeconds": 60 * 60}
    for hourly in ("traces_hourly", "metrics_hourly"):
        assert checks[hourly] == {"hourly_matches_raw", "columns_match_contract"}
        assert "rollups" in nodes[hourly]["jobNames"]
    for node in nodes.values():
        assert node["groupName"] == "observatory"
        assert set(node["kinds"]) == {"postgres"}  # no database here: no TimescaleDB tag
        labels = {e["label"] for e in node["metadataEntries"]}
        assert {"dagster/table_name", "dagster/column_schema"} <= labels
