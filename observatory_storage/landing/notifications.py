"""LANDING_NOTIFICATIONS: the SQS queue that receives an S3 landing's event notifications.

A discovery pass receives what the queue holds (:meth:`Notifications.receive`:
ReceiveMessage, 10 messages a request, no long polling, at most
:data:`MAX_MESSAGES_PER_PASS`), turns each ``ObjectCreated`` record into the
:class:`LandingObject` a listing would show (the landing's own key rules and fingerprint:
``S3Landing.notified``) and, once the pass's backlog rows are committed, deletes the
messages (:meth:`Notifications.ack`: DeleteMessageBatch). A pass that dies
before that leaves them on the queue: they come back after the queue's visibility timeout
(at least once; the ledger keeps each file loaded once, the rolling sweep stays the safety
net for a lost message). Malformed messages, test events and objects a listing would not
show are logged without their content and acknowledged with the rest: they never stop a
pass. /health only counts the waiting messages (GetQueueAttributes), never receives.

Requests per pass with N notified files: ceil(N / 10) + 1 ReceiveMessage (the last finds
the queue empty) and ceil(N / 10) DeleteMessageBatch; GetQueueUrl once per process.
The client uses the landing's region and credentials, and SQS_ENDPOINT_URL, else
S3_ENDPOINT_URL (moto, LocalStack), else AWS's endpoint of the region.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from observatory_storage.landing.base import Landing, LandingError, LandingObject
from observatory_storage.landing.s3_events import MalformedEvent, created
from observatory_storage.settings import Settings

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_PASS = 1000  # the rest waits for the next pass
_BATCH = 10  # SQS's most messages per ReceiveMessage / DeleteMessageBatch
_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_DENIED = {"AccessDenied", "AccessDeniedException", "InvalidClientTokenId",
           "UnrecognizedClientException", "SignatureDoesNotMatch", "ExpiredToken",
           "KMS.AccessDeniedException"}
_queue_urls: dict[tuple, str] = {}  # (endpoint, region, owner, name) -> queue URL


class NotificationError(LandingError):
    """The queue cannot be read: its message names LANDING_NOTIFICATIONS and why (never a
    credential). Discovery goes on by listing and reports it."""


@dataclass
class Received:
    """What one pass took from the queue."""

    objects: list[LandingObject] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)  # to delete once the pass committed
    held: int = 0  # messages left on the queue for a pass over their roots
    messages: int = 0
    malformed: int = 0
    ignored: int = 0  # records of keys a listing would not show (other prefix, hidden...)


class Notifications:
    def __init__(self, spec: str, landing: Landing, settings: Settings, client=None):
        owner, _, name = spec.removeprefix("sqs://").rpartition("/")
        self.spec, self.name, self.owner = spec, name, owner or None
        self.landing, self.settings = landing, settings
        region = settings.s3_region or os.environ.get("AWS_REGION") or os.environ.get(
            "AWS_DEFAULT_REGION") or "us-east-1"
        self._endpoint = settings.sqs_endpoint_url or settings.s3_endpoint_url
        self._region = region
        self.client = client or boto3.client(
            "sqs", endpoint_url=self._endpoint, region_name=region,
            config=Config(connect_timeout=5, read_timeout=15,
                          retries={"max_attempts": 3, "mode": "standard"}))

    # --- errors ----------------------------------------------------------------------
    def _error(self, doing: str, exc: Exception) -> NotificationError:
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                why = "the queue does not exist (in this region and account)"
            elif code in _DENIED:
                why = (f"{code}: these credentials may not use it (sqs:GetQueueUrl, "
                       "sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes)")
            else:
                why = code or "error"
        elif isinstance(exc, EndpointConnectionError):
            why = "the SQS endpoint is unreachable (SQS_ENDPOINT_URL, S3_ENDPOINT_URL)"
        else:
            why = type(exc).__name__
        return NotificationError(f"LANDING_NOTIFICATIONS={self.spec}: cannot {doing}: {why}; "
                                 "discovery goes on by listing")

    def _url(self) -> str:
        cache = (self._endpoint, self._region, self.owner, self.name)
        if cache not in _queue_urls:
            kwargs = {"QueueName": self.name}
            if self.owner:
                kwargs["QueueOwnerAWSAccountId"] = self.owner
            try:
                _queue_urls[cache] = self.client.get_queue_url(**kwargs)["QueueUrl"]
            except (ClientError, BotoCoreError) as exc:
                raise self._error("find the queue", exc) from exc
        return _queue_urls[cache]

    # --- the queue -------------------------------------------------------------------
    def receive(self, roots, limit: int = MAX_MESSAGES_PER_PASS) -> Received:
        """Messages until the queue answers empty or ``limit``: the created objects of
        ``roots`` (records of other roots are held back: not deleted, they return after
        the visibility timeout to a pass that covers them)."""
        url, got = self._url(), Received()
        while got.messages < limit:
            try:
                answer = self.client.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=min(_BATCH, limit - got.messages),
                    WaitTimeSeconds=0)
            except (ClientError, BotoCoreError) as exc:
                raise self._error("receive messages", exc) from exc
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                got.messages += 1
                self._take(message, roots, got)
        return got

    def _take(self, message: dict, roots, got: Received) -> None:
        receipt = message["ReceiptHandle"]
        try:
            records = created(message.get("Body", ""))
        except MalformedEvent as exc:
            got.malformed += 1
            log.warning("%s: dropping message %s: %s", self.spec, message.get("MessageId"), exc)
            got.receipts.append(receipt)
            return
        found = [self.landing.notified(r.bucket, r.key, r.size, r.etag, r.time)
                 for r in records]
        got.ignored += sum(obj is None for obj in found)
        found = [obj for obj in found if obj is not None]
        if any(obj.dataset not in roots for obj in found):
            got.held += 1
            return
        got.objects.extend(found)
        got.receipts.append(receipt)

    def ack(self, receipts: list[str]) -> None:
        """Delete received messages (their files are in the committed backlog or settled)."""
        url = self._url()
        for start in range(0, len(receipts), _BATCH):
            entries = [{"Id": str(i), "ReceiptHandle": r}
                       for i, r in enumerate(receipts[start:start + _BATCH])]
            try:
                answer = self.client.delete_message_batch(QueueUrl=url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise self._error("delete received messages", exc) from exc
            if answer.get("Failed"):  # e.g. an expired receipt: the message comes back
                log.warning("%s: %d message(s) not deleted (they will be received again)",
                            self.spec, len(answer["Failed"]))

    def waiting(self) -> int:
        """Messages waiting in the queue (approximate, as SQS counts them): read only."""
        try:
            answer = self.client.get_queue_attributes(
                QueueUrl=self._url(), AttributeNames=["ApproximateNumberOfMessages"])
        except (ClientError, BotoCoreError) as exc:
            raise self._error("read the queue's attributes", exc) from exc
        return int(answer.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))


def open_notifications(settings: Settings, landing: Landing) -> Notifications | None:
    """The landing's notification queue, or None when LANDING_NOTIFICATIONS is empty."""
    if not settings.landing_notifications:
        return None
    if not hasattr(landing, "notified"):  # settings refuse it; a --landing override may not
        raise NotificationError(f"LANDING_NOTIFICATIONS={settings.landing_notifications}: "
                                f"needs an s3:// landing, not {landing.url}")
    return Notifications(settings.landing_notifications, landing, settings)
