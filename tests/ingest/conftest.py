from __future__ import annotations

from tests.s3_fixtures import aws_env, s3_client, s3_endpoint, s3_landing_url  # noqa: F401
