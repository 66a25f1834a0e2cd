"""The artifact store: where model artifacts too large for a Kafka record go.

Content-addressed by sha256: an artifact is written once under its digest and never changed,
so a URI names exactly one byte string, and whoever reads it checks the digest anyway (against
the signed ``sha256`` of its model version). :class:`LocalArtifactStore` keeps them in a folder
(``settings.models.artifact_dir``): ``<root>/<first 2 hex digits>/<sha256>.zlib``, URIs
``file:///abs/root/ab/ab12...zlib``. Serving processes need that folder too (a shared volume);
a store with another root that holds the same digest serves it as well, since the name is the
digest. :class:`~driftline.streams.artifact_s3.S3ArtifactStore` keeps them in an S3 bucket
(AWS or S3-compatible); :func:`open_store` picks the store ``settings.models.artifact_dir``
names. Another backend (GCS...) implements :class:`ArtifactStore`.

>>> import tempfile
>>> store = LocalArtifactStore(tempfile.mkdtemp())
>>> uri = store.put(b"model bytes")
>>> store.get(uri)
b'model bytes'
>>> open_store(ModelsSettings(artifact_dir=str(store.root))).get(uri)
b'model bytes'
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from driftline.errors import ConfigError, DriftlineError
from driftline.events import ModelVersion
from driftline.models.artifact import ArtifactError, Release, artifact_bytes
from driftline.settings import ModelsSettings

__all__ = ["ArtifactStore", "LocalArtifactStore", "deliver", "fetch", "open_store"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ArtifactStore(Protocol):
    """Stores artifact bytes under their sha256 and gives them back by URI."""

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent); its URI."""
        ...

    def get(self, uri: str, *, max_bytes: int = ...) -> bytes:
        """The bytes at ``uri``; ``ArtifactError`` if missing or over ``max_bytes``."""
        ...


class LocalArtifactStore:
    """Artifacts as files in a folder, named by digest, written atomically."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.zlib"

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._path(sha256)
        if not (path.is_file() and path.stat().st_size == len(data)):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except OSError as exc:
                raise DriftlineError(
                    f"cannot write artifact {sha256} under {self.root} ({exc}); "
                    "check settings.models.artifact_dir and its permissions"
                ) from None
        return path.as_uri()

    def get(self, uri: str, *, max_bytes: int = 1 << 30) -> bytes:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise ArtifactError(f"artifact URI {uri!r}: only file:// URIs are read by this store")
        named = Path(unquote(parsed.path))
        sha256 = named.name.removesuffix(".zlib")
        candidates = [named]
        if _DIGEST.match(sha256):
            candidates.insert(0, self._path(sha256))  # this store's copy, wherever it is mounted
        for path in candidates:
            if path.is_file():
                if path.stat().st_size > max_bytes:
                    raise ArtifactError(f"artifact {uri} is over {max_bytes} bytes; not read")
                return path.read_bytes()
        raise ArtifactError(
            f"artifact {uri} not found (looked in {self.root}); mount the trainer's "
            "artifact_dir where the serving process can read it"
        )


def open_store(models: ModelsSettings) -> ArtifactStore:
    """The store ``models.artifact_dir`` names: for ``s3://bucket/optional/prefix`` an S3
    bucket (``models.s3_endpoint_url`` and ``models.s3_region`` apply; boto3 needed), otherwise
    a local folder. ``ConfigError`` if an ``s3://`` location names no bucket."""
    location = models.artifact_dir
    if not location.startswith("s3://"):
        return LocalArtifactStore(location)
    from driftline.streams.artifact_s3 import S3ArtifactStore

    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    if not bucket:
        raise ConfigError(
            f"models.artifact_dir {location!r} names no bucket; e.g. s3://ml-models/driftline"
        )
    return S3ArtifactStore(
        bucket, prefix, endpoint_url=models.s3_endpoint_url, region=models.s3_region
    )


def deliver(release: Release, store: ArtifactStore | None) -> ModelVersion:
    """The event to publish for ``release``: as is when its artifact is inline, otherwise with
    the artifact put in ``store`` and ``artifact_uri`` set."""
    event = release.event
    if event.artifact is not None:
        return event
    if store is None:
        raise ArtifactError(
            f"model {event.model} version {event.version}: the artifact "
            f"({len(release.artifact)} bytes) is over models.max_inline_bytes and no artifact "
            "store is configured; set models.artifact_dir"
        )
    return dataclasses.replace(event, artifact_uri=store.put(release.artifact))


def fetch(event: ModelVersion, store: ArtifactStore | None, *, max_bytes: int = 1 << 30) -> bytes:
    """The artifact bytes of ``event`` (inline or from ``store``); not yet verified."""
    inline = artifact_bytes(event)
    if inline is not None:
        return inline
    if event.artifact_uri is None:
        raise ArtifactError(
            f"model {event.model} version {event.version}: no artifact and no artifact_uri"
        )
    if store is None:
        raise ArtifactError(
            f"model {event.model} version {event.version} is at {event.artifact_uri}: "
            "give the subscriber an artifact store to read it"
        )
    return store.get(event.artifact_uri, max_bytes=max_bytes)
