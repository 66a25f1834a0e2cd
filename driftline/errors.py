"""The errors driftline raises, in one tree under :class:`DriftlineError`.

Each error says what went wrong, with the context needed to find it (topic, partition, offset,
model, feature), and what to do next. Catch ``DriftlineError`` to catch them all.

    DriftlineError
    ├── ConfigError          settings or a config file are wrong
    ├── EventError           a record could not become an event
    │   ├── DecodeError      not UTF-8, not JSON, too large, not an object
    │   └── ValidationError  JSON that breaks its contract
    ├── BrokerError          Kafka could not be reached or refused a request
    ├── StateError           a checkpoint could not be written or restored
    ├── ArtifactError        a model version that must not be loaded (unsigned, tampered with)
    ├── StoreUnavailable     the artifact store did not answer; it may come back
    └── ModelNotReady        a service asked for a model before a verified version arrived
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "BrokerError",
    "ConfigError",
    "DecodeError",
    "DriftlineError",
    "EventError",
    "ModelNotReady",
    "StateError",
    "StoreUnavailable",
    "ValidationError",
]


class DriftlineError(Exception):
    """Root of every error driftline raises on purpose."""


class ConfigError(DriftlineError):
    """A setting or config file is invalid; the message names the setting and a valid example."""


class EventError(DriftlineError):
    """A record could not become an event.

    ``reason`` is a short stable code (``not_json``, ``schema``...) used as the dead-letter reason
    and as a metric label; ``str(error)`` is the one-line explanation for a person.
    """

    reason: str = "invalid"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class DecodeError(EventError):
    """The bytes are not a JSON object in UTF-8 within the size limit."""

    reason = "not_json"


class ValidationError(EventError):
    """The JSON does not follow its contract; ``path`` names the field (``features.amount``)."""

    reason = "schema"

    def __init__(self, path: str, rule: str, got: str) -> None:
        self.path = path
        self.rule = rule
        self.got = got
        where = path or "(event)"
        super().__init__(f"{where}: {rule}, got {got}")


class BrokerError(DriftlineError):
    """Kafka could not be reached or refused a request; the message says what to check."""


class StateError(DriftlineError):
    """A checkpoint could not be written or restored."""


class ArtifactError(DriftlineError):
    """A model version that must not be loaded: unsigned, tampered with, or unreadable."""


class ModelNotReady(DriftlineError):
    """No verified version of the model has been loaded yet; wait for one or serve a fallback."""


class StoreUnavailable(DriftlineError):
    """The artifact store did not answer (refused or timed out connection, a 5xx, a throttle):
    an outage that may end. A worker restarts from its last commit and tries again, with a
    growing delay, and a ``ModelSubscriber`` tries the version again later; a wrong bucket or
    permission is another error, which stops a worker and makes a subscriber refuse."""
