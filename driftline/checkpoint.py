"""Checkpoints: any driftline state object as bytes, signed, and back.

A checkpoint is a pickle, so it must never be loaded unless it is known to come from driftline:
:func:`seal` prefixes a version byte and an HMAC-SHA256 of the pickle under a key shared by the
workers (``settings.state.key``); :func:`unseal` checks the HMAC, in constant time, before it
unpickles anything, and raises :class:`~driftline.errors.StateError` otherwise.

>>> from driftline.join import LabelJoiner
>>> blob = seal(LabelJoiner(ttl_ms=5), b"k" * 32)
>>> unseal(blob, b"k" * 32).ttl_ms
5
>>> unseal(blob, b"x" * 32)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftline.errors.StateError: checkpoint signature does not match: ...
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from typing import Any

from driftline.errors import StateError

__all__ = ["seal", "unseal"]

_VERSION = b"\x01"
_DIGEST = hashlib.sha256().digest_size


def seal(state: Any, key: bytes) -> bytes:
    """``state`` pickled and signed with ``key``."""
    if len(key) < 16:
        raise StateError("the state key must be at least 16 bytes; set DRIFTLINE_STATE_KEY")
    body = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    return _VERSION + hmac.new(key, body, hashlib.sha256).digest() + body


def unseal(blob: bytes, key: bytes) -> Any:
    """The state in ``blob``, after checking its signature; ``StateError`` if it does not match."""
    if len(blob) < 1 + _DIGEST or blob[:1] != _VERSION:
        raise StateError("not a driftline checkpoint (unknown format); refusing to load it")
    signature, body = blob[1 : 1 + _DIGEST], blob[1 + _DIGEST :]
    expected = hmac.new(key, body, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise StateError(
            "checkpoint signature does not match: written with another state key, "
            "or tampered with; refusing to load it"
        )
    return pickle.loads(body)  # verified above
