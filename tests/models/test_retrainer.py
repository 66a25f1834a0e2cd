"""Champion and challenger of one model: initial version, drift and scheduled promotions,
no promotion without a reason, checkpoints, signing."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from retrain_helpers import KEY, concept_alert, outcomes

from driftline.checkpoint import seal, unseal
from driftline.errors import ConfigError
from driftline.events import ModelVersion
from driftline.models import ArtifactError, Retrainer, RetrainSpec, load_verified
from driftline.models.artifact import verify_signature

LR = RetrainSpec(learner="logistic_regression", min_events=300, refresh_every=0)


def test_initial_version_after_min_events_is_signed_and_loads() -> None:
    data = outcomes(1000)
    retrainer = Retrainer("m", LR, KEY)
    releases = retrainer.learn_many(data[:299])
    assert releases == []
    releases = retrainer.learn_many(data[299:])
    assert [r.event.reason for r in releases] == ["initial"]
    event, artifact = releases[0].event, releases[0].artifact
    assert (event.version, event.parent_version, event.created_ts) == (1, None, data[299][1].ts)
    assert event.metrics["events"] == 300 and 0.5 < event.metrics["challenger_accuracy"] <= 1
    assert verify_signature(event, KEY) and event.artifact_size == len(artifact)
    model = load_verified(event, artifact, KEY)
    right = sum(model.predict_one(p.features) == y.label for p, y in data[300:])
    assert right / 700 > 0.85


def test_a_concept_alert_starts_a_challenger_that_wins_after_a_change() -> None:
    data = outcomes(6000, change_at=3000, seed=1)
    retrainer = Retrainer("m", LR, KEY)
    releases = retrainer.learn_many(data[:3150])
    assert retrainer.on_alert(concept_alert("m", data[3149][1].ts or 0, "alert-7")) == []
    releases += retrainer.learn_many(data[3150:])
    versions = [(r.event.version, r.event.reason) for r in releases]
    assert versions[:2] == [(1, "initial"), (2, "drift")]
    drift = releases[1].event
    assert drift.parent_version == 1 and drift.trigger_alert_id == "alert-7"
    assert drift.metrics["events"] >= LR.min_paired
    assert drift.metrics["challenger_accuracy"] - drift.metrics["champion_accuracy"] >= LR.margin
    assert drift.metrics["p_value"] <= LR.alpha
    assert drift.created_ts > data[3149][1].ts  # type: ignore[operator]


@pytest.mark.parametrize(
    "alert",
    [
        concept_alert("other", 0),
        concept_alert("m", 0, kind="data_drift"),
        dataclasses.replace(concept_alert("m", 0), status="resolved"),
    ],
)
def test_alerts_of_other_models_kinds_or_resolved_start_nothing(alert: object) -> None:
    retrainer = Retrainer("m", LR, KEY)
    retrainer.learn_many(outcomes(400))
    retrainer.on_alert(alert)  # type: ignore[arg-type]
    assert retrainer.challenger is None


def test_no_promotion_on_a_stationary_stream_even_when_challenged() -> None:
    spec = dataclasses.replace(LR, challenge_every=1000, max_paired=1500)
    retrainer = Retrainer("m", spec, KEY)
    data = outcomes(6000, seed=2)
    releases = retrainer.learn_many(data[:2000])
    retrainer.on_alert(concept_alert("m", data[1999][1].ts or 0))
    releases += retrainer.learn_many(data[2000:])
    assert [r.event.reason for r in releases] == ["initial"]
    assert retrainer.counts["challengers"] >= 3
    assert retrainer.counts["challengers_dropped"] >= 2


def test_refresh_publishes_the_champion_when_it_outgrows_the_served_version() -> None:
    spec = dataclasses.replace(LR, refresh_every=500)
    data = outcomes(5000, change_at=2500, seed=3)
    releases = Retrainer("m", spec, KEY).learn_many(data)
    reasons = [(r.event.reason, r.event.created_ts) for r in releases]
    assert reasons[0][0] == "initial"
    scheduled = [ts for reason, ts in reasons if reason == "scheduled"]
    assert scheduled and all(ts > data[2500][1].ts for ts in scheduled)  # type: ignore[operator]
    # stationary, once the first version has learned enough: nothing to refresh
    converged = dataclasses.replace(spec, min_events=2000)
    again = Retrainer("m", converged, KEY).learn_many(outcomes(6000, seed=3))
    assert [r.event.reason for r in again] == ["initial"]


def test_a_window_refresh_reacts_sooner_and_keeps_a_converged_stationary_version() -> None:
    # the window drops the events before the change, where the served version was as good
    spec = dataclasses.replace(LR, refresh_every=500, refresh_window=1000)
    data = outcomes(5000, change_at=2500, seed=3)
    releases = Retrainer("m", spec, KEY).learn_many(data)
    after = [r.event for r in releases if r.event.created_ts > data[2500][1].ts]  # type: ignore[operator]
    assert after and after[0].reason == "scheduled"
    assert after[0].created_ts == data[2799][1].ts  # the first check after the change
    assert after[0].metrics["events"] == 1000
    plain = Retrainer("m", dataclasses.replace(spec, refresh_window=0), KEY).learn_many(data)
    assert [r.event.created_ts for r in plain][1] > after[0].created_ts
    converged = dataclasses.replace(spec, min_events=2000)
    again = Retrainer("m", converged, KEY).learn_many(outcomes(6000, seed=3))
    assert [r.event.reason for r in again] == ["initial"]


def test_a_refresh_window_shorter_than_min_paired_is_refused() -> None:
    with pytest.raises(ConfigError, match="refresh_window"):
        RetrainSpec(refresh_window=100, min_paired=250)


def test_regression_uses_absolute_errors() -> None:
    # linear SGD re-learns as fast as a new challenger; a forest full of the old concept not
    spec = dataclasses.replace(LR, learner="adaptive_random_forest", buffer_size=100)
    data = outcomes(1600, change_at=800, regression=True, seed=4)
    retrainer = Retrainer("m", spec, KEY)
    releases = retrainer.learn_many(data[:900])
    retrainer.on_alert(concept_alert("m", data[899][1].ts or 0))
    releases += retrainer.learn_many(data[900:])
    assert retrainer.task == "regression"
    assert [r.event.reason for r in releases][:2] == ["initial", "drift"]
    metrics = releases[1].event.metrics
    assert metrics["challenger_mae"] < metrics["champion_mae"]


def test_checkpoint_mid_stream_gives_the_same_future_versions() -> None:
    spec = dataclasses.replace(LR, learner="hoeffding_adaptive_tree", refresh_every=500)
    data = outcomes(5000, change_at=2500, seed=5)
    alert = concept_alert("m", data[2599][1].ts or 0)
    straight = Retrainer("m", spec, KEY)
    expected = straight.learn_many(data[:2600])
    straight.on_alert(alert)
    expected += straight.learn_many(data[2600:])

    first = Retrainer("m", spec, KEY)
    got = first.learn_many(data[:1700])
    blob = seal(first, b"state-key-0123456789")
    assert KEY not in blob  # the signing key is not checkpointed
    restored = unseal(blob, b"state-key-0123456789")
    with pytest.raises(ArtifactError, match="no signing key"):
        restored.learn_many(data[1700:1701])
    restored.key = KEY
    got += restored.learn_many(data[1700:2600])
    restored.on_alert(alert)
    got += restored.learn_many(data[2600:])
    assert len(expected) >= 3
    # River's trees hold unseeded random generators they never use (in proba.Gaussian), so
    # artifact bytes differ from run to run: compare everything else, and what the models say
    assert [_unsigned(r.event) for r in got] == [_unsigned(r.event) for r in expected]
    for a, b in zip(got, expected, strict=True):
        model_a = load_verified(a.event, a.artifact, KEY)
        model_b = load_verified(b.event, b.artifact, KEY)
        assert [model_a.predict_one(p.features) for p, _ in data[::25]] == [
            model_b.predict_one(p.features) for p, _ in data[::25]
        ]


def _unsigned(event: ModelVersion) -> ModelVersion:
    return dataclasses.replace(event, sha256="", signature="", artifact=None, artifact_size=None)


def test_manual_publish_and_adopting_a_rollback() -> None:
    retrainer = Retrainer("m", LR, KEY)
    first = retrainer.learn_many(outcomes(400))[0]
    manual = retrainer.publish(ts=5, reason="manual")
    assert (manual.event.version, manual.event.parent_version) == (2, 1)
    older = load_verified(first.event, first.artifact, KEY)
    rollback = dataclasses.replace(first.event, version=3, reason="rollback", parent_version=2)
    assert retrainer.adopt(rollback, older) is None and retrainer.version == 3
    assert retrainer.counts["adopted"] == 1 and retrainer.champion is older
    assert retrainer.adopt(rollback, older) is None  # read again after a restart: ignored
    assert retrainer.adopt(first.event, older) is None  # not a rollback: ignored
    assert retrainer.counts["adopted"] == 1
    assert retrainer.publish(ts=6).event.version == 4


def test_a_rollback_numbered_like_a_newer_version_is_published_again() -> None:
    retrainer = Retrainer("m", LR, KEY)
    first = retrainer.learn_many(outcomes(400))[0]
    retrainer.publish(ts=5)  # version 2, and the registry numbers a rollback 2 too
    older = load_verified(first.event, first.artifact, KEY)
    rollback = dataclasses.replace(first.event, version=2, reason="rollback", parent_version=1)
    again = retrainer.adopt(rollback, older)
    assert again is not None and retrainer.champion is older
    assert (again.event.version, again.event.parent_version, again.event.reason) == (
        3,
        2,
        "rollback",
    )
    served = load_verified(again.event, again.artifact, KEY)
    xs = [p.features for p, _ in outcomes(50)]
    assert [served.predict_one(x) for x in xs] == [older.predict_one(x) for x in xs]
    assert retrainer.adopt(rollback, older) is None and retrainer.version == 3


def test_large_artifacts_are_left_out_of_the_event() -> None:
    spec = dataclasses.replace(LR, max_inline_bytes=100)
    release = Retrainer("m", spec, KEY).learn_many(outcomes(400))[0]
    assert release.event.artifact is None and release.event.artifact_size == len(release.artifact)
    assert pickle.loads(pickle.dumps(release)) == release


def test_an_adopted_rollback_is_scored_over_the_refresh_window() -> None:
    spec = dataclasses.replace(LR, refresh_every=250, refresh_window=1000)
    retrainer = Retrainer("m", spec, KEY)
    first = retrainer.learn_many(outcomes(400))[0]
    older = load_verified(first.event, first.artifact, KEY)
    rollback = dataclasses.replace(first.event, version=2, reason="rollback", parent_version=1)
    assert retrainer.adopt(rollback, older) is None and retrainer.version == 2
    assert retrainer._refresh is not None and retrainer._refresh.window == 1000
    assert retrainer._served is not older  # a frozen copy: the champion keeps learning
