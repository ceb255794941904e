"""LANDING_NOTIFICATIONS against moto's S3 and SQS in server mode (real HTTP, nothing
patched): the bucket's own ObjectCreated events find a late file by the next pass, exactly
once; bad messages never break a pass; a queue that cannot be read is reported while
listing goes on; a notified object is the very object a listing shows."""

from __future__ import annotations

import datetime as dt
import json
import time

import dagster as dg
import psycopg
import pytest
from botocore.exceptions import ClientError

from observatory_storage.db.connection import connect, make_pool
from observatory_storage.defs.sensors import evaluate
from observatory_storage.ingest.discovery import Pass, discover, pending_objects
from observatory_storage.ingest.loader import load_objects
from observatory_storage.ingest.notified import take
from observatory_storage.landing import open_landing
from observatory_storage.landing.notifications import open_notifications
from observatory_storage.service.backlog import LandingBacklog
from observatory_storage.service.health import health_document
from observatory_storage.settings import SettingsError, load_settings
from tests.conftest import make_settings
from tests.ingest.helpers import count, ledger, put, table
from tests.process_utils import free_port

NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


def _key(hours_ago: float, name: str) -> str:
    return f"traces/{NOW - dt.timedelta(hours=hours_ago):%Y/%m/%d/%H}/{name}"


def _settings(database_url, landing_url, queue, endpoint, **overrides):
    return make_settings(database_url, landing_url, s3_endpoint_url=endpoint,
                         landing_notifications=queue, landing_lookback_minutes=30,
                         landing_sweep_minutes=60, **overrides)


def _ingest(settings, report: Pass | None = None) -> int:
    with connect(settings) as conn:
        todo = pending_objects(settings, conn, datasets=["traces"], report=report)
        conn.commit()
    return load_objects(settings, todo).count("loaded") if todo else 0


def _queued(sqs_client, queue: str) -> int:
    """Messages in the queue, visible or received and not deleted."""
    url = sqs_client.get_queue_url(QueueName=queue.removeprefix("sqs://"))["QueueUrl"]
    found = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in found.values())


def _history(landing, hours: int = 4) -> None:
    for h in range(hours):
        put(landing, _key(h, f"batch-{h}.parquet"), table("traces", 3, seed=h))


def _event(s3_client, landing, key: str) -> dict:
    """The event S3 sends for the object now at ``key``, built from its HEAD."""
    head = s3_client.head_object(Bucket=landing.bucket, Key=f"{landing.prefix}/{key}")
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "eventTime": head["LastModified"].isoformat(),
        "s3": {"bucket": {"name": landing.bucket},
               "object": {"key": f"{landing.prefix}/{key}".replace("/", "%2F"),
                          "size": head["ContentLength"], "eTag": head["ETag"].strip('"')}}}]}


@pytest.fixture
def notified(database_url, s3_notified_landing, s3_endpoint):
    landing_url, queue = s3_notified_landing
    settings = _settings(database_url, landing_url, queue, s3_endpoint)
    landing = open_landing(settings)
    _history(landing)
    assert _ingest(settings) == 4  # the first pass lists everything (and drains the queue)
    return settings, landing, queue


def test_a_late_key_in_an_old_folder_loads_at_the_next_pass_once(notified, sqs_client, db):
    settings, landing, queue = notified
    assert _queued(sqs_client, queue) == 0
    late = put(landing, _key(3, "late.parquet"), table("traces", 5, seed=99))
    report = Pass()
    assert _ingest(settings, report) == 1  # neither the recent walk nor a sweep saw it
    assert report.notified == 1 and report.swept == 0 and report.notifications_error is None
    assert ledger(db)[late]["status"] == "loaded" and count(db, "traces") == 4 * 3 + 5
    assert _queued(sqs_client, queue) == 0  # deleted once the pass had committed
    assert _ingest(settings) == 0 and count(db, "traces") == 17


def test_a_pass_killed_before_its_commit_leaves_the_messages_for_the_next(
        notified, sqs_client, database_url, db):
    settings, landing, queue = notified
    url = sqs_client.get_queue_url(QueueName=queue.removeprefix("sqs://"))["QueueUrl"]
    sqs_client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    late = put(landing, _key(3, "late.parquet"), table("traces", 2, seed=4))
    conn = psycopg.connect(database_url)  # the daemon died mid-tick: no commit, no delete
    assert [o.key for o in discover(settings, conn, landing, ["traces"])] == [late]
    conn.close()
    assert _queued(sqs_client, queue) == 1
    assert db.execute("SELECT count(*) FROM landing_backlog WHERE object_key = %s",
                      (late,)).fetchone()[0] == 0
    time.sleep(1.2)  # the message is visible again
    assert _ingest(settings) == 1 and _queued(sqs_client, queue) == 0


def test_bad_and_odd_messages_never_break_a_pass(notified, sqs_client, s3_client, db):
    settings, landing, queue = notified
    url = sqs_client.get_queue_url(QueueName=queue.removeprefix("sqs://"))["QueueUrl"]
    gone = put(landing, _key(3, "gone.parquet"), table("traces", 2, seed=1))
    landing.delete(gone)  # notified, then deleted before the pass
    put(landing, _key(3, "writing.parquet.tmp"), b"half")  # a name a listing never shows
    wrapped = put(landing, _key(2, "via-sns.parquet"), table("traces", 2, seed=2))
    s3_event = _event(s3_client, landing, wrapped)  # what S3 publishes to an SNS topic
    for body in ("not json", json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
                 json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent",
                             "Bucket": landing.bucket}),
                 json.dumps({"Type": "Notification", "Message": json.dumps(s3_event)})):
        sqs_client.send_message(QueueUrl=url, MessageBody=body)
    report = Pass()
    assert _ingest(settings, report) == 1  # via-sns, by its own and its SNS-wrapped event
    assert report.notifications_error is None and report.taken.messages == 3 + 4
    files = ledger(db)
    assert files[wrapped]["status"] == "loaded" and gone not in files
    assert _queued(sqs_client, queue) == 0 and count(db, "traces") == 4 * 3 + 2


def test_a_missing_queue_is_reported_and_listing_goes_on(
        database_url, s3_landing_url, s3_endpoint, db):
    settings = _settings(database_url, s3_landing_url, "sqs://no-such-queue", s3_endpoint)
    landing = open_landing(settings)
    _history(landing, 1)
    report = Pass()
    assert _ingest(settings, report) == 1  # the first pass's full listing still loads
    error = report.notifications_error
    assert "LANDING_NOTIFICATIONS=sqs://no-such-queue" in error and "does not exist" in error
    put(landing, _key(0, "fresh.parquet"), table("traces", 2, seed=7))
    with dg.DagsterInstance.ephemeral() as instance:
        tick = evaluate(dg.build_sensor_context(instance=instance), settings)
    assert [len(r.run_config["ops"]["ingest_files"]["config"]["keys"]) for r in tick] == [1]
    assert _ingest(settings) == 1  # the recent listing found the new file
    with dg.DagsterInstance.ephemeral() as instance:
        idle = evaluate(dg.build_sensor_context(instance=instance), settings)
    assert isinstance(idle, dg.SkipReason) and "does not exist" in idle.skip_message
    with make_pool(settings, name="health-test") as pool:
        status, doc = health_document(pool, settings,
                                      LandingBacklog(settings, pool, probe_timeout=3))
    assert status == 200 and doc["status"] == "degraded"
    assert doc["ingest"]["notifications"]["queue"] == "no-such-queue"
    assert doc["ingest"]["notifications"]["waiting"] is None
    assert any("does not exist" in p for p in doc["problems"])
    assert "testing" not in json.dumps(doc)  # no credential in what /health says


def test_health_counts_waiting_messages_without_taking_them(notified, sqs_client):
    settings, landing, queue = notified
    put(landing, _key(3, "late.parquet"), table("traces", 2, seed=5))
    with make_pool(settings, name="health-test") as pool:
        _, doc = health_document(pool, settings, LandingBacklog(settings, pool, probe_timeout=3))
    assert doc["ingest"]["notifications"] == {"queue": queue.removeprefix("sqs://"),
                                              "waiting": 1}
    assert doc["status"] == "healthy" and _queued(sqs_client, queue) == 1


def test_a_notified_object_is_the_listed_object(notified, db):
    settings, landing, _ = notified
    late = put(landing, _key(3, "late.parquet"), table("traces", 2, seed=3))
    with connect(settings, autocommit=True) as conn:
        taken = pending_objects(settings, conn, datasets=["traces"])
        listed = {o.key: o for o in discover(settings, conn, landing, ["traces"], sweep=True)}
    assert [(o.key, o.fingerprint, o.size) for o in taken] == [
        (late, listed[late].fingerprint, listed[late].size)]
    load_objects(settings, taken)
    with connect(settings, autocommit=True) as conn:  # a later sweep: no conflict, nothing
        assert discover(settings, conn, landing, ["traces"], sweep=True) == []
    row = ledger(db)[late]
    assert row["status"] == "loaded" and row["conflict_fingerprint"] is None


def test_notifications_need_an_s3_landing(tmp_path):
    with pytest.raises(SettingsError, match="LANDING_NOTIFICATIONS.*s3:// LANDING_URL"):
        load_settings(landing_url=str(tmp_path), landing_notifications="sqs://q")
    with pytest.raises(SettingsError, match="landing_notifications|LANDING_NOTIFICATIONS"):
        load_settings(landing_url="s3://b/p", landing_notifications="https://q")


def test_an_unreachable_endpoint_is_named_without_credentials(s3_landing_url, s3_endpoint,
                                                              aws_env):
    settings = load_settings(landing_url=s3_landing_url, s3_endpoint_url=s3_endpoint,
                             landing_notifications="sqs://events",
                             sqs_endpoint_url=f"http://127.0.0.1:{free_port()}")
    taken = take(settings, open_landing(settings), ["traces"])
    assert taken.objects == [] and "LANDING_NOTIFICATIONS=sqs://events" in taken.error
    assert "unreachable" in taken.error and aws_env["AWS_SECRET_ACCESS_KEY"] not in taken.error


def test_a_denied_queue_names_the_permissions_not_the_principal(s3_landing_url, aws_env):
    """moto does not enforce IAM in this server: the error SQS answers is built here."""
    settings = load_settings(landing_url=s3_landing_url, landing_notifications="sqs://events")
    queue = open_notifications(settings, open_landing(settings))
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "User: arn:aws:iam::"
                                    "123456789012:user/ci is not authorized"}}, "ReceiveMessage")
    message = str(queue._error("receive messages", denied))
    assert message.startswith("LANDING_NOTIFICATIONS=sqs://events: cannot receive messages")
    assert "sqs:ReceiveMessage" in message and "arn:aws" not in message


def test_a_late_notice_of_an_older_version_is_no_conflict(notified, sqs_client, s3_client, db):
    settings, landing, queue = notified
    key = _key(3, "rewritten.parquet")
    put(landing, key, table("traces", 2, seed=8))
    first = _event(s3_client, landing, key)
    time.sleep(0.05)  # event times are in milliseconds
    put(landing, key, table("traces", 3, seed=9))  # rewritten before any pass
    assert _ingest(settings) == 1  # of the two notices, the newer version
    assert count(db, "traces") == 4 * 3 + 3 and _ingest(settings) == 0  # backlog row settled
    url = sqs_client.get_queue_url(QueueName=queue.removeprefix("sqs://"))["QueueUrl"]
    sqs_client.send_message(QueueUrl=url, MessageBody=json.dumps(first))  # delayed, as S3 may
    with connect(settings, autocommit=True) as conn:  # looked up (HEAD): the loaded version
        assert pending_objects(settings, conn, datasets=["traces"]) == []
    assert db.execute("SELECT count(*) FROM landing_backlog").fetchone()[0] == 0
    assert _queued(sqs_client, queue) == 0 and _ingest(settings) == 0
    row = ledger(db)[key]
    assert row["conflict_fingerprint"] is None and count(db, "traces") == 15


def test_a_pass_over_some_roots_leaves_other_roots_messages(notified, sqs_client, db):
    settings, landing, queue = notified
    other = put(landing, f"logs/{NOW:%Y/%m/%d/%H}/late.parquet", table("logs", 2, seed=6))
    report = Pass()
    assert _ingest(settings, report) == 0  # a traces-only pass (ingest --dataset traces)
    assert report.taken.messages == 1 and _queued(sqs_client, queue) == 1  # not deleted
    assert other not in ledger(db)
