"""``replay(..., models_out=...)``: the model versions of a file replay, with the alerts."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from retrain_helpers import KEY

from driftline.codec import decode, encode
from driftline.datasets import drifting_stream
from driftline.events import ModelVersion
from driftline.models import load_verified
from driftline.settings import ModelsSettings
from driftline.streams.artifacts import LocalArtifactStore, fetch
from driftline.streams.replay import replay


def _write(path: Path, events: list[object]) -> Path:
    path.write_bytes(b"".join(encode(e) + b"\n" for e in events))
    return path


def _replay(tmp: Path, settings: ModelsSettings) -> tuple[list[ModelVersion], list[object]]:
    stream = drifting_stream(9000, seed=4, shift_at=None, concept_at=4500)
    predictions = _write(tmp / "p.jsonl", stream.predictions)  # type: ignore[arg-type]
    labels = _write(tmp / "l.jsonl", stream.labels)  # type: ignore[arg-type]
    alerts, models = io.BytesIO(), io.BytesIO()
    report = replay(predictions, labels, alerts, models_out=models, models=settings)
    versions = [decode("model_version", line) for line in models.getvalue().splitlines()]
    assert report.counts["model_versions"] == len(versions)
    return versions, [decode("alert", line) for line in alerts.getvalue().splitlines()]


def test_replay_writes_signed_versions_triggered_by_the_monitors_alerts(tmp_path: Path) -> None:
    settings = ModelsSettings(
        key=KEY.decode(),
        learner="logistic_regression",
        refresh_every=0,
        artifact_dir=str(tmp_path / "store"),
    )
    versions, alerts = _replay(tmp_path, settings)
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    assert [v.reason for v in versions][:2] == ["initial", "drift"]
    concept = {a.alert_id for a in alerts if a.kind == "concept_drift"}  # type: ignore[attr-defined]
    assert versions[1].trigger_alert_id in concept
    for version in versions:
        model = load_verified(version, fetch(version, None), KEY)
        assert model.predict_one({"x0": 1.0, "x2": -1.0}) in (0, 1)

    again, _ = _replay(tmp_path, settings)
    assert [_unsigned(v) for v in again] == [_unsigned(v) for v in versions]


def test_large_artifacts_go_to_the_store_and_come_back(tmp_path: Path) -> None:
    store = tmp_path / "store"
    settings = ModelsSettings(
        key=KEY.decode(), learner="logistic_regression", max_inline_bytes=0, artifact_dir=str(store)
    )
    versions, _ = _replay(tmp_path, settings)
    assert versions and all(v.artifact is None and v.artifact_uri for v in versions)
    local = LocalArtifactStore(store)
    for version in versions:
        data = fetch(version, local)
        assert len(data) == version.artifact_size
        load_verified(version, data, KEY)


def _unsigned(event: ModelVersion) -> ModelVersion:
    return dataclasses.replace(event, sha256="", signature="", artifact=None, artifact_size=None)
