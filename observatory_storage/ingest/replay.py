"""Re-queue quarantined files once they are fixed: ``observatory-storage replay``.

Replaying a key moves its file back from ``_quarantine/`` (unless a fixed file already
sits at the original key) and deletes its quarantined ledger row, so the next run loads
it. A loaded key is never re-queued: its rows are already in the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from observatory_storage.db.connection import connect
from observatory_storage.ingest import ledger
from observatory_storage.landing import open_landing
from observatory_storage.landing.base import Landing
from observatory_storage.landing.keys import QUARANTINE_PREFIX
from observatory_storage.settings import Settings


@dataclass(frozen=True)
class ReplayResult:
    key: str
    action: str  # requeued | refused | unknown
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def _original(landing: Landing, key: str) -> str:
    return landing.original_key(key) if key.startswith(f"{QUARANTINE_PREFIX}/") else key


def replay(
    settings: Settings, keys: Sequence[str] = (), *, all_quarantined: bool = False
) -> list[ReplayResult]:
    landing = open_landing(settings)
    schema = settings.db_schema
    with connect(settings, autocommit=True) as conn:
        wanted = [_original(landing, k) for k in keys]
        if all_quarantined:
            wanted += [e.object_key for e in ledger.quarantined(conn, schema)]
            wanted += [landing.original_key(o.key) for o in landing.list_quarantined()]
        results = []
        for key in dict.fromkeys(wanted):  # de-duplicated, order kept
            results.append(_replay_one(conn, schema, landing, key))
    return results


def _replay_one(conn, schema: str, landing: Landing, key: str) -> ReplayResult:
    entry = ledger.get(conn, schema, key)
    if entry is not None and entry.status == "loaded":
        return ReplayResult(key, "refused", "already loaded; new content needs a new key")
    if entry is not None and entry.status in ("loading", "partial"):
        return ReplayResult(key, "refused", f"{entry.status}: some of its parts are loaded "
                            "already; replaying would duplicate them (see docs/ingest.md)")
    parked = (entry.quarantine_key if entry else None) or landing.quarantine_key(key)
    moved = False
    if landing.exists(parked):
        if landing.exists(key):
            detail = f"kept {parked}: a file already sits at {key}"
        else:
            landing.move(parked, key)
            moved = True
            detail = f"moved back from {parked}"
    elif landing.exists(key):
        detail = "file is in place"
    elif entry is None:
        return ReplayResult(key, "unknown", "no quarantined file or ledger row")
    else:
        detail = "file is missing; ledger row cleared"
    forgotten = ledger.forget_quarantined(conn, schema, key)
    if not moved and not forgotten and entry is None:
        return ReplayResult(key, "unknown", detail)
    return ReplayResult(key, "requeued", detail)
