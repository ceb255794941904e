"""Fixtures of the reliability suite: S3 via a moto server, a private PostgreSQL that may be
restarted or starved, and the fault table printed when the session ends."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.reliability.report import (
    INPUTS,
    RESULTS,
    FaultRow,
    render_inputs_markdown,
    render_markdown,
)


@pytest.fixture
def record_fault():
    """Add one row to the session's fault table (see docs/reliability.md)."""

    def record(**fields) -> FaultRow:
        row = FaultRow(**fields)
        RESULTS.append(row)
        return row

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if INPUTS:
        terminalreporter.section("reliability: bad inputs")
        terminalreporter.write_line(render_inputs_markdown())
    if RESULTS:
        terminalreporter.section("reliability: faults survived")
        terminalreporter.write_line(render_markdown(RESULTS))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3-compatible endpoint (moto's server, a real HTTP listener) on loopback."""
    from moto.server import ThreadedMotoServer

    from tests.reliability.servers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(moto_endpoint) -> Iterator[tuple[str, object]]:
    """A fresh bucket: (landing URL, boto3 client)."""
    import uuid

    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = f"landing-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/in", client


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory) -> Iterator[object]:
    """A private PostgreSQL (the embedded wheel's binaries) this suite may restart or starve."""
    from tests.reliability.servers import PrivateServer

    server = PrivateServer(tmp_path_factory.mktemp("private-pg"), max_connections=20)
    server.start()
    try:
        yield server
    finally:
        server.stop()
