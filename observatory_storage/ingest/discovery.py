"""What still needs work, found at the cost of what is new: the landing's files that the
ledger has not settled.

A discovery pass (a sensor tick, ``ingest``, an ingest run) looks at three sources per
landing root and lets the ledger decide which of their files need work:

- the *recent* listing (``Landing.list_recent``): time-partitioned folders
  (``year=/month=/...``, ``YYYY/MM/DD/HH``) are walked only back to LANDING_LOOKBACK_MINUTES
  before their stream's newest one, so a tick lists what was written lately, not the
  history the landing retains;
- the *backlog* (``landing_backlog``): files a pass found and the ledger had not settled
  (more than one run takes, files the sweep found), until the ledger settles them;
- the files LANDING_NOTIFICATIONS names (S3 event notifications through SQS,
  ``ingest/notified.py``), on passes that write: a late file in an old folder is found by the
  next pass instead of the next sweep; they join the backlog while they need work, and
  their messages are deleted only after the pass committed (``pending_objects``,
  ``pending_roots``; at least once);
- one step of the *rolling sweep* (``landing_sweeps``): the next LANDING_SWEEP_BATCH keys in
  key order after where the last pass stopped, so every retained key is looked at again
  N / LANDING_SWEEP_BATCH passes; once it has reached the end, the next sweep starts
  LANDING_SWEEP_MINUTES after (passes in between list only the recent folders). It finds
  what the recent listing cannot: late files in old folders (a writer's clock behind, a
  backfill) and keys outside any time layout, within one sweep interval.
  ``ingest --sweep`` lists everything at once instead.

This state only saves work: exactly once is the ledger's job, and losing the backlog or the
sweep cursor costs one sweep, never a file. ``pending_roots`` is the cheap question the CLI
asks before it starts Dagster; ``backlog`` is the read-only view /health and /metrics take
(no writes: the service may run as a read-only role).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from observatory_storage.datasets import get_dataset
from observatory_storage.ingest import ledger, notified
from observatory_storage.ingest.summary import IngestReport
from observatory_storage.landing import Landing, LandingObject, open_landing
from observatory_storage.landing.keys import LANDING_ROOTS
from observatory_storage.settings import Settings


def _roots(datasets: Sequence[str] | None) -> list[str]:
    names = list(datasets) if datasets else list(LANDING_ROOTS)
    for name in names:
        if name not in LANDING_ROOTS:
            get_dataset(name)  # raises, naming the valid datasets
    return names


def _table(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def _has_state(conn: psycopg.Connection, schema: str) -> bool:
    """Whether migration 0008's discovery tables exist (before it: full listings)."""
    name = sql.Identifier(schema, "landing_backlog").as_string(conn)
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


@dataclass
class Pass:
    """What one discovery pass looked at (for logs and the benchmark)."""

    recent: int = 0  # files the recent listings returned
    backlog: int = 0  # backlog rows read
    swept: int = 0  # files the sweep step listed
    full: bool = False  # every key was listed (``--sweep``, or before migration 0008)
    notified: int = 0  # files LANDING_NOTIFICATIONS named that no listing found
    taken: notified.Taken | None = None  # their messages, deleted once the pass committed

    @property
    def notifications_error(self) -> str | None:
        """Why LANDING_NOTIFICATIONS could not be read (the pass listed as without it)."""
        return self.taken.error if self.taken else None


def discover(settings: Settings, conn: psycopg.Connection, landing: Landing,
             roots: Iterable[str], *, sweep: bool = False, write: bool = True,
             report: Pass | None = None) -> list[LandingObject]:
    """The files of ``roots`` that need work, from the three sources above.

    ``sweep``: list every key now (and restart the rolling sweep). ``write`` False: only
    read (no sweep step, backlog untouched), for /health and /metrics.
    """
    schema = settings.db_schema
    report = report or Pass()
    stateful = _has_state(conn, schema)
    if not stateful:
        sweep, write = True, False  # before migration 0008: the full listing of old
    lookback = dt.timedelta(minutes=settings.landing_lookback_minutes)
    # taken before listing: a notified file its folder's listing then lacks is gone
    report.taken = notified.take(settings, landing, list(roots)) if write else None
    candidates: dict[str, LandingObject] = {}  # key -> the newest version listed
    covered: list[tuple[str, str | None, str | None]] = []  # (root, after, through) swept
    listed: set[str] = set()  # folders the recent listings listed whole
    for root in roots:
        # a root's first pass (no sweep yet) lists everything: a landing that already holds
        # files before the first run has them all found, as a later `ingest --sweep` would
        state = _sweep_state(conn, schema, landing, root, settings.landing_sweep_minutes) \
            if write and stateful and not sweep else None
        first = state is _NEVER
        if sweep or first:
            report.full = True
            for obj in landing.list(root):
                candidates[obj.key] = obj
                report.swept += 1
            covered.append((root, None, None))
            if write:
                _record_sweep(conn, schema, landing, root, None, done=True)
            continue
        for obj in landing.list_recent(root, lookback, listed):
            candidates[obj.key] = obj
            report.recent += 1
        if state is not None and settings.landing_sweep_batch and state.due:
            after, through = _sweep_step(conn, schema, landing, root, state.cursor,
                                         settings.landing_sweep_batch, candidates, report)
            covered.append((root, after, through))
    seen = set(candidates)  # found by a listing of this pass (or notified, below)
    backlog: list[LandingObject] = []
    if stateful:
        backlog = _backlog(conn, schema, landing.identity, list(roots))
        report.backlog = len(backlog)
        for obj in backlog:
            candidates.setdefault(obj.key, obj)
    heard = notified.merge(report.taken, candidates, seen,
                           gone=lambda key: _swept_away(key, covered, listed))
    seen |= heard
    report.notified = len(heard)
    known = ledger.lookup(conn, schema, candidates)
    notified.recheck(landing, candidates, heard, known)
    todo = [obj for obj in candidates.values() if ledger.needs_work(known.get(obj.key), obj)]
    if write:
        _keep(conn, schema, landing.identity, todo, backlog, seen, covered, listed)
        todo = [obj for obj in todo
                if obj.key in seen or not _swept_away(obj.key, covered, listed)]
    return todo


_NEVER = object()  # no sweep of this root was ever recorded


@dataclass(frozen=True)
class _SweepState:
    cursor: str | None  # the last key the sweep under way listed; None between sweeps
    due: bool  # a sweep is under way, or the last one ended LANDING_SWEEP_MINUTES ago


def _sweep_state(conn: psycopg.Connection, schema: str, landing: Landing, root: str,
                 interval_minutes: float):
    """The root's rolling sweep (one read per pass): _NEVER when none was ever recorded."""
    row = conn.execute(
        sql.SQL("SELECT cursor, cursor IS NOT NULL OR last_pass_at IS NULL "
                "OR last_pass_at <= now() - make_interval(secs => %s) "
                "FROM {} WHERE landing = %s AND root = %s").format(
            _table(schema, "landing_sweeps")),
        (interval_minutes * 60, landing.identity, root)).fetchone()
    return _NEVER if row is None else _SweepState(row[0], row[1])


def _record_sweep(conn: psycopg.Connection, schema: str, landing: Landing, root: str,
                  cursor: str | None, *, done: bool) -> None:
    conn.execute(
        sql.SQL(
            """INSERT INTO {} AS s (landing, root, cursor, pass_started_at, last_pass_at)
               VALUES (%(landing)s, %(root)s, %(cursor)s, now(),
                       CASE WHEN %(done)s THEN now() END)
               ON CONFLICT (landing, root) DO UPDATE
                   SET cursor = EXCLUDED.cursor,
                       pass_started_at = CASE WHEN s.cursor IS NULL THEN now()
                                              ELSE s.pass_started_at END,
                       last_pass_at = CASE WHEN %(done)s THEN now() ELSE s.last_pass_at END"""
        ).format(_table(schema, "landing_sweeps")),
        {"landing": landing.identity, "root": root, "cursor": cursor, "done": done},
    )


def _sweep_step(conn: psycopg.Connection, schema: str, landing: Landing, root: str,
                after: str | None, batch: int, candidates: dict[str, LandingObject],
                report: Pass) -> tuple[str | None, str | None]:
    """The next ``batch`` keys of the rolling sweep after key ``after``; returns the key
    range it covered, (after, through), ``through`` None when the pass reached the end
    (and starts over)."""
    step = landing.list_after(root, after, batch)
    for obj in step:
        candidates[obj.key] = obj
    report.swept += len(step)
    done = len(step) < batch
    through = None if done else step[-1].key
    _record_sweep(conn, schema, landing, root, through, done=done)
    return after, through


def _backlog(conn: psycopg.Connection, schema: str, landing: str,
             roots: list[str]) -> list[LandingObject]:
    rows = conn.execute(
        sql.SQL("SELECT object_key, dataset, size_bytes, fingerprint, "
                "extract(epoch FROM modified)::float8 FROM {} "
                "WHERE landing = %s AND dataset = ANY(%s)").format(
            _table(schema, "landing_backlog")), (landing, roots)).fetchall()
    return [LandingObject(key, ds, size, fp, modified) for key, ds, size, fp, modified in rows]


def _keep(conn: psycopg.Connection, schema: str, landing: str, todo: list[LandingObject],
          backlog: list[LandingObject], seen: set[str],
          covered: list[tuple[str, str | None, str | None]], listed: set[str]) -> None:
    """The backlog after a pass: every file that still needs work (new or changed rows
    upserted), without those the ledger settled and those a listing of their key range no
    longer found (gone)."""
    table = _table(schema, "landing_backlog")
    held = {obj.key: obj for obj in backlog}
    pending = {obj.key for obj in todo}
    changed = [obj for obj in todo if obj.key in seen and held.get(obj.key) != obj]
    if changed:
        conn.execute(
            sql.SQL(
                """INSERT INTO {} AS b (landing, object_key, dataset, size_bytes, fingerprint,
                                        modified)
                   SELECT %s, k, d, s, f, to_timestamp(m)
                   FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::float8[])
                        AS v(k, d, s, f, m)
                   ON CONFLICT (landing, object_key) DO UPDATE
                       SET dataset = EXCLUDED.dataset, size_bytes = EXCLUDED.size_bytes,
                           fingerprint = EXCLUDED.fingerprint, modified = EXCLUDED.modified"""
            ).format(table),
            (landing, [o.key for o in changed], [o.dataset for o in changed],
             [o.size for o in changed], [o.fingerprint for o in changed],
             [o.modified for o in changed]),
        )
    drop = sorted(key for key in held
                  if key not in pending  # settled by the ledger
                  or (key not in seen and _swept_away(key, covered, listed)))  # gone
    if drop:
        conn.execute(sql.SQL("DELETE FROM {} WHERE landing = %s AND object_key = ANY(%s)").format(
            table), (landing, drop))


def _swept_away(key: str, covered: list[tuple[str, str | None, str | None]],
                listed: set[str] = frozenset()) -> bool:
    """Whether a listing of this pass covered ``key`` (so not finding it there means the
    file is gone): its folder was listed whole, or a sweep listed its key range (a full
    listing is the range (None, None))."""
    if key.rpartition("/")[0] in listed:
        return True
    root = key.partition("/")[0]
    return any(swept_root == root and (after is None or key > after)
               and (through is None or key <= through)
               for swept_root, after, through in covered)


def forget(conn: psycopg.Connection, schema: str, landing: Landing, keys: list[str]) -> None:
    """Drop backlog rows of files that turned out to be gone (a run found them missing)."""
    if keys and _has_state(conn, schema):
        conn.execute(sql.SQL("DELETE FROM {} WHERE landing = %s AND object_key = ANY(%s)").format(
            _table(schema, "landing_backlog")), (landing.identity, keys))


def pending_objects(
    settings: Settings,
    conn: psycopg.Connection,
    *,
    datasets: Sequence[str] | None = None,
    max_files: int | None = None,
    max_bytes: int | None = None,
    landing: Landing | None = None,
    sweep: bool = False,
    report: Pass | None = None,
) -> list[LandingObject]:
    """Files that still need work, oldest first, within the bounds (a discovery pass).

    ``max_bytes`` stops before the file that would exceed it, but a first file larger
    than the bound is still returned alone (it must load some day). With
    LANDING_NOTIFICATIONS the pass commits (then deletes the messages it took); ``report``
    tells what it looked at, and why the queue could not be read.
    """
    landing = landing or open_landing(settings)
    report = report or Pass()
    todo = discover(settings, conn, landing, _roots(datasets), sweep=sweep, report=report)
    notified.acknowledge(conn, report.taken)
    todo.sort(key=lambda obj: (obj.modified, obj.key))
    chosen: list[LandingObject] = []
    total = 0
    for obj in todo:
        if max_files is not None and len(chosen) >= max_files:
            break
        if max_bytes is not None and chosen and total + obj.size > max_bytes:
            break
        chosen.append(obj)
        total += obj.size
    return chosen


def pending_roots(settings: Settings, conn: psycopg.Connection,
                  datasets: Sequence[str] | None, *, sweep: bool = False) -> set[str] | None:
    """The landing roots (datasets, ``otlp``) with a file that still needs work; None when
    ``datasets`` names an unknown one (the run then names the valid ones)."""
    names = [n for n in (datasets or LANDING_ROOTS) if n in LANDING_ROOTS]
    if len(names) != len(datasets or names):
        return None
    report = Pass()
    todo = discover(settings, conn, open_landing(settings), names, sweep=sweep, report=report)
    notified.acknowledge(conn, report.taken)
    return {obj.dataset for obj in todo}


@dataclass(frozen=True)
class Backlog:
    files: int
    oldest_modified: float | None  # epoch seconds of the oldest pending file
    # when the landing's least recently finished sweep ended (epoch seconds): every file
    # older than that was listed at least once since; None before a sweep of every root
    swept_through: float | None = None


def backlog(settings: Settings, conn: psycopg.Connection, landing: Landing) -> Backlog:
    """Pending files as /health and /metrics count them: read only, at the cost of the
    recent listing and the backlog rows (never a full listing)."""
    # before migration 0008, discover itself falls back to the full listing
    todo = discover(settings, conn, landing, LANDING_ROOTS, write=False)
    swept = _swept_through(conn, settings.db_schema, landing) \
        if _has_state(conn, settings.db_schema) else None
    return Backlog(len(todo), min((o.modified for o in todo), default=None), swept)


def _swept_through(conn: psycopg.Connection, schema: str, landing: Landing) -> float | None:
    row = conn.execute(
        sql.SQL("SELECT count(*), count(last_pass_at), "
                "extract(epoch FROM min(last_pass_at))::float8 FROM {} "
                "WHERE landing = %s AND root = ANY(%s)").format(_table(schema, "landing_sweeps")),
        (landing.identity, list(LANDING_ROOTS))).fetchone()
    roots, finished, oldest = row
    return oldest if roots == finished == len(LANDING_ROOTS) else None


def idle_report(settings: Settings) -> IngestReport:
    """The report of a pass with nothing to load: only the files in no dataset folder."""
    return IngestReport(misplaced=[obj.key for obj in open_landing(settings).list_outside()])
