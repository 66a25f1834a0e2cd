"""Typed events: the four contracts of ``shared/contracts`` plus the dead-letter envelope.

Plain frozen dataclasses with no behaviour, so that the pure core (monitors, models) can take and
return them without knowing about bytes. Field names are the contract's names; optional contract
fields default to ``None`` and are left out when encoded. Only :mod:`driftline.codec` turns them
into bytes and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = [
    "Alert",
    "AlertKind",
    "DeadLetter",
    "Event",
    "FeatureValue",
    "Label",
    "ModelVersion",
    "Prediction",
    "Severity",
    "Target",
]

FeatureValue: TypeAlias = float | int | str | bool | None
Target: TypeAlias = float | int | str | bool
AlertKind: TypeAlias = Literal[
    "data_drift", "prediction_drift", "concept_drift", "performance", "label_delay", "data_quality"
]
Severity: TypeAlias = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Prediction:
    """One prediction made by a model in production (``prediction.schema.json``)."""

    event_id: str
    model: str
    features: Mapping[str, FeatureValue]
    prediction: Target
    model_version: str | int | None = None
    ts: int | None = None
    scores: Mapping[str, float] | None = None
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Label:
    """The ground truth for an earlier prediction (``label.schema.json``)."""

    event_id: str
    model: str
    label: Target
    ts: int | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """A change in a monitored model's health (``alert.schema.json``)."""

    alert_id: str
    model: str
    kind: AlertKind
    status: Literal["firing", "resolved"]
    severity: Severity
    detector: str
    event_ts: int
    message: str
    model_version: str | int | None = None
    feature: str | None = None
    segment: Mapping[str, str] | None = None
    statistic: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    window: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A new version of an online-trained model, promoted for serving (model-version schema).

    ``artifact_uri`` and ``artifact_size`` are optional fields added to the contract (extra
    fields are allowed); see :mod:`driftline.models.artifact` for what is signed.
    """

    model: str
    version: int
    created_ts: int
    reason: Literal["initial", "drift", "scheduled", "manual", "rollback"]
    flavor: str
    sha256: str
    signature: str
    metrics: Mapping[str, float]
    parent_version: int | None = None
    trigger_alert_id: str | None = None
    artifact: str | None = None
    #: Where the artifact is when it is too large to travel inline (``artifact`` is then left
    #: out): a URI of an artifact store (see ``driftline.streams.artifacts``). Not signed: the
    #: bytes found there are checked against ``sha256``, which is.
    artifact_uri: str | None = None
    #: Size in bytes of the artifact (the compressed pickle whose digest is ``sha256``).
    artifact_size: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not become an event, kept whole with where it came from and why.

    ``value_b64`` and ``key_b64`` hold the original bytes (base64); ``reason`` is a stable code
    (see :data:`driftline.codec.REASONS`) and ``detail`` the one-line explanation.
    ``ts`` is when driftline dead-lettered it (ms), ``record_ts`` the record's own timestamp.
    """

    reason: str
    detail: str
    size: int
    sha256: str
    ts: int
    value_b64: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key_b64: str | None = None
    record_ts: int | None = None
    event_type: str | None = None


Event: TypeAlias = Prediction | Label | Alert | ModelVersion
