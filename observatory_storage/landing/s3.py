"""A landing bucket on any S3-compatible store (AWS S3, MinIO, Ceph, moto...).

Endpoint and region come from Settings (``S3_ENDPOINT_URL``, ``S3_REGION`` or
``AWS_REGION``); credentials from the standard AWS chain (``AWS_ACCESS_KEY_ID``...,
profiles, instance roles). A PUT is atomic, so writers need no rename. The fingerprint
is ETag plus size; :meth:`S3Landing.open` downloads with ``If-Match`` so the bytes read
are exactly the version that was listed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from observatory_storage.landing.base import (
    Landing,
    LandingError,
    LandingMissing,
    LandingObject,
    ObjectGone,
    is_dataset_folder,
)
from observatory_storage.landing.keys import (
    QUARANTINE_PREFIX,
    dataset_of,
    is_ignored,
    unsafe_reason,
)
from observatory_storage.settings import Settings

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY_BYTES = 32 << 20  # downloads larger than this spill to a temp file
_GONE_CODES = {"NoSuchKey", "404", "NotFound", "PreconditionFailed", "412"}
_MISSING_CODES = {"NoSuchBucket", "AccessDenied", "403", "AllAccessDisabled", "InvalidBucketName"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Landing(Landing):
    def __init__(self, url: str, settings: Settings, client=None):
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise LandingError(f"not an s3://bucket/prefix URL: {url!r}")
        self.url = url
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        region = settings.s3_region or os.environ.get("AWS_REGION") or os.environ.get(
            "AWS_DEFAULT_REGION"
        )
        self.client = client or boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=region or "us-east-1",
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    # --- helpers ----------------------------------------------------------------------
    def _full(self, key: str) -> str:
        reason = unsafe_reason(key)
        if reason:
            raise LandingError(f"refusing landing key {key!r}: {reason}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    @staticmethod
    def _object(key: str, size: int, etag: str, modified, dataset: str | None) -> LandingObject:
        return LandingObject(
            key=key,
            dataset=dataset or "",
            size=int(size),
            fingerprint=f"{etag.strip(chr(34))}-{size}",
            modified=modified.timestamp(),
        )

    def _walk(self, sub: str) -> Iterator[tuple[str, dict]]:
        prefix = self._full(sub) + "/" if sub else (f"{self.prefix}/" if self.prefix else "")
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:  # S3 returns keys in UTF-8 binary order
                for item in page.get("Contents", []):
                    key = self._relative(item["Key"])
                    if key.endswith("/"):  # "folder" placeholder objects
                        continue
                    reason = unsafe_reason(key)
                    if reason:
                        log.warning("landing: skipping unsafe key %r (%s)", key, reason)
                        continue
                    yield key, item
        except (ClientError, BotoCoreError) as exc:
            raise self._listing_error(exc) from exc

    def _listing_error(self, exc: Exception) -> LandingError:
        """A bucket that does not exist or may not be listed is a configuration error."""
        if isinstance(exc, ClientError) and _code(exc) in _MISSING_CODES:
            return LandingMissing(f"cannot list {self.url}: {_code(exc)}: the bucket does not "
                                  "exist or these credentials may not list it (LANDING_URL, "
                                  "S3_ENDPOINT_URL, AWS credentials)")
        return LandingError(f"cannot list {self.url}: {exc}")

    # --- Landing ----------------------------------------------------------------------
    def list(self, dataset: str | None = None) -> Iterator[LandingObject]:
        for key, item in self._walk(dataset or ""):
            if is_ignored(key):
                continue
            ds = dataset_of(key)
            if ds is None:  # counted by list_outside()
                continue
            yield self._object(key, item["Size"], item["ETag"], item["LastModified"], ds)

    @property
    def identity(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _visible(self, key: str, item: dict) -> LandingObject | None:
        if key.endswith("/") or is_ignored(key) or unsafe_reason(key) is not None:
            return None
        ds = dataset_of(key)
        if ds is None:
            return None
        return self._object(key, item["Size"], item["ETag"], item["LastModified"], ds)

    def notified(self, bucket: str, full_key: str, size: int, etag: str,
                 modified) -> LandingObject | None:
        """The object a bucket notification names, exactly as a listing would show it (same
        key, dataset and fingerprint), or None when a listing would not show it: another
        bucket or prefix, a hidden, ignored or unsafe key, a key in no landing root."""
        if bucket != self.bucket:
            return None
        if self.prefix and not full_key.startswith(self.prefix + "/"):
            return None
        key = self._relative(full_key)
        return self._visible(key, {"Size": size, "ETag": etag, "LastModified": modified}) \
            if key else None

    def children(self, prefix: str) -> tuple[list[LandingObject], list[str]]:
        """One folder: one LIST request (with a delimiter) per 1,000 entries."""
        full = (self._full(prefix) + "/") if prefix else (f"{self.prefix}/" if self.prefix else "")
        files, folders = [], []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full, Delimiter="/")
            for page in pages:
                for item in page.get("Contents", []):
                    found = self._visible(self._relative(item["Key"]), item)
                    if found is not None:
                        files.append(found)
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(full):].rstrip("/")
                    if name and not name.startswith((".", "_")):
                        folders.append(name)
        except (ClientError, BotoCoreError) as exc:
            raise self._listing_error(exc) from exc
        return files, folders

    def list_after(self, root: str, after: str | None, limit: int) -> list[LandingObject]:
        """``StartAfter`` the cursor: one LIST request per 1,000 keys, however many keys
        sort before it."""
        out: list[LandingObject] = []
        kwargs = {"Bucket": self.bucket, "Prefix": self._full(root) + "/"}
        if after:
            kwargs["StartAfter"] = self._full(after)
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                **kwargs, PaginationConfig={"PageSize": min(1000, max(limit, 1))})
            for page in pages:
                for item in page.get("Contents", []):
                    found = self._visible(self._relative(item["Key"]), item)
                    if found is not None:
                        out.append(found)
                        if len(out) >= limit:
                            return out
        except (ClientError, BotoCoreError) as exc:
            raise self._listing_error(exc) from exc
        return out

    def list_outside(self) -> Iterator[LandingObject]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        folders: list[str] = []
        try:  # one level, with a delimiter: the dataset folders are not listed
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = self._relative(item["Key"])
                    if key and not is_ignored(key) and unsafe_reason(key) is None:
                        yield self._object(key, item["Size"], item["ETag"],
                                           item["LastModified"], None)
                for common in page.get("CommonPrefixes", []):
                    name = self._relative(common["Prefix"]).rstrip("/")
                    if name and not name.startswith((".", "_")) and not is_dataset_folder(name):
                        folders.append(name)
        except (ClientError, BotoCoreError) as exc:
            raise self._listing_error(exc) from exc
        for name in folders:
            for key, item in self._walk(name):
                if not is_ignored(key) and dataset_of(key) is None:
                    yield self._object(key, item["Size"], item["ETag"], item["LastModified"],
                                       None)

    def list_quarantined(self) -> Iterator[LandingObject]:
        for key, item in self._walk(QUARANTINE_PREFIX):
            ds = dataset_of(self.original_key(key))
            yield self._object(key, item["Size"], item["ETag"], item["LastModified"], ds)

    def stat(self, key: str) -> LandingObject:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            if _code(exc) in _GONE_CODES:
                raise ObjectGone(f"{key} is gone") from None
            raise LandingError(f"cannot stat {key}: {exc}") from exc
        return self._object(
            key, head["ContentLength"], head["ETag"], head["LastModified"], dataset_of(key)
        )

    def open(self, obj: LandingObject) -> BinaryIO:
        etag = obj.fingerprint.rsplit("-", 1)[0]
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self._full(obj.key), IfMatch=f'"{etag}"'
            )
        except ClientError as exc:
            if _code(exc) in _GONE_CODES:
                raise ObjectGone(f"{obj.key} is gone or changed since it was listed") from None
            raise LandingError(f"cannot read {obj.key}: {exc}") from exc
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
        try:
            with response["Body"] as body:
                shutil.copyfileobj(body, spool, 1 << 20)
            if spool.tell() != obj.size:
                raise ObjectGone(f"{obj.key} changed while it was read")
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    def put(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise LandingError(f"cannot write {key}: {exc}") from exc

    def move(self, key: str, new_key: str) -> None:
        source = {"Bucket": self.bucket, "Key": self._full(key)}
        try:  # managed copy: multipart for objects over 5 GB
            self.client.copy(source, self.bucket, self._full(new_key))
        except ClientError as exc:
            if _code(exc) in _GONE_CODES:
                raise ObjectGone(f"{key} is gone") from None
            raise LandingError(f"cannot move {key} to {new_key}: {exc}") from exc
        self.delete(key)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            if _code(exc) not in _GONE_CODES:
                raise LandingError(f"cannot delete {key}: {exc}") from exc
