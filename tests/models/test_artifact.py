"""Signed artifacts: what is signed, what is refused, and the sign test behind promotions."""

from __future__ import annotations

import base64
import dataclasses
import pickle
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from retrain_helpers import KEY, outcomes
from scipy import stats

from driftline.events import ModelVersion
from driftline.models import (
    FLAVOR,
    LEARNERS,
    ArtifactError,
    PairedTally,
    load_verified,
    make_learner,
    pack,
    sign,
    sign_test,
)
from driftline.models.artifact import artifact_bytes, digest, signing_payload


def _signed(data: bytes) -> ModelVersion:
    event = ModelVersion("m", 3, 100, "drift", FLAVOR, digest(data), "", {"events": 5.0}, 2, "a1")
    return sign(event, KEY)


def test_the_signed_payload_is_the_documented_canonical_json() -> None:
    event = _signed(pack([1]))
    assert signing_payload(event) == (
        b'{"created_ts":100,"flavor":"river","model":"m","parent_version":2,"reason":"drift",'
        b'"scheme":"driftline.model-version.v1","sha256":"' + event.sha256.encode() + b'",'
        b'"trigger_alert_id":"a1","version":3}'
    )


@pytest.mark.parametrize(
    "change",
    [
        {"model": "n"},
        {"version": 4},
        {"created_ts": 101},
        {"reason": "manual"},
        {"flavor": "other"},
        {"parent_version": None},
        {"trigger_alert_id": "a2"},
        {"signature": ""},
        {"signature": "0" * 64},
    ],
)
def test_any_change_to_the_signed_metadata_is_refused(change: dict[str, object]) -> None:
    data = pack({"w": 1})
    event = dataclasses.replace(_signed(data), **change)  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match=r"refusing to load|unsigned"):
        load_verified(event, data, KEY)


def test_tampered_bytes_and_bombs_are_refused_before_unpickling() -> None:
    data = pack({"w": 1})
    event = _signed(data)
    with pytest.raises(ArtifactError, match="do not match the signed sha256"):
        load_verified(event, data[:-1] + b"\x00", KEY)
    bomb = zlib.compress(b"\x00" * (1 << 20))
    with pytest.raises(ArtifactError, match="more than 1000 bytes"):
        load_verified(_signed(bomb), bomb, KEY, max_bytes=1000)
    with pytest.raises(ArtifactError, match="at least 16 bytes"):
        load_verified(event, data, b"short")
    assert load_verified(event, data, KEY) == {"w": 1}


def test_inline_artifacts_must_be_base64() -> None:
    event = dataclasses.replace(_signed(b"x"), artifact="not base64!")
    with pytest.raises(ArtifactError, match="base64"):
        artifact_bytes(event)
    good = dataclasses.replace(event, artifact=base64.b64encode(b"x").decode())
    assert artifact_bytes(good) == b"x"


@given(st.integers(0, 60), st.integers(0, 60))
def test_sign_test_is_the_exact_binomial_tail(wins: int, losses: int) -> None:
    if wins + losses == 0:
        assert sign_test(wins, losses) == 1.0
        return
    exact = stats.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue
    assert sign_test(wins, losses) == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_verdict_needs_events_margin_and_significance() -> None:
    tally = PairedTally("classification")
    for _ in range(30):
        tally.add(0, 1, 1)  # b right, a wrong
    for _ in range(70):
        tally.add(1, 1, 1)
    assert not tally.verdict(margin=0.05, alpha=0.01, min_paired=101).promote  # too few
    assert not tally.verdict(margin=0.35, alpha=0.01, min_paired=100).promote  # gain 0.3
    assert tally.verdict(margin=0.05, alpha=0.01, min_paired=100).promote
    even = PairedTally("classification")
    for a, b in [(0, 1), (1, 0)] * 200:
        even.add(a, b, 1)
    assert not even.verdict(margin=0.0, alpha=0.01, min_paired=10).promote


def test_regression_tally_uses_absolute_errors_and_relative_margin() -> None:
    tally = PairedTally("regression")
    for _ in range(50):
        tally.add(2.0, 1.2, 1.0)  # errors 1.0 and 0.2
    tally.add(None, 1.0, 1.0)  # an unusable prediction loses
    assert tally.a_wins == 0 and tally.b_wins == 51
    assert tally.gain() == pytest.approx(1 - 10 / 50)
    assert tally.metrics("champion", "challenger")["challenger_mae"] == pytest.approx(10 / 51)


FLAVORS = [(task, name) for task, names in LEARNERS.items() for name in names]


@pytest.mark.parametrize(("task", "name"), FLAVORS)
def test_every_learner_learns_pickles_and_predicts_the_same_after(task: str, name: str) -> None:
    """The flavor contract: every registered learner passes it."""
    data = outcomes(400, regression=task == "regression", seed=9)
    learner = make_learner(name, task, seed=3)  # type: ignore[arg-type]
    for p, y in data[:300]:
        learner.predict_one(p.features)
        learner.learn_one(p.features, y.label)
    copy = pickle.loads(pickle.dumps(learner))
    said = [learner.predict_one(p.features) for p, _ in data[300:]]
    assert said == [copy.predict_one(p.features) for p, _ in data[300:]]
    assert all(s is not None for s in said)
    if task == "classification":
        right = sum(s == y.label for s, (_, y) in zip(said, data[300:], strict=True))
        assert right >= 65  # 100 events of a learnable rule: far above chance
    for p, y in data[300:310]:  # and learning goes on after a round trip
        copy.learn_one(p.features, y.label)


def test_unknown_learner_names_say_which_exist() -> None:
    with pytest.raises(Exception, match="logistic_regression"):
        make_learner("svm", "classification")
