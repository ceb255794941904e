"""A landing bucket that is a local folder.

Writers must make a file appear atomically: write under an ignored name (``.name`` or
``name.tmp``) and rename, as :meth:`LocalLanding.put` does. The fingerprint is size plus
``st_mtime_ns``: a rename keeps it, a rewrite changes it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from observatory_storage.landing.base import (
    Landing,
    LandingError,
    LandingMissing,
    LandingObject,
    ObjectGone,
    is_dataset_folder,
)
from observatory_storage.landing.keys import (
    QUARANTINE_PREFIX,
    dataset_of,
    is_ignored,
    unsafe_reason,
)

log = logging.getLogger(__name__)


def _root_from_url(url: str) -> Path:
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    return Path(url)


class LocalLanding(Landing):
    def __init__(self, url: str | os.PathLike):
        self.url = str(url)
        self.root = _root_from_url(self.url).expanduser().resolve()

    # --- helpers ----------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        reason = unsafe_reason(key)
        if reason:
            raise LandingError(f"refusing landing key {key!r}: {reason}")
        return self.root.joinpath(*key.split("/"))

    def _object(self, key: str, st: os.stat_result, dataset: str | None) -> LandingObject:
        return LandingObject(
            key=key,
            dataset=dataset or "",
            size=st.st_size,
            fingerprint=f"{st.st_size}-{st.st_mtime_ns}",
            modified=st.st_mtime,
        )

    def _walk(self, top: Path) -> Iterator[tuple[str, os.stat_result]]:
        """(key, stat) of every regular file under top, in key order, unsafe keys skipped."""
        if not top.is_dir():
            return
        stack = [top]
        found: list[tuple[str, os.stat_result]] = []
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                rel = Path(entry.path).relative_to(self.root).as_posix()
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith((".", "_")):  # in-progress or _quarantine
                        stack.append(Path(entry.path))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                reason = unsafe_reason(rel)
                if reason:
                    log.warning("landing: skipping unsafe key %r (%s)", rel, reason)
                    continue
                try:
                    found.append((rel, entry.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue
        yield from sorted(found, key=lambda item: item[0])

    def _require_root(self) -> None:
        """A landing folder that is not there is a configuration error, never created."""
        if not self.root.is_dir():
            what = "is not a folder" if self.root.exists() else "does not exist"
            raise LandingMissing(f"landing folder {self.root} {what} (LANDING_URL or --landing)")

    # --- Landing ----------------------------------------------------------------------
    def list(self, dataset: str | None = None) -> Iterator[LandingObject]:
        self._require_root()
        top = self.root / dataset if dataset else self.root
        for key, st in self._walk(top):
            if is_ignored(key):
                continue
            ds = dataset_of(key)
            if ds is None:  # counted by list_outside()
                continue
            yield self._object(key, st, ds)

    @property
    def identity(self) -> str:
        return str(self.root)

    def _folder(self, prefix: str) -> Path:
        return self.root.joinpath(*prefix.split("/")) if prefix else self.root

    def _file(self, rel: str, entry: os.DirEntry) -> LandingObject | None:
        """The visible object of a directory entry in a dataset folder, else None."""
        if unsafe_reason(rel) is not None or is_ignored(rel):
            return None
        ds = dataset_of(rel)
        if ds is None:
            return None
        try:
            return self._object(rel, entry.stat(follow_symlinks=False), ds)
        except FileNotFoundError:
            return None

    def children(self, prefix: str) -> tuple[list[LandingObject], list[str]]:
        self._require_root()
        try:
            entries = list(os.scandir(self._folder(prefix)))
        except (FileNotFoundError, NotADirectoryError):
            return [], []
        files, folders = [], []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith((".", "_")):
                    folders.append(entry.name)
            elif entry.is_file(follow_symlinks=False):
                found = self._file(f"{prefix}/{entry.name}" if prefix else entry.name, entry)
                if found is not None:
                    files.append(found)
        return files, folders

    def list_after(self, root: str, after: str | None, limit: int) -> list[LandingObject]:
        self._require_root()
        out: list[LandingObject] = []
        self._after(root, after, limit, out)
        return out

    def _after(self, prefix: str, after: str | None, limit: int, out: list) -> None:
        """Keys below ``prefix`` greater than ``after``, in key order (a folder's keys sort
        as its name plus "/"), skipping folders whose keys all sort before ``after``."""
        try:
            entries = list(os.scandir(self._folder(prefix)))
        except (FileNotFoundError, NotADirectoryError):
            return
        order = []
        for entry in entries:
            folder = entry.is_dir(follow_symlinks=False)
            if folder and entry.name.startswith((".", "_")):
                continue
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            order.append((rel + "/" if folder else rel, folder, entry))
        order.sort(key=lambda item: item[0])
        for sort_key, folder, entry in order:
            if len(out) >= limit:
                return
            if folder:
                if after is not None and after > sort_key and not after.startswith(sort_key):
                    continue  # every key below sorts before ``after``
                self._after(sort_key[:-1], after, limit, out)
            elif after is None or sort_key > after:
                found = self._file(sort_key, entry) if entry.is_file(follow_symlinks=False) else None
                if found is not None:
                    out.append(found)

    def list_outside(self) -> Iterator[LandingObject]:
        self._require_root()
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith((".", "_")):
                continue
            if entry.is_dir(follow_symlinks=False):
                if is_dataset_folder(entry.name):
                    continue
                for key, st in self._walk(Path(entry.path)):
                    if not is_ignored(key) and dataset_of(key) is None:
                        yield self._object(key, st, None)
            elif entry.is_file(follow_symlinks=False) and not is_ignored(entry.name):
                if unsafe_reason(entry.name) is None:
                    try:
                        yield self._object(entry.name, entry.stat(follow_symlinks=False), None)
                    except FileNotFoundError:
                        continue

    def list_quarantined(self) -> Iterator[LandingObject]:
        for key, st in self._walk(self.root / QUARANTINE_PREFIX):
            original = self.original_key(key)
            yield self._object(key, st, dataset_of(original))

    def stat(self, key: str) -> LandingObject:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectGone(f"{key} is gone") from None
        return self._object(key, st, dataset_of(key))

    def open(self, obj: LandingObject) -> BinaryIO:
        try:
            handle = open(self._path(obj.key), "rb")  # noqa: SIM115 - caller closes
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectGone(f"{obj.key} is gone") from None
        st = os.fstat(handle.fileno())
        if f"{st.st_size}-{st.st_mtime_ns}" != obj.fingerprint:
            handle.close()
            raise ObjectGone(f"{obj.key} changed since it was listed")
        return handle

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def move(self, key: str, new_key: str) -> None:
        source, target = self._path(key), self._path(new_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            raise ObjectGone(f"{key} is gone") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
