"""observatory-storage: the storage and maintenance plane of an LLM observability stack."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("observatory-storage")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
