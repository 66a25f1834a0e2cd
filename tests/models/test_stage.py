"""``RetrainStage``: many models, alerts in event-time order, batching, checkpoints, settings."""

from __future__ import annotations

import dataclasses
import pickle

from retrain_helpers import KEY, concept_alert, outcomes

from driftline.datasets import drifting_stream
from driftline.events import ModelVersion
from driftline.models import Release, RetrainSpec, RetrainStage
from driftline.pipeline import JoinStage, MonitorStage, Sequenced
from driftline.settings import ModelsSettings

SPEC = RetrainSpec(learner="logistic_regression", min_events=300, refresh_every=0)


def _items(model: str, n: int, change_at: int | None = None) -> list[Sequenced]:
    return [
        Sequenced(y.ts or 0, "y/" + y.event_id, (p, y))
        for p, y in outcomes(n, change_at=change_at, model=model, seed=len(model))
    ]


def _unsigned(event: ModelVersion) -> ModelVersion:
    return dataclasses.replace(event, sha256="", signature="", artifact=None, artifact_size=None)


def test_each_model_has_its_retrainer_and_only_its_alerts_start_challengers() -> None:
    stage = RetrainStage(SPEC, KEY, lateness_ms=0)
    a, b = _items("a", 2000, change_at=1000), _items("b", 2000)
    merged = sorted(a + b, key=lambda s: (s.ts, s.key))
    releases = stage.push(merged[:2200])
    alert = concept_alert("a", merged[2199].ts, "a-1")
    releases += stage.push(merged[2200:], [alert]) + stage.flush()
    by_model = {m: [r.event.reason for r in releases if r.event.model == m] for m in "ab"}
    assert by_model["a"][:2] == ["initial", "drift"] and by_model["b"] == ["initial"]
    assert stage.retrainers["b"].counts["challengers"] == 0


def test_versions_do_not_depend_on_batching() -> None:
    stream = drifting_stream(7000, seed=5, shift_at=None, concept_at=3500)

    def run(size: int) -> list[Release]:
        join, monitors = JoinStage(), MonitorStage()
        stage = RetrainStage(SPEC, KEY)
        out: list[Release] = []
        for i in range(0, 7000, size):
            items = join.push(stream.predictions[i : i + size], stream.labels[i : i + size])
            out += stage.push(items, monitors.push(items))
        items = join.flush()
        return out + stage.push(items, monitors.push(items) + monitors.flush()) + stage.flush()

    small, large = run(250), run(3000)
    assert [r.event.reason for r in small][:2] == ["initial", "drift"]
    assert [_unsigned(r.event) for r in small] == [_unsigned(r.event) for r in large]


def test_a_checkpointed_stage_keeps_no_key_and_takes_it_back() -> None:
    stage = RetrainStage(SPEC, KEY)
    stage.push(_items("a", 200))
    blob = pickle.dumps(stage)
    assert KEY not in blob
    restored = pickle.loads(blob)
    restored.key = KEY
    assert restored.retrainers["a"].key == KEY
    assert restored.push(_items("a", 400)[200:]) + restored.flush()


def test_settings_defaults_are_the_spec_defaults() -> None:
    spec = ModelsSettings().retrain_spec()
    assert spec == RetrainSpec()
