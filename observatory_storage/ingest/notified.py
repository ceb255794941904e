"""The files LANDING_NOTIFICATIONS names, for one discovery pass, and the acknowledgement
of their messages once that pass has committed (``landing/notifications.py``).

A queue that cannot be read (missing, denied, unreachable) never stops a pass: the error
is kept for the pass's report (the sensor tick's text, the log) and discovery goes on by
listing. Messages are taken before the pass lists, so a notified file that a listing of
its folder then does not show is gone, not merely newer than the listing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from observatory_storage.landing import Landing, LandingError, LandingObject
from observatory_storage.settings import Settings, redact_text

log = logging.getLogger(__name__)


@dataclass
class Taken:
    """The notified files of one pass and the messages to delete after its commit."""

    objects: list[LandingObject] = field(default_factory=list)
    error: str | None = None  # why the queue could not be read (redacted)
    messages: int = 0
    queue: object | None = None  # landing.notifications.Notifications
    receipts: list[str] = field(default_factory=list)


def take(settings: Settings, landing: Landing, roots: Sequence[str]) -> Taken | None:
    """The files the queue names under ``roots``; None when LANDING_NOTIFICATIONS is off."""
    if not settings.landing_notifications:
        return None
    # lazy: boto3 is imported only by S3 landings
    from observatory_storage.landing.notifications import open_notifications

    try:
        queue = open_notifications(settings, landing)
        got = queue.receive(set(roots))
    except LandingError as exc:
        return Taken(error=_failed(settings, exc))
    return Taken(got.objects, None, got.messages, queue, got.receipts)


def acknowledge(conn: psycopg.Connection, taken: Taken | None) -> None:
    """Commit the pass (its backlog holds every notified file still to load), then delete
    the messages it took. A failed delete only means they are received again."""
    if taken is None or not taken.receipts:
        return
    if not conn.autocommit:
        conn.commit()
    try:
        taken.queue.ack(taken.receipts)
    except LandingError as exc:
        taken.error = _failed(taken.queue.settings, exc)
    taken.receipts = []


def _failed(settings: Settings, exc: LandingError) -> str:
    message = redact_text(str(exc), settings)
    log.warning("%s", message)
    return message
