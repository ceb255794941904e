"""Which landing keys are visible, which are ignored and which are refused as unsafe.

Shared by every landing implementation so that a local folder and an S3 prefix agree on
exactly the same set of files.
"""

from __future__ import annotations

import re

from observatory_storage.datasets import DATASETS

QUARANTINE_PREFIX = "_quarantine"
# Files below otlp/ are OpenTelemetry (OTLP) files: their signal (traces, metrics, logs) is
# read from their content, not from the path. "otlp" is a landing root, not a dataset.
OTLP_ROOT = "otlp"
LANDING_ROOTS: tuple[str, ...] = (*DATASETS, OTLP_ROOT)
IGNORED_SUFFIXES = (".tmp", ".part", ".inprogress", ".crc")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unsafe_reason(key: str) -> str | None:
    """Why a key must never be read or written, or None when it is safe.

    A key is a "/"-separated path relative to the landing root. Keys that could escape
    the root (``..``, absolute paths, backslashes) or confuse logs and SQL (control
    characters) are refused rather than normalised.
    """
    if not key:
        return "empty key"
    if key.startswith("/"):
        return "absolute path"
    if "\\" in key:
        return "backslash in key"
    if _CONTROL.search(key):
        return "control character in key"
    for segment in key.split("/"):
        if segment == "":
            return "empty path segment"
        if segment in (".", ".."):
            return f"{segment!r} path segment"
    return None


def is_ignored(key: str) -> bool:
    """Files still being written, hidden files and _quarantine/ are never listed."""
    segments = key.split("/")
    if any(s.startswith((".", "_")) for s in segments):
        return True
    return segments[-1].lower().endswith(IGNORED_SUFFIXES)


def dataset_of(key: str) -> str | None:
    """The landing root a key belongs to (its first segment: a dataset or ``otlp``), or None
    outside every root."""
    first, sep, rest = key.partition("/")
    if not sep or not rest or first not in LANDING_ROOTS:
        return None
    return first
