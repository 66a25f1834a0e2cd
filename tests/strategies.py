"""Hypothesis strategies for valid contract events and for arbitrary JSON documents."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

from driftline.codec import encode
from driftline.events import Alert, Label, ModelVersion, Prediction

MODEL_NAME = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")
EVENT_ID = st.text(min_size=1, max_size=40)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TS = st.integers(min_value=0, max_value=2**53)
NUMBER = st.one_of(INT64, st.floats(allow_nan=False, allow_infinity=False))
TARGET = st.one_of(NUMBER, st.text(max_size=10), st.booleans())
FEATURE = st.one_of(NUMBER, st.text(max_size=10), st.booleans(), st.none())
SHORT_TEXT = st.text(max_size=12)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


predictions = st.builds(
    Prediction,
    event_id=EVENT_ID,
    model=MODEL_NAME,
    features=st.dictionaries(SHORT_TEXT, FEATURE, max_size=8),
    prediction=TARGET,
    model_version=_optional(st.one_of(SHORT_TEXT, INT64)),
    ts=_optional(TS),
    scores=_optional(st.dictionaries(SHORT_TEXT, st.floats(min_value=0, max_value=1), max_size=4)),
    tags=_optional(st.dictionaries(SHORT_TEXT, SHORT_TEXT, max_size=3)),
)

labels = st.builds(Label, event_id=EVENT_ID, model=MODEL_NAME, label=TARGET, ts=_optional(TS))

alerts = st.builds(
    Alert,
    alert_id=SHORT_TEXT,
    model=SHORT_TEXT,
    kind=st.sampled_from(
        ["data_drift", "prediction_drift", "concept_drift", "performance", "label_delay"]
    ),
    status=st.sampled_from(["firing", "resolved"]),
    severity=st.sampled_from(["info", "warning", "critical"]),
    detector=SHORT_TEXT,
    event_ts=INT64,
    message=SHORT_TEXT,
    model_version=_optional(st.one_of(SHORT_TEXT, INT64)),
    feature=_optional(SHORT_TEXT),
    segment=_optional(st.dictionaries(SHORT_TEXT, SHORT_TEXT, max_size=2)),
    statistic=_optional(NUMBER),
    threshold=_optional(NUMBER),
    p_value=_optional(st.floats(min_value=0, max_value=1)),
    window=_optional(st.dictionaries(SHORT_TEXT, st.integers(0, 10**6), max_size=3)),
)

model_versions = st.builds(
    ModelVersion,
    model=SHORT_TEXT,
    version=st.integers(min_value=1, max_value=2**31),
    created_ts=INT64,
    reason=st.sampled_from(["initial", "drift", "scheduled", "manual", "rollback"]),
    flavor=SHORT_TEXT,
    sha256=st.from_regex(r"\A[0-9a-f]{64}\Z"),
    signature=SHORT_TEXT,
    metrics=st.dictionaries(SHORT_TEXT, NUMBER, max_size=4),
    parent_version=_optional(st.integers(min_value=1, max_value=2**31)),
    trigger_alert_id=_optional(SHORT_TEXT),
    artifact=_optional(st.text(alphabet="ABCDEFabcdef0123456789+/=", max_size=40)),
)

EVENTS = {
    "prediction": predictions,
    "label": labels,
    "alert": alerts,
    "model_version": model_versions,
}

json_scalars = st.one_of(st.none(), st.booleans(), NUMBER, st.text(max_size=10))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def near_valid(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    """A valid event's JSON with one field replaced, dropped, added, or nested field added."""
    doc: dict[str, Any] = orjson.loads(encode(draw(EVENTS[event_type])))
    action = draw(st.sampled_from(["replace", "drop", "add", "nested"]))
    keys = sorted(doc)
    if action == "replace" and keys:
        doc[draw(st.sampled_from(keys))] = draw(json_values)
    elif action == "drop" and keys:
        doc.pop(draw(st.sampled_from(keys)))
    elif action == "nested" and any(isinstance(doc[k], dict) for k in keys):
        key = draw(st.sampled_from([k for k in keys if isinstance(doc[k], dict)]))
        doc[key] = {**doc[key], draw(SHORT_TEXT): draw(json_values)}
    else:
        doc[draw(SHORT_TEXT)] = draw(json_values)
    return doc
