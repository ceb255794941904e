"""Dagster resources. Settings come from the environment, never from run config, so no
secret (DATABASE_URL) ever appears in Dagster's run config, event log or UI."""

from typing import Optional

import dagster as dg

from observatory_storage.settings import Settings, get_settings, load_settings


class StorageResource(dg.ConfigurableResource):
    """Access to the product's settings; ``landing_url`` may be overridden per run."""

    landing_url: Optional[str] = None  # noqa: UP045 - Dagster config needs Optional

    def settings(self) -> Settings:
        if self.landing_url:
            return load_settings(landing_url=self.landing_url)
        return get_settings()


RESOURCES = {"storage": StorageResource()}
