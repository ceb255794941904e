"""The docs cannot drift: generated blocks equal their rendering, and links resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from observatory_storage import config_reference, env_example
from observatory_storage.config_reference import END_MARKER, START_MARKER
from observatory_storage.settings import PROJECT_ROOT, Settings

LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
DOCS = sorted([PROJECT_ROOT / "README.md", *(PROJECT_ROOT / "docs").glob("*.md")])


def test_readme_configuration_block_is_rendered_from_settings():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(START_MARKER) == 1 and readme.count(END_MARKER) == 1
    assert readme.index(START_MARKER) > readme.index("## Configuration")
    assert config_reference.replace_block(readme, config_reference.render_block()) == readme, (
        "README.md is stale: run `python -m observatory_storage.config_reference`"
    )
    assert config_reference.main(["--check"]) == 0


def test_every_setting_is_in_the_readme_and_env_example():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    example = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in readme
        assert re.search(rf"^# {name.upper()}=", example, re.M), name


def test_env_example_is_rendered_from_settings():
    current = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    assert current == env_example.render(), (
        ".env.example is stale: run `python -m observatory_storage.env_example`"
    )


def test_env_example_holds_no_real_secret_and_loads_cleanly(tmp_path, monkeypatch):
    """Uncommenting every default line yields valid settings equal to the defaults."""
    text = env_example.render()
    assert "CHANGE_ME" in text
    for line in text.splitlines():
        if re.match(r"^#?\s*\w*(PASSWORD|SECRET)\w*=\S", line):
            pytest.fail(f".env.example sets a secret: {line!r}")
    settings_lines = [
        line[2:]
        for line in text.splitlines()
        if re.match(r"^# [A-Z0-9_]+=", line) and line[2:].split("=")[0].lower() in Settings.model_fields
    ]
    assert len(settings_lines) == len(Settings.model_fields)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "\n".join(line for line in settings_lines if not line.endswith("=")) + "\n"
    )
    loaded = Settings().model_dump()
    defaults = Settings(_env_file=None).model_dump()
    # EMBEDDED_PG_DIR is written relative to the checkout; everything else is identical.
    loaded.pop("embedded_pg_dir"), defaults.pop("embedded_pg_dir")
    assert loaded == defaults


def _links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return LINK.findall(text)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        if m := re.match(r"^#{1,6}\s+(.*?)\s*#*$", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_relative_link_resolves(doc):
    broken = []
    for target in _links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (doc.parent / file_part).resolve() if file_part else doc
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{doc.name}: broken links: {broken}"


def test_readme_links_the_operator_docs():
    links = {link.partition("#")[0] for link in _links(PROJECT_ROOT / "README.md")}
    for doc in ("docs/operations.md", "docs/scaling.md", "docs/security.md"):
        assert doc in links, f"README.md does not link {doc}"
