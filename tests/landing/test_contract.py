"""The landing contract, run against both a local folder and an S3 bucket (moto server)."""

from __future__ import annotations

import pytest

from observatory_storage.landing.base import LandingError, ObjectGone


def keys(objects) -> list[str]:
    return [o.key for o in objects]


def test_put_list_open_roundtrip(landing):
    landing.put("traces/2026/11/28/b.parquet", b"PAR1-b")
    landing.put("traces/a.parquet", b"PAR1-a")
    landing.put("metrics/m.arrow", b"ARROW1")
    listed = list(landing.list())
    assert keys(listed) == ["metrics/m.arrow", "traces/2026/11/28/b.parquet", "traces/a.parquet"]
    assert [o.dataset for o in listed] == ["metrics", "traces", "traces"]
    assert keys(landing.list("traces")) == ["traces/2026/11/28/b.parquet", "traces/a.parquet"]
    obj = landing.stat("traces/a.parquet")
    assert obj.size == 6 and obj.dataset == "traces"
    with landing.open(obj) as handle:
        assert handle.read() == b"PAR1-a"
        handle.seek(0)
        assert handle.read(4) == b"PAR1"


def test_ignored_names_are_never_listed(landing):
    for key in (
        "traces/.hidden.parquet",
        "traces/_tmp/x.parquet",
        "traces/x.parquet.tmp",
        "traces/x.parquet.part",
        "traces/x.inprogress",
        "traces/_SUCCESS",
        "_quarantine/traces/q.parquet",
        "unknown/x.parquet",
        "toplevel.parquet",
    ):
        landing.put(key, b"x")
    landing.put("traces/ok.parquet", b"x")
    assert keys(landing.list()) == ["traces/ok.parquet"]
    # Outside every dataset folder: never loaded, but listed so that reports count them
    # (names being written and _quarantine/ stay invisible there too).
    landing.put("unknown/deeper/.y.parquet", b"x")
    landing.put("unknown/z.parquet.tmp", b"x")
    assert keys(landing.list_outside()) == ["toplevel.parquet", "unknown/x.parquet"]
    assert {o.dataset for o in landing.list_outside()} == {""}


def test_fingerprint_changes_when_content_changes(landing):
    landing.put("logs/a.arrows", b"one")
    first = landing.stat("logs/a.arrows")
    landing.put("logs/a.arrows", b"other content")
    second = landing.stat("logs/a.arrows")
    assert first.fingerprint != second.fingerprint
    with pytest.raises(ObjectGone):
        landing.open(first)  # the listed version is not what is stored any more
    with landing.open(second) as handle:
        assert handle.read() == b"other content"


def test_vanished_object_raises_object_gone(landing):
    landing.put("traces/a.parquet", b"x")
    obj = landing.stat("traces/a.parquet")
    landing.delete("traces/a.parquet")
    landing.delete("traces/a.parquet")  # deleting twice is fine
    with pytest.raises(ObjectGone):
        landing.open(obj)
    with pytest.raises(ObjectGone):
        landing.stat("traces/a.parquet")
    assert not landing.exists("traces/a.parquet")


def test_move_to_quarantine_and_back(landing):
    landing.put("traces/bad.parquet", b"bad")
    q = landing.quarantine_key("traces/bad.parquet")
    landing.move("traces/bad.parquet", q)
    assert keys(landing.list()) == []
    quarantined = list(landing.list_quarantined())
    assert keys(quarantined) == ["_quarantine/traces/bad.parquet"]
    assert quarantined[0].dataset == "traces"
    landing.move(q, landing.original_key(q))
    assert keys(landing.list()) == ["traces/bad.parquet"]
    with pytest.raises(ObjectGone):
        landing.move("traces/missing.parquet", "traces/other.parquet")


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/abs/x.parquet", "traces//x.parquet", "traces/a\\b", "traces/\x01x", ""]
)
def test_unsafe_keys_are_refused(landing, key):
    with pytest.raises(LandingError):
        landing.put(key, b"x")
