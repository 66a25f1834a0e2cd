"""Artifacts and signatures: a River model as bytes, its digest, and the HMAC that vouches for it.

**The artifact** is ``zlib.compress(pickle.dumps(model, protocol=5))``: the River pipeline
(feature encoding included, see :mod:`driftline.models.features`). ``sha256`` is the hex digest
of these compressed bytes, so that they can be checked before anything is decompressed or
unpickled. Inline, ``artifact`` holds them in base64; when that would be over the inline limit,
``artifact`` is left out and the bytes go to an artifact store (``artifact_uri``).

**The signature** is ``HMAC-SHA256(key, canonical)`` in lowercase hex, where ``canonical`` is the
ASCII bytes of ``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``
and ``doc`` is exactly::

    {"scheme": "driftline.model-version.v1", "model": ..., "version": ..., "created_ts": ...,
     "reason": ..., "flavor": ..., "parent_version": ... or null,
     "trigger_alert_id": ... or null, "sha256": ...}

The metrics, ``artifact_uri`` and ``artifact_size`` are not signed: the metrics are advisory,
and the bytes found at the URI are checked against the signed digest.

**Loading** (:func:`load_verified`) checks, in order, and refuses with :class:`ArtifactError` at
the first failure: a signature is present and matches (constant-time compare), the bytes'
digest equals the signed ``sha256``, the flavor is ``river``, the bytes decompress within the
size limit; only then are they unpickled.

>>> from driftline.events import ModelVersion
>>> data = pack({"weights": [1, 2]})
>>> event = ModelVersion("m", 1, 5, "initial", FLAVOR, digest(data), "", {})
>>> event = sign(event, b"k" * 32)
>>> load_verified(event, data, b"k" * 32)
{'weights': [1, 2]}
>>> load_verified(event, data, b"x" * 32)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftline.errors.ArtifactError: model m version 1: signature does not match...
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import pickle
import zlib
from dataclasses import dataclass
from typing import Any, Final

from driftline.errors import ArtifactError
from driftline.events import ModelVersion

__all__ = [
    "FLAVOR",
    "MAX_MODEL_BYTES",
    "SCHEME",
    "ArtifactError",
    "Release",
    "artifact_bytes",
    "digest",
    "load_verified",
    "pack",
    "sign",
    "signing_payload",
    "verify_signature",
]

FLAVOR: Final = "river"
SCHEME: Final = "driftline.model-version.v1"
#: Largest decompressed artifact :func:`load_verified` accepts by default (1 GiB).
MAX_MODEL_BYTES: Final = 1 << 30
MIN_KEY_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class Release:
    """What the retrainer hands to an adapter: the signed event and the artifact's bytes.

    ``event.artifact`` is set when the artifact fits inline; otherwise the adapter stores
    ``artifact`` and sets ``event.artifact_uri`` (see ``driftline.streams.artifacts``).
    """

    event: ModelVersion
    artifact: bytes


def pack(model: Any) -> bytes:
    """The artifact bytes of a model: its pickle, zlib-compressed."""
    return zlib.compress(pickle.dumps(model, protocol=5), 6)


def digest(data: bytes) -> str:
    """Lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def signing_payload(event: ModelVersion) -> bytes:
    """The canonical bytes the signature covers (see the module docstring)."""
    doc = {
        "scheme": SCHEME,
        "model": event.model,
        "version": event.version,
        "created_ts": event.created_ts,
        "reason": event.reason,
        "flavor": event.flavor,
        "parent_version": event.parent_version,
        "trigger_alert_id": event.trigger_alert_id,
        "sha256": event.sha256,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ArtifactError(
            f"the model signing key must be at least {MIN_KEY_BYTES} bytes; "
            "set DRIFTLINE_MODELS_KEY to a secret shared with the serving processes"
        )


def sign(event: ModelVersion, key: bytes) -> ModelVersion:
    """``event`` with its ``signature`` set."""
    _check_key(key)
    signature = hmac.new(key, signing_payload(event), hashlib.sha256).hexdigest()
    return dataclasses.replace(event, signature=signature)


def verify_signature(event: ModelVersion, key: bytes) -> bool:
    """Whether ``event.signature`` is the HMAC of its metadata and digest under ``key``."""
    _check_key(key)
    expected = hmac.new(key, signing_payload(event), hashlib.sha256).hexdigest()
    return hmac.compare_digest(event.signature.encode(), expected.encode())


def artifact_bytes(event: ModelVersion) -> bytes | None:
    """The inline artifact's bytes (base64-decoded), or None when it travels by reference."""
    if event.artifact is None:
        return None
    try:
        return base64.b64decode(event.artifact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ArtifactError(f"{_who(event)}: artifact is not valid base64 ({exc})") from None


def _who(event: ModelVersion) -> str:
    return f"model {event.model} version {event.version}"


def load_verified(
    event: ModelVersion, data: bytes, key: bytes, *, max_bytes: int = MAX_MODEL_BYTES
) -> Any:
    """The model in ``data``, after checking signature and digest; ``ArtifactError`` otherwise.

    Nothing is decompressed or unpickled before both checks pass.
    """
    if not event.signature:
        raise ArtifactError(f"{_who(event)}: unsigned; refusing to load it")
    if not verify_signature(event, key):
        raise ArtifactError(
            f"{_who(event)}: signature does not match; signed with another key or tampered "
            "with (check that DRIFTLINE_MODELS_KEY is the trainer's); refusing to load it"
        )
    if not hmac.compare_digest(digest(data), event.sha256):
        raise ArtifactError(
            f"{_who(event)}: artifact bytes do not match the signed sha256; refusing to load it"
        )
    if event.flavor != FLAVOR:
        raise ArtifactError(f"{_who(event)}: flavor {event.flavor!r} is not {FLAVOR!r}")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, max_bytes)
    except zlib.error as exc:
        raise ArtifactError(f"{_who(event)}: artifact is not zlib data ({exc})") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise ArtifactError(
            f"{_who(event)}: artifact decompresses to more than {max_bytes} bytes or is cut short"
        )
    return pickle.loads(raw)  # signed by the trainer and matching its digest, checked above
