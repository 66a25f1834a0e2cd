"""driftline: drift detection and online retraining for ML models, on Kafka event streams.

The public API is what this module exports; everything else may change between versions.
"""

from driftline.codec import decode, decode_or_dead_letter, encode
from driftline.errors import (
    BrokerError,
    ConfigError,
    DecodeError,
    DriftlineError,
    EventError,
    StateError,
    ValidationError,
)
from driftline.events import Alert, DeadLetter, Label, ModelVersion, Prediction
from driftline.settings import Settings

__all__ = [
    "Alert",
    "BrokerError",
    "ConfigError",
    "DeadLetter",
    "DecodeError",
    "DriftlineError",
    "EventError",
    "Label",
    "ModelVersion",
    "Prediction",
    "Settings",
    "StateError",
    "ValidationError",
    "decode",
    "decode_or_dead_letter",
    "encode",
]

__version__ = "0.1.0"
