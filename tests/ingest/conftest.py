from __future__ import annotations

from tests.s3_fixtures import (  # noqa: F401
    aws_env,
    s3_client,
    s3_endpoint,
    s3_landing_url,
    s3_notified_landing,
    sqs_client,
)
