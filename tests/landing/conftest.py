from __future__ import annotations

import pytest

from observatory_storage.landing import open_landing
from observatory_storage.settings import load_settings
from tests.s3_fixtures import aws_env, s3_client, s3_endpoint, s3_landing_url  # noqa: F401


@pytest.fixture(params=["local", "s3"])
def landing(request, tmp_path):
    """The same contract, both implementations: a tmp folder and a bucket on moto."""
    if request.param == "local":
        settings = load_settings(landing_url=str(tmp_path / "landing"))
    else:
        url = request.getfixturevalue("s3_landing_url")
        endpoint = request.getfixturevalue("s3_endpoint")
        settings = load_settings(landing_url=url, s3_endpoint_url=endpoint)
    return open_landing(settings)
