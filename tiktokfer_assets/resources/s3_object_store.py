"""The object store on S3 (AWS or any S3-compatible server), through dagster-aws's ``S3Resource``.

Keys are the same ``<kind>/<challenge>/<video_id>/...`` keys as on the local
filesystem, under an optional prefix in one bucket. Large files go up in parts
(boto3's managed transfer: multipart above ``multipart_threshold_mb``, parts sent in
parallel) and come down streamed to a file, so a video never has to fit in memory.

The bucket is verified (or created) when a run starts (``setup_for_execution``);
every failure surfaces as :class:`ObjectStoreError` naming S3, the endpoint and the
bucket, never the secret key.
"""

from __future__ import annotations

from pathlib import Path

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from dagster import InitResourceContext
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from tiktokfer_assets.resources.fields import config_value
from tiktokfer_assets.resources.object_store import ObjectStore, ObjectStoreError, _check_key

MB = 1 << 20
_CREDENTIAL_CODES = {"403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken",
                     "ExpiredToken", "AuthorizationHeaderMalformed"}
_MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    # boto3's managed transfers wrap the ClientError (S3UploadFailedError): look inside
    cause = exc.__cause__ or exc.__context__
    return _error_code(cause) if cause is not None else ""


class S3ObjectStore(ObjectStore):
    """Objects in ``s3://bucket/prefix/<key>``; connection settings and credentials in ``s3`` (an ``S3Resource``).

    ``create_bucket``: create the bucket at start when it does not exist (else a
    missing bucket is an error).
    """

    s3: S3Resource
    bucket: str
    prefix: str = ""
    create_bucket: bool = True
    multipart_threshold_mb: int = 64
    multipart_chunksize_mb: int = 16
    max_concurrency: int = 8
    delete_batch: int = 1000  # keys per DeleteObjects request (S3's maximum)
    _client: object = PrivateAttr(default=None)

    # -- connection -------------------------------------------------------------------

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._client = None
        self._connect()
        if context.log is not None:
            context.log.info(f"object store: {self.location()}")

    @property
    def endpoint(self) -> str:
        endpoint = config_value(self.s3.endpoint_url)
        return endpoint or f"AWS S3 region {config_value(self.s3.region_name) or '(default)'}"

    def _connect(self):
        """The S3 client, made on first use; the bucket is verified (or created) before it is handed out."""
        if self._client is None:
            # resolves EnvVar fields when used outside a run; a no-op copy inside one
            client = self.s3.process_config_and_initialize().get_client()
            self._ensure_bucket(client)
            self._client = client
        return self._client

    def _ensure_bucket(self, client) -> None:
        try:
            client.head_bucket(Bucket=self.bucket)
            return
        except (BotoCoreError, ClientError) as exc:
            if _error_code(exc) not in _MISSING_CODES:
                raise self._error("cannot open the bucket", exc) from exc
            if not self.create_bucket:
                raise ObjectStoreError(
                    f"S3 at {self.endpoint}: bucket {self.bucket!r} does not exist "
                    "(create it, or let tiktokfer create it with create_bucket=True)"
                ) from None
        try:
            client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise self._error("cannot create the bucket", exc) from exc

    def _error(self, what: str, exc: BaseException, key: str | None = None) -> ObjectStoreError:
        """A clear message naming S3, the endpoint, the bucket (and key); never the secret."""
        code = _error_code(exc)
        if code in _CREDENTIAL_CODES:
            reason = (f"access denied ({code}): the credentials were refused or lack permission; "
                      "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        elif isinstance(exc, (BotoConnectionError, HTTPClientError)):
            reason = f"the S3 server did not answer ({type(exc).__name__}: {exc})"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        where = f"s3://{self.bucket}/{self._full(key)}" if key is not None else f"bucket {self.bucket!r}"
        return ObjectStoreError(f"S3 at {self.endpoint}: {what} ({where}): {reason}")

    def _full(self, key: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def _transfer_config(self) -> TransferConfig:
        return TransferConfig(
            multipart_threshold=self.multipart_threshold_mb * MB,
            multipart_chunksize=self.multipart_chunksize_mb * MB,
            max_concurrency=self.max_concurrency,
        )

    def _call(self, what: str, key: str | None, fn, *args, **kwargs):
        client = self._connect()
        try:
            return fn(client, *args, **kwargs)
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            if key is not None and _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                raise ObjectStoreError(f"object {key!r} not found in {self.location()}") from None
            raise self._error(what, exc, key) from exc

    # -- the ObjectStore interface ---------------------------------------------------------

    def put_file(self, key: str, path: str | Path) -> None:
        full = self._full(_check_key(key))
        self._call(
            "upload failed", key, lambda c: c.upload_file(str(path), self.bucket, full, Config=self._transfer_config())
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        full = self._full(_check_key(key))
        self._call("upload failed", key, lambda c: c.put_object(Bucket=self.bucket, Key=full, Body=data))

    def get_bytes(self, key: str) -> bytes:
        full = self._full(_check_key(key))
        return self._call("download failed", key, lambda c: c.get_object(Bucket=self.bucket, Key=full)["Body"].read())

    def download(self, key: str, path: str | Path) -> Path:
        full = self._full(_check_key(key))
        self._call(
            "download failed", key,
            lambda c: c.download_file(self.bucket, full, str(path), Config=self._transfer_config()),
        )
        return Path(path)

    def exists(self, key: str) -> bool:
        full = self._full(_check_key(key))
        client = self._connect()
        try:
            client.head_object(Bucket=self.bucket, Key=full)
            return True
        except (BotoCoreError, ClientError) as exc:
            if _error_code(exc) in _MISSING_CODES:
                return False
            raise self._error("cannot check the object", exc, key) from exc

    def delete(self, key: str) -> None:
        full = self._full(_check_key(key))
        self._call("delete failed", None, lambda c: c.delete_object(Bucket=self.bucket, Key=full))

    def list_keys(self, prefix: str) -> list[str]:
        full = self._full(prefix) if prefix else self._full("")
        strip = len(self._full(""))

        def listing(client) -> list[str]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            return sorted(obj["Key"][strip:] for page in pages for obj in page.get("Contents", []))

        return self._call("listing failed", None, listing)

    def delete_prefix(self, prefix: str, keep: set[str] = frozenset()) -> int:
        """Delete every object under ``prefix`` except ``keep``, ``delete_batch`` keys per request."""
        gone = [key for key in self.list_keys(prefix) if key not in keep]
        for start in range(0, len(gone), self.delete_batch):
            batch = [{"Key": self._full(key)} for key in gone[start:start + self.delete_batch]]
            response = self._call("delete failed", None, lambda c, b=batch: c.delete_objects(
                Bucket=self.bucket, Delete={"Objects": b, "Quiet": True}))
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise ObjectStoreError(
                    f"S3 at {self.endpoint}: {len(errors)} objects under {prefix!r} could not be deleted "
                    f"(first: {first.get('Key')}: {first.get('Code')} {first.get('Message')})"
                )
        return len(gone)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def location(self) -> str:
        return f"{self.uri('').rstrip('/')} at {self.endpoint}"
