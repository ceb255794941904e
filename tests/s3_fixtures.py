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


@pytest.fixture
def sqs_client(s3_endpoint, aws_env):
    """SQS on the same moto server (moto serves every AWS API on one endpoint)."""
    return boto3.client("sqs", endpoint_url=s3_endpoint, region_name=aws_env["AWS_REGION"])


@pytest.fixture
def s3_notified_landing(s3_client, sqs_client, s3_landing_url) -> tuple[str, str]:
    """(s3_landing_url, sqs://queue): the bucket sends its ObjectCreated events to a fresh
    queue, as an operator configures it (docs/ingest.md). moto delivers them itself, in the
    server's process, as S3 does: nothing here sends the events."""
    bucket = s3_landing_url.removeprefix("s3://").partition("/")[0]
    name = f"obs-events-{uuid.uuid4().hex[:12]}"
    url = sqs_client.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    s3_client.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [
                                     {"Name": "prefix", "Value": "landing/"}]}}}]})
    return s3_landing_url, f"sqs://{name}"
