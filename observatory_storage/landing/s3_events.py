"""S3 event notification messages, as an SQS queue receives them: which objects they say
were created.

Accepted bodies: S3's own message (``{"Records": [...]}``), the same wrapped by SNS
(``{"Type": "Notification", "Message": "<json>"}``, a topic fanning out to the queue) and
S3's ``s3:TestEvent`` (sent once when the notification is configured: no objects).
Only ``ObjectCreated:*`` records (Put, Post, Copy, CompleteMultipartUpload) name objects;
``ObjectRemoved:*`` and every other event are ignored: a gone file leaves the backlog when
a listing no longer finds it or a run finds it missing. A body that is none of these raises
:class:`MalformedEvent` (the caller logs and drops it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

CREATED = "ObjectCreated:"


class MalformedEvent(ValueError):
    """A message that is not an S3 event notification (nor one wrapped by SNS)."""


@dataclass(frozen=True)
class Created:
    """One ``ObjectCreated`` record: the object as S3 describes it."""

    bucket: str
    key: str  # the full key in the bucket, URL-decoded
    size: int
    etag: str  # without quotes, as a listing's ETag once its quotes are stripped
    time: dt.datetime  # eventTime (UTC)


def created(body: str) -> list[Created]:
    """The objects a message body says were created (none for a test or a removal)."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification":
            message = json.loads(message["Message"])  # SNS: the S3 message as a string
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedEvent(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise MalformedEvent("not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("no Records list")
    return [_record(r) for r in records
            if isinstance(r, dict) and str(r.get("eventName", "")).startswith(CREATED)]


def _record(record: dict) -> Created:
    try:
        s3 = record["s3"]
        obj = s3["object"]
        when = dt.datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))
        return Created(bucket=str(s3["bucket"]["name"]), key=unquote_plus(obj["key"]),
                       size=int(obj["size"]), etag=str(obj["eTag"]).strip('"'),
                       time=when if when.tzinfo else when.replace(tzinfo=dt.UTC))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedEvent(f"unreadable ObjectCreated record ({type(exc).__name__}: {exc})") from None
