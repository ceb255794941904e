"""The landing bucket: a local folder or an S3-compatible prefix, behind one interface.

``base`` says what every bucket offers, ``keys`` which keys are visible, ignored or refused;
``local`` and ``s3`` implement it; :func:`open_landing` picks one from a URL.
"""

from observatory_storage.landing.base import (
    OUTSIDE_HINT,
    Landing,
    LandingError,
    LandingMissing,
    LandingObject,
    ObjectGone,
)
from observatory_storage.landing.local import LocalLanding
from observatory_storage.settings import Settings

__all__ = ["OUTSIDE_HINT", "Landing", "LandingError", "LandingMissing", "LandingObject",
           "LocalLanding", "ObjectGone", "open_landing"]


def open_landing(settings: Settings, url: str | None = None) -> Landing:
    url = url or settings.landing_url
    if url.startswith("s3://"):
        # lazy: boto3 costs ~0.3 s of start-up, paid only by S3 landings
        from observatory_storage.landing.s3 import S3Landing

        return S3Landing(url, settings)
    return LocalLanding(url)
