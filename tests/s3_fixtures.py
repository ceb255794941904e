"""An S3-API server for tests: moto's server mode on 127.0.0.1, reached over real HTTP.

Nothing is patched: boto3 talks to the server exactly as it would to MinIO or AWS.
Import the fixtures into a conftest (``from tests.s3_fixtures import *``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch) -> dict[str, str]:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return AWS_ENV


@pytest.fixture
def s3_client(s3_endpoint, aws_env):
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=aws_env["AWS_REGION"])


@pytest.fixture
def s3_landing_url(s3_client) -> str:
    """s3://<fresh bucket>/landing for one test."""
    bucket = f"obs-test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/landing"
