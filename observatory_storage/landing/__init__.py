"""The landing bucket: a local folder or an S3-compatible prefix, behind one interface."""

from observatory_storage.landing.base import Landing, LandingObject, open_landing

__all__ = ["Landing", "LandingObject", "open_landing"]
