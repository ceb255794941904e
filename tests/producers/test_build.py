"""The producer venvs: cached by their requirements' hash, and a failed install is loud."""

from __future__ import annotations

import pytest

from tests.producers import build


def test_a_producer_pip_cannot_install_fails_naming_it_and_the_log(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements"
    requirements.mkdir()
    (requirements / "broken.txt").write_text("this is not a requirement ===\n")
    monkeypatch.setattr(build, "REQUIREMENTS", requirements)
    with pytest.raises(build.BuildError) as info:
        build.ensure_venv("broken", tmp_path / "cache")
    message = str(info.value)
    assert "producer broken" in message and "broken.pip.log" in message
    assert "OBS_SKIP_PRODUCERS=1" in message
    assert not (tmp_path / "cache" / "broken" / build.MARK).exists()  # rebuilt next time


def test_the_cache_key_follows_the_requirements(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "REQUIREMENTS", tmp_path)
    (tmp_path / "p.txt").write_text("a==1\n")
    first = build.spec_key("p")
    (tmp_path / "p.txt").write_text("a==2\n")
    assert build.spec_key("p") != first
