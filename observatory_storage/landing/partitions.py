"""Time-partitioned landing folders: which span of time a folder's name says it holds.

Writers put files under folders named after the time they were written: the Collector's
awss3exporter ``year=2026/month=12/day=07/hour=23/minute=05``, Firehose-style
``2026/12/07/23``, Hive-style ``dt=2026-12-07/hour=23``. :func:`segment_span` reads one
folder name, given what its parents said, as a span of time ``[start, end)``; a name that
is not a time segment (a service, a source) returns None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

UNITS = ("year", "month", "day", "hour", "minute")
_NAMED = re.compile(r"(year|month|day|hour|minute)=(\d{1,4})")
_DATE = re.compile(r"(?:(?:dt|date)=)?(\d{4})-(\d{2})-(\d{2})")
_DIGITS = re.compile(r"\d{2}|\d{4}")
_LIMITS = {"year": (1970, 2999), "month": (1, 12), "day": (1, 31), "hour": (0, 23),
           "minute": (0, 59)}


@dataclass(frozen=True)
class Partition:
    """The time a folder path has said so far: the leading units, the rest open."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    hour: int | None = None
    minute: int | None = None

    @property
    def depth(self) -> int:
        """How many leading units are known (0: none, 5: down to the minute)."""
        for i, unit in enumerate(UNITS):
            if getattr(self, unit) is None:
                return i
        return len(UNITS)

    @property
    def next_unit(self) -> str | None:
        depth = self.depth
        return UNITS[depth] if depth < len(UNITS) else None

    @property
    def start(self) -> datetime:
        return datetime(self.year or 1970, self.month or 1, self.day or 1, self.hour or 0,
                        self.minute or 0, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The end of the span (exclusive)."""
        unit = UNITS[self.depth - 1] if self.depth else None
        start = self.start
        if unit == "year":
            return start.replace(year=start.year + 1)
        if unit == "month":
            return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        if unit == "day":
            return start + timedelta(days=1)
        if unit == "hour":
            return start + timedelta(hours=1)
        if unit == "minute":
            return start + timedelta(minutes=1)
        return datetime.max.replace(tzinfo=UTC)


def _valid(unit: str, value: int) -> bool:
    low, high = _LIMITS[unit]
    return low <= value <= high


def segment_span(name: str, parent: Partition) -> Partition | None:
    """The partition a folder named ``name`` under ``parent`` holds, or None when the name
    is not the next time unit (``year=2026``, ``2026``, ``12`` after a year, ``2026-12-07``).
    """
    expected = parent.next_unit
    if expected is None:
        return None
    found = _NAMED.fullmatch(name)
    if found:
        unit, value = found.group(1), int(found.group(2))
        if unit != expected or not _valid(unit, value):
            return None
        return _with(parent, unit, value)
    found = _DATE.fullmatch(name)
    if found and expected == "year":
        year, month, day = (int(x) for x in found.groups())
        if not (_valid("year", year) and _valid("month", month) and _valid("day", day)):
            return None
        try:
            datetime(year, month, day)
        except ValueError:
            return None
        return Partition(year, month, day)
    if _DIGITS.fullmatch(name):
        value = int(name)
        if (len(name) == 4) != (expected == "year") or not _valid(expected, value):
            return None
        return _with(parent, expected, value)
    return None


def _with(parent: Partition, unit: str, value: int) -> Partition | None:
    values = {u: getattr(parent, u) for u in UNITS}
    values[unit] = value
    try:
        Partition(**values).start  # noqa: B018 - a real date (no 31 February)
    except ValueError:
        return None
    return Partition(**values)
