"""The artifact store in an S3 bucket, on AWS or any S3-compatible service (MinIO, Ceph, R2...).

``models.artifact_dir = "s3://bucket/optional/prefix"`` selects it
(:func:`driftline.streams.artifacts.open_store`); ``models.s3_endpoint_url`` points it at a
service other than AWS and ``models.s3_region`` names the region. Objects are named as the
local store names its files, ``<prefix>/<first 2 hex digits>/<sha256>.zlib``, and written once:
putting bytes that are already there sends nothing. URIs are
``s3://bucket/prefix/ab/ab12...zlib``, and a store with another bucket or prefix that holds the
same digest serves it as well, since the name is the digest.

Credentials come only from boto3's own chain: ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``), ``AWS_PROFILE`` and the shared config
files, a container or instance role. driftline has no setting for them and never logs them.
boto3 is optional (``pip install 'driftline[s3]'``) and imported when a store is made.

Example (needs an S3 service, so not run as a doctest)::

    store = S3ArtifactStore("ml-models", "driftline/artifacts")
    uri = store.put(data)   # 's3://ml-models/driftline/artifacts/ab/ab12...zlib'
    assert store.get(uri, max_bytes=1 << 30) == data
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from driftline.errors import ConfigError, DriftlineError, StoreUnavailable
from driftline.models.artifact import ArtifactError

__all__ = ["S3ArtifactStore"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_MISSING = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
_REJECTED = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"})
_DENIED = frozenset({"403", "AccessDenied", "Forbidden", "AllAccessDisabled"})
#: Answers of a service that is down or overloaded for now, not of a wrong request.
_PASSING = frozenset(
    {"500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown"}
    | {"RequestTimeout", "Throttling", "ThrottlingException"}
)
_CREDENTIALS_HINT = (
    "boto3 reads them from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
    "or the process's instance or container role"
)


class S3ArtifactStore:
    """Artifacts as objects in an S3 bucket, named by digest (see the module docstring).

    ``endpoint_url``: an S3-compatible service (``http://minio:9000``); None for AWS.
    ``ConfigError`` if boto3 is not installed or the endpoint or region are not valid.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        try:
            import boto3
            from botocore import exceptions
            from botocore.config import Config
        except ImportError:
            raise ConfigError(
                f"models.artifact_dir {self.root} is an S3 bucket, which needs boto3: "
                "pip install 'driftline[s3]'"
            ) from None
        self._errors: Any = exceptions
        config = Config(
            connect_timeout=10, read_timeout=60, retries={"mode": "standard", "max_attempts": 3}
        )
        try:
            self._client: Any = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
        except (ValueError, exceptions.BotoCoreError) as exc:
            raise ConfigError(
                f"cannot make an S3 client for {self.root} ({exc}); check models.s3_endpoint_url "
                "(e.g. http://minio:9000), models.s3_region and AWS_PROFILE"
            ) from None

    @property
    def root(self) -> str:
        """Where this store puts artifacts, as a URI."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, sha256: str) -> str:
        name = f"{sha256[:2]}/{sha256}.zlib"
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        key = self._key(sha256)
        uri = f"s3://{self.bucket}/{key}"
        with self._translated(uri, DriftlineError):
            if self._size(self.bucket, key) != len(data):
                self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType="application/zlib"
                )
        return uri

    def get(self, uri: str, *, max_bytes: int = 1 << 30) -> bytes:
        if not uri.startswith("s3://"):
            raise ArtifactError(
                f"artifact URI {uri!r}: the store at {self.root} reads s3:// URIs only; set "
                "models.artifact_dir to the store the trainer wrote to"
            )
        named_bucket, _, named_key = uri.removeprefix("s3://").partition("/")
        named = (named_bucket, named_key)
        sha256 = named_key.rsplit("/", 1)[-1].removesuffix(".zlib")
        candidates = [named]
        if _DIGEST.match(sha256):
            candidates.insert(0, (self.bucket, self._key(sha256)))  # this store's copy
        for bucket, key in dict.fromkeys(candidates):
            where = f"s3://{bucket}/{key}"
            with self._translated(where, ArtifactError):
                # without s3:ListBucket S3 says 403 for a missing key: the named copy decides
                size = self._size(bucket, key, denied_is_missing=(bucket, key) != named)
                if size is not None:
                    if size > max_bytes:
                        raise ArtifactError(
                            f"artifact {where} is {size} bytes, over the limit of {max_bytes}; "
                            "not read"
                        )
                    return self._read(bucket, key, max_bytes)
        raise ArtifactError(
            f"artifact {uri} not found (looked in {self.root}); set models.artifact_dir to "
            "the bucket and prefix the trainer writes to"
        )

    def _size(self, bucket: str, key: str, *, denied_is_missing: bool = False) -> int | None:
        """The object's size in bytes, or None if there is no such object."""
        try:
            head = self._client.head_object(Bucket=bucket, Key=key)
        except self._errors.ClientError as exc:
            code = _code(exc)
            if code in _MISSING or (denied_is_missing and code in _DENIED):
                return None
            raise
        return int(head["ContentLength"])

    def _read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            data: bytes = body.read(max_bytes + 1)
        finally:
            body.close()
        if len(data) > max_bytes:  # replaced since its size was read
            raise ArtifactError(f"artifact s3://{bucket}/{key} is over {max_bytes} bytes; not read")
        return data

    @contextmanager
    def _translated(self, where: str, error: type[DriftlineError]) -> Iterator[None]:
        """botocore's exceptions raised as ``error``, saying what to check; an outage (no
        connection, a 5xx, a throttle, after boto3's own retries) is ``StoreUnavailable``."""
        errors = self._errors
        try:
            yield
        except errors.ClientError as exc:
            code = _code(exc)
            if code in _PASSING:
                raise StoreUnavailable(
                    f"S3 is unavailable for {where} ({code}: {_message(exc)}); try again later"
                ) from None
            if code in _REJECTED:
                message = f"S3 rejected the credentials for {where} ({code}); {_CREDENTIALS_HINT}"
            elif code in _DENIED:
                message = (
                    f"access denied to {where}: allow the credentials s3:GetObject, "
                    "s3:PutObject and s3:ListBucket on it"
                )
            elif code == "NoSuchBucket":
                bucket = where.removeprefix("s3://").partition("/")[0]
                message = f"bucket {bucket} does not exist; create it or fix models.artifact_dir"
            else:
                message = (
                    f"S3 refused a request for {where} ({code}: {_message(exc)}); check "
                    "models.artifact_dir, models.s3_endpoint_url and models.s3_region"
                )
            raise error(message) from None
        except (errors.NoCredentialsError, errors.PartialCredentialsError) as exc:
            raise error(f"no AWS credentials for {where} ({exc}); {_CREDENTIALS_HINT}") from None
        except errors.CredentialRetrievalError as exc:
            raise error(
                f"AWS credentials for {where} not read ({exc}); {_CREDENTIALS_HINT}"
            ) from None
        except (errors.ConnectionError, errors.HTTPClientError) as exc:
            endpoint = self.endpoint_url or "AWS S3"
            raise StoreUnavailable(
                f"cannot reach {endpoint} for {where} ({exc}); check models.s3_endpoint_url, "
                "models.s3_region and the network"
            ) from None
        except errors.BotoCoreError as exc:
            raise error(f"S3 request for {where} failed: {exc}") from None


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or "no message"
