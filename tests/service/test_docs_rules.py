"""The alert rules shown to operators in docs/service.md are valid Prometheus rules."""

from __future__ import annotations

import re
import subprocess

from observatory_storage.settings import PROJECT_ROOT


def test_alert_examples_pass_promtool_check_rules(promtool, tmp_path):
    doc = (PROJECT_ROOT / "docs" / "service.md").read_text()
    alerts = doc.split("## Alerts", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", alerts, re.S).group(1)
    rules = tmp_path / "rules.yml"
    rules.write_text(block)
    check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 8 rules found" in check.stdout
