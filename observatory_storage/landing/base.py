"""What every landing bucket offers (``landing.open_landing`` picks the implementation).

Layout: ``<landing>/<dataset>/**/<file>`` with dataset ``traces``, ``metrics`` or ``logs``.
Names starting with ``.`` or ``_`` (in any path segment) and names ending ``.tmp``,
``.part`` or ``.inprogress`` are never listed: writers write under such a name and rename
(S3 PUTs are atomic). ``_quarantine/`` holds files set aside with a reason.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from observatory_storage.landing.keys import LANDING_ROOTS, QUARANTINE_PREFIX, dataset_of
from observatory_storage.landing.recent import walk_recent

FORMAT_SUFFIXES = (".parquet", ".pq", ".arrow", ".feather", ".arrows", ".ipc")
# How every report names files in no dataset folder (CLI summary, sensor tick, /health).
OUTSIDE_HINT = "not in a dataset folder ({}), never loaded".format(
    ", ".join(f"<landing>/{name}/" for name in LANDING_ROOTS))


def is_dataset_folder(name: str) -> bool:
    """Whether a top-level folder holds a dataset's files (decided by ``dataset_of``)."""
    return dataset_of(f"{name}/-") is not None


@dataclass(frozen=True)
class LandingObject:
    key: str  # relative to the landing root, "/"-separated: traces/2026/11/28/batch-1.parquet
    dataset: str
    size: int
    fingerprint: str  # changes when the content changes (size + mtime_ns, or the ETag)
    modified: float  # epoch seconds


class LandingError(RuntimeError):
    """The landing bucket could not be listed or read."""


class LandingMissing(LandingError):
    """The landing itself is not there: a missing local folder, an S3 bucket that does not
    exist or may not be listed. A configuration error (LANDING_URL, --landing), never a
    reason to create it."""


class ObjectGone(LandingError):
    """The object disappeared (or changed) between listing and reading."""


class Landing(abc.ABC):
    url: str

    @abc.abstractmethod
    def list(self, dataset: str | None = None) -> Iterator[LandingObject]:
        """Visible objects (ignored names and _quarantine/ excluded), in key order."""

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """The landing, named the same by every process (discovery state is kept per it)."""

    @abc.abstractmethod
    def children(self, prefix: str) -> tuple[list[LandingObject], list[str]]:
        """One folder: its visible files (in a dataset folder) and its subfolder names
        (hidden and ``_``-prefixed ones left out). ``prefix`` "" is the landing's root."""

    @abc.abstractmethod
    def list_after(self, root: str, after: str | None, limit: int) -> list[LandingObject]:
        """Up to ``limit`` visible objects under ``root``, in key order, after key
        ``after`` (from the first when None): one step of a rolling sweep."""

    def list_recent(self, root: str, lookback,
                    listed: set[str] | None = None) -> Iterator[LandingObject]:
        """Objects under ``root`` in the folders that may still receive files
        (``landing/recent.py``: time folders older than ``lookback`` before their
        stream's newest one are not walked); ``listed`` collects the folders whose every
        file was listed."""
        yield from walk_recent(self.children, root, lookback, listed)

    @abc.abstractmethod
    def stat(self, key: str) -> LandingObject:
        """Current state of one object; raises ObjectGone."""

    @abc.abstractmethod
    def open(self, obj: LandingObject) -> BinaryIO:
        """A seekable binary file of exactly the listed version; raises ObjectGone."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write an object atomically (write-then-rename locally)."""

    @abc.abstractmethod
    def move(self, key: str, new_key: str) -> None:
        """Rename an object (quarantine and replay)."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete an object; no error when it is already gone."""

    def quarantine_key(self, key: str) -> str:
        return f"{QUARANTINE_PREFIX}/{key}"

    def original_key(self, quarantine_key: str) -> str:
        """The key a quarantined object came from (inverse of quarantine_key)."""
        prefix = f"{QUARANTINE_PREFIX}/"
        if not quarantine_key.startswith(prefix):
            raise ValueError(f"{quarantine_key!r} is not under {prefix}")
        return quarantine_key[len(prefix):]

    @abc.abstractmethod
    def list_outside(self) -> Iterator[LandingObject]:
        """Visible files in no dataset folder (top-level files, unknown folders), key order.

        They are never loaded; reports count them so that no dropped file goes unnoticed.
        Dataset folders are not walked (one request on S3 when there is nothing outside).
        """

    @abc.abstractmethod
    def list_quarantined(self) -> Iterator[LandingObject]:
        """Objects under _quarantine/ (their keys keep the _quarantine/ prefix)."""

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectGone:
            return False
        return True
