"""monitoring/alerts.yml: valid, each rule unit-tested with `promtool test rules`, about
metrics the service exports, and loaded by the compose `monitoring` profile's Prometheus."""

from __future__ import annotations

import re
import subprocess

import yaml

from observatory_storage.settings import PROJECT_ROOT, Settings

RULES = PROJECT_ROOT / "monitoring" / "alerts.yml"
RULE_TESTS = PROJECT_ROOT / "tests" / "service" / "alerts_test.yml"
COMPOSE = PROJECT_ROOT / "docker" / "docker-compose.yml"
PROMETHEUS_CONFIG = PROJECT_ROOT / "docker" / "prometheus.yml"


def promtool_run(promtool: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"]]


def test_rules_are_valid_and_every_rule_fires_in_its_unit_test(promtool):
    check = promtool_run(promtool, "check", "rules", str(RULES))
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in check.stdout
    tested = promtool_run(promtool, "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr

    firing = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert set(alert_names()) <= firing, "a rule without a case where it fires"
    assert {"ObservatoryRetentionNotRunning", "ObservatoryStorageDown"} <= firing


def test_rules_use_only_documented_metrics_and_are_referenced():
    doc = (PROJECT_ROOT / "docs" / "service.md").read_text()
    documented = set(re.findall(r"^\| `(storage_[a-z_]+)", doc, re.M))
    documented |= {name[: -len("_total")] for name in documented if name.endswith("_total")}
    used = set(re.findall(r"\b(storage_[a-z_]+)", RULES.read_text()))
    used = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in used}
    missing = used - documented
    assert not missing, f"metrics the rules use but docs/service.md does not list: {missing}"
    assert "monitoring/alerts.yml" in doc


def test_monitoring_profile_prometheus_loads_the_rules_and_scrapes_the_service(
    promtool, tmp_path
):
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in prometheus["volumes"]}
    config_path = next(arg.split("=", 1)[1] for arg in prometheus["command"]
                       if arg.startswith("--config.file="))
    assert (COMPOSE.parent / mounts[config_path]).resolve() == PROMETHEUS_CONFIG

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    [rules_path] = config["rule_files"]
    assert (COMPOSE.parent / mounts[rules_path]).resolve() == RULES
    [job] = config["scrape_configs"]
    assert job["job_name"] == "observatory-storage"  # what the rules match on
    assert 'up{job="observatory-storage"}' in RULES.read_text()
    [target] = job["static_configs"][0]["targets"]
    metrics_port = Settings.model_fields["metrics_port"].default
    assert target == f"observatory:{metrics_port}"
    assert f"{metrics_port}" in [str(p).split(":")[-1] for p in services["observatory"]["ports"]]

    # promtool checks the config as Prometheus would load it, rules included.
    config["rule_files"] = [str(RULES)]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    check = promtool_run(promtool, "check", "config", str(local))
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in check.stdout
