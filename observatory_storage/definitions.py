"""The Dagster code location that ``workspace.yaml`` and ``[tool.dagster]`` name: the
definitions of ``defs/`` (``defs/definitions.py``)."""

from observatory_storage.defs.definitions import defs

__all__ = ["defs"]
