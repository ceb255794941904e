"""S3 specifics against moto's server mode: prefix handling, ETag checks, unsafe keys."""

from __future__ import annotations

import pytest

from observatory_storage.landing import open_landing
from observatory_storage.landing.base import ObjectGone
from observatory_storage.landing.s3 import S3Landing
from observatory_storage.settings import load_settings


@pytest.fixture
def s3(s3_landing_url, s3_endpoint) -> S3Landing:
    landing = open_landing(load_settings(landing_url=s3_landing_url, s3_endpoint_url=s3_endpoint))
    assert isinstance(landing, S3Landing)
    return landing


def test_keys_are_relative_to_the_prefix(s3, s3_client):
    s3.put("traces/a.parquet", b"x")
    s3_client.put_object(Bucket=s3.bucket, Key="elsewhere/traces/b.parquet", Body=b"x")
    assert s3_client.head_object(Bucket=s3.bucket, Key="landing/traces/a.parquet")
    assert [o.key for o in s3.list()] == ["traces/a.parquet"]


def test_fingerprint_is_etag_and_size(s3, s3_client):
    s3.put("traces/a.parquet", b"hello")
    obj = s3.stat("traces/a.parquet")
    head = s3_client.head_object(Bucket=s3.bucket, Key="landing/traces/a.parquet")
    assert obj.fingerprint == f"{head['ETag'].strip(chr(34))}-5"
    assert [o.fingerprint for o in s3.list()] == [obj.fingerprint]


def test_unsafe_keys_in_the_bucket_are_skipped(s3, s3_client, caplog):
    for key in ("landing/traces/../x.parquet", "landing/traces//y.parquet",
                "landing/traces/a\\b.parquet", "landing/traces/c\x07.parquet"):
        s3_client.put_object(Bucket=s3.bucket, Key=key, Body=b"x")
    s3.put("traces/ok.parquet", b"x")
    assert [o.key for o in s3.list()] == ["traces/ok.parquet"]
    assert "unsafe key" in caplog.text


def test_overwrite_between_listing_and_reading_is_detected(s3):
    s3.put("metrics/m.arrow", b"version one")
    listed = next(s3.list())
    s3.put("metrics/m.arrow", b"version two!")
    with pytest.raises(ObjectGone):
        s3.open(listed)


def test_large_object_spools_to_disk_and_reads_back(s3, monkeypatch):
    import observatory_storage.landing.s3 as s3_module

    monkeypatch.setattr(s3_module, "SPOOL_IN_MEMORY_BYTES", 1024)
    payload = bytes(range(256)) * 64
    s3.put("logs/big.arrows", payload)
    with s3.open(s3.stat("logs/big.arrows")) as handle:
        assert handle.read() == payload


def test_a_bucket_that_does_not_exist_is_a_configuration_error(s3_endpoint):
    from observatory_storage.landing import LandingMissing

    missing = open_landing(load_settings(landing_url="s3://no-such-bucket/landing",
                                         s3_endpoint_url=s3_endpoint))
    with pytest.raises(LandingMissing, match="NoSuchBucket: the bucket does not exist"):
        list(missing.list("traces"))
