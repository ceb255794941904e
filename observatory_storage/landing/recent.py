"""The recent part of a landing: a walk that descends time-partitioned folders only where
files may still arrive, so listing costs what was written lately, not all retained history.

Each "stream" (the files below one folder that is not a time segment: ``traces/``,
``otlp/``, ``traces/service-a/``) has its own clock: its time folders are visited newest
first, and once the walk reached the stream's newest partition, older sibling folders are
visited only while their span ends within ``lookback`` of that partition's start. Late
writers (a clock behind, a retry of an old batch) within ``lookback`` are found every tick;
older late files and keys outside any time layout are found by the periodic full sweep
(``ingest/discovery.py``). Folders that are not time segments are always visited, so a
flat folder costs a listing of all its files every tick (use a time layout, or S3 event
notifications, for big flat folders).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from observatory_storage.landing.partitions import Partition, segment_span

# children(prefix) -> (files directly in the folder, names of its subfolders); prefix "" is
# the landing's root, else "a/b" (no trailing slash)
Children = Callable[[str], tuple[list, list[str]]]


def walk_recent(children: Children, top: str, lookback: timedelta,
                listed: set[str] | None = None) -> Iterator:
    """Files of ``top`` and below, skipping time folders older than ``lookback`` before
    their stream's newest partition (see the module docstring). ``listed``, when given,
    collects the folders (``a/b``) whose files were all listed."""
    seen = listed if listed is not None else set()
    yield from _walk(children, top, Partition(), [None], lookback, seen)


def _walk(children: Children, prefix: str, at: Partition, cutoff: list[datetime | None],
          lookback: timedelta, listed: set[str]) -> Iterator:
    files, folders = children(prefix)
    listed.add(prefix)
    yield from files
    timed: list[tuple[Partition, str]] = []
    for name in folders:
        span = segment_span(name, at)
        if span is None:  # a new stream below: its own clock
            yield from _walk(children, _join(prefix, name), Partition(), [None], lookback,
                             listed)
        else:
            timed.append((span, name))
    if not timed:
        if at.depth and cutoff[0] is None:  # the stream's newest partition: set its clock
            cutoff[0] = at.start - lookback
        return
    timed.sort(key=lambda item: item[0].start, reverse=True)
    for span, name in timed:
        if cutoff[0] is not None and span.end <= cutoff[0]:
            break  # this one and every older sibling ended before the lookback
        yield from _walk(children, _join(prefix, name), span, cutoff, lookback, listed)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name
