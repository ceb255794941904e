"""The files LANDING_NOTIFICATIONS names, for one discovery pass, and the acknowledgement
of their messages once that pass has committed (``landing/notifications.py``).

A queue that cannot be read (missing, denied, unreachable) never stops a pass: the error
is kept for the pass's report (the sensor tick's text, the log) and discovery goes on by
listing. Messages are taken before the pass lists, so a notified file that a listing of
its folder then does not show is gone, not merely newer than the listing. A notice is never
trusted over newer knowledge: a listing of this pass or a newer backlog row wins, and a
notified file the ledger holds with another fingerprint is looked up before it counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg

from observatory_storage.landing import Landing, LandingError, LandingObject, ObjectGone
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


def merge(taken: Taken | None, candidates: dict[str, LandingObject], listed: set[str], *,
          gone: Callable[[str], bool]) -> set[str]:
    """Add the notified files to a pass's ``candidates``; the keys added. A listing of this
    pass beats a notification (it is current), and so does a file ``gone`` from the listing
    of its key range (messages are taken before listing); of a backlog row and notices of
    one key, the newest version wins (a rewritten key's older notice may come last)."""
    added: set[str] = set()
    for obj in taken.objects if taken else ():
        if obj.key in listed or gone(obj.key):
            continue
        held = candidates.get(obj.key)
        if held is None or obj.modified > held.modified:
            candidates[obj.key] = obj
            added.add(obj.key)
    return added


def recheck(landing: Landing, candidates: dict[str, LandingObject], heard: set[str],
            known: dict) -> None:
    """A notice never decides a conflict: a notified file that the ledger holds with
    another fingerprint (a rewrite, or a late notice of an older version) is looked up
    (one HEAD) and its current version used; dropped when it is gone."""
    for key in sorted(heard):
        entry = known.get(key)
        if entry is not None and entry.fingerprint != candidates[key].fingerprint:
            try:
                candidates[key] = landing.stat(key)
            except ObjectGone:
                del candidates[key]


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
