"""Local-folder specifics: atomic write-then-rename, mtime fingerprint, unsafe names."""

from __future__ import annotations

import os

from observatory_storage.landing.local import LocalLanding


def test_put_leaves_no_temp_file_and_is_atomic(tmp_path):
    landing = LocalLanding(tmp_path)
    landing.put("traces/x.parquet", b"data")
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == ["x.parquet"]


def test_half_written_file_under_temp_name_is_not_listed(tmp_path):
    landing = LocalLanding(tmp_path)
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / ".x.parquet.tmp").write_bytes(b"PAR1 half")
    assert list(landing.list()) == []
    os.replace(tmp_path / "traces" / ".x.parquet.tmp", tmp_path / "traces" / "x.parquet")
    assert [o.key for o in landing.list()] == ["traces/x.parquet"]


def test_rename_keeps_fingerprint_rewrite_changes_it(tmp_path):
    landing = LocalLanding(f"file://{tmp_path}")
    landing.put("traces/a.parquet", b"abc")
    before = landing.stat("traces/a.parquet")
    landing.move("traces/a.parquet", "traces/b.parquet")
    assert landing.stat("traces/b.parquet").fingerprint == before.fingerprint
    os.utime(tmp_path / "traces" / "b.parquet", ns=(1, 2))
    assert landing.stat("traces/b.parquet").fingerprint != before.fingerprint


def test_unsafe_file_names_are_skipped_with_a_warning(tmp_path, caplog):
    landing = LocalLanding(tmp_path)
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "bad\nname.parquet").write_bytes(b"x")
    (tmp_path / "traces" / "back\\slash.parquet").write_bytes(b"x")
    (tmp_path / "traces" / "good.parquet").write_bytes(b"x")
    assert [o.key for o in landing.list()] == ["traces/good.parquet"]
    assert "unsafe key" in caplog.text


def test_symlinks_are_not_followed(tmp_path):
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(b"secret")
    root = tmp_path / "landing"
    (root / "traces").mkdir(parents=True)
    (root / "traces" / "link.parquet").symlink_to(outside)
    (root / "logs").symlink_to(tmp_path)
    assert list(LocalLanding(root).list()) == []
