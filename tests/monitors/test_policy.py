"""The alert policy: lifecycle, cooldown, one alert per change, ids, severity, segments, and
alerts that follow the contract (driftline's codec and the jsonschema package both check)."""

from __future__ import annotations

import itertools
import json
import pickle
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from driftline.codec import encode, validate
from driftline.errors import ConfigError
from driftline.events import Alert
from driftline.monitors.base import Signal
from driftline.monitors.policy import DEFAULT_RULES, AlertPolicy, AlertRules

SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "contracts" / "alert.schema.json"
VALIDATOR = Draft202012Validator(json.loads(SCHEMA.read_text()))
HOUR = 3_600_000


def check_contract(alert: Alert) -> None:
    doc = orjson.loads(encode(alert))
    validate("alert", doc)
    VALIDATOR.validate(doc)
    assert re.fullmatch(r"[0-9a-f]{32}", alert.alert_id)
    assert "\n" not in alert.message


def sig(
    ts: int, drifting: bool = True, statistic: float = 0.3, threshold: float = 0.2, **kw: Any
) -> Signal:
    window = kw.pop("window", {"current_size": 500, "reference_size": 1000})
    return Signal(0, ts, drifting, statistic, threshold, kw.pop("p_value", None), window)


def psi(policy: AlertPolicy, signal: Signal, segment: dict[str, str] | None = None) -> list[Alert]:
    return policy.observe("fraud", "7", "data_drift", "amount", segment, "psi", signal)


def adwin(policy: AlertPolicy, signal: Signal, model: str = "fraud") -> list[Alert]:
    return policy.observe(model, 7, "concept_drift", None, None, "adwin", signal)


# -- lifecycle ------------------------------------------------------------------------------------


def test_window_test_fires_and_resolves() -> None:
    policy = AlertPolicy()
    [fired] = psi(policy, sig(1000, p_value=1e-9))
    [resolved] = psi(policy, sig(9000, drifting=False, statistic=0.05))
    assert (fired.status, fired.severity, fired.event_ts) == ("firing", "warning", 1000)
    assert (resolved.status, resolved.severity, resolved.event_ts) == ("resolved", "info", 9000)
    assert fired.model_version == "7" and fired.feature == "amount" and fired.p_value == 1e-9
    assert fired.window == {"current_size": 500, "reference_size": 1000}
    assert policy.firing() == []
    for alert in (fired, resolved):
        check_contract(alert)


def test_a_double_signal_raises_one_alert() -> None:
    policy = AlertPolicy()
    assert len(adwin(policy, sig(1000))) == 1
    assert adwin(policy, sig(1010)) == []  # ADWIN's second detection of the same change
    assert psi(policy, sig(1020)) != []  # another key is another alert
    assert psi(policy, sig(1030)) == []


def test_change_points_resolve_after_quiet_event_time_on_tick() -> None:
    policy = AlertPolicy(AlertRules(resolve_after_ms=HOUR))
    adwin(policy, sig(0))
    assert policy.tick("fraud", HOUR - 1) == []
    assert policy.tick("other-model", 10 * HOUR) == []
    [resolved] = policy.tick("fraud", HOUR)
    assert (resolved.status, resolved.event_ts, resolved.detector) == ("resolved", HOUR, "adwin")
    assert resolved.statistic is None and "no new adwin signal" in resolved.message
    check_contract(resolved)


def test_a_new_signal_keeps_a_change_point_alert_firing() -> None:
    policy = AlertPolicy(AlertRules(resolve_after_ms=HOUR))
    adwin(policy, sig(0))
    adwin(policy, sig(HOUR - 10))
    assert policy.tick("fraud", HOUR + 10) == []
    assert [a.status for a in policy.tick("fraud", 2 * HOUR)] == ["resolved"]


def test_expiry_is_checked_on_later_signals_of_the_model() -> None:
    policy = AlertPolicy(AlertRules(resolve_after_ms=HOUR, cooldown_ms=0))
    adwin(policy, sig(0))
    alerts = psi(policy, sig(2 * HOUR))
    assert [(a.detector, a.status) for a in alerts] == [("adwin", "resolved"), ("psi", "firing")]


def test_change_points_can_resolve_after_a_number_of_events() -> None:
    policy = AlertPolicy(AlertRules(resolve_after_ms=None, resolve_after_events=1000))
    adwin(policy, sig(0))
    assert policy.tick("fraud", 10, events=999) == []
    assert [a.status for a in policy.tick("fraud", 20, events=1)] == ["resolved"]


def test_window_tests_do_not_expire() -> None:
    policy = AlertPolicy(AlertRules(resolve_after_ms=HOUR))
    psi(policy, sig(0))
    assert policy.tick("fraud", 100 * HOUR) == []
    assert len(policy.firing()) == 1


# -- cooldown -------------------------------------------------------------------------------------


def test_cooldown_holds_a_refiring_until_it_ends() -> None:
    policy = AlertPolicy(AlertRules(cooldown_ms=HOUR))
    psi(policy, sig(0))
    psi(policy, sig(100, drifting=False))
    assert psi(policy, sig(200)) == []  # flapping: held back
    assert policy.tick("fraud", HOUR - 1) == []
    [late] = policy.tick("fraud", HOUR)
    assert (late.status, late.event_ts) == ("firing", 200)  # the event that made it fire


def test_a_held_firing_is_dropped_if_the_problem_goes_away() -> None:
    policy = AlertPolicy(AlertRules(cooldown_ms=HOUR))
    psi(policy, sig(0))
    psi(policy, sig(100, drifting=False))
    psi(policy, sig(200))
    assert psi(policy, sig(300, drifting=False)) == []
    assert policy.tick("fraud", 2 * HOUR) == []


def test_a_held_change_point_is_dropped_once_it_is_stale() -> None:
    rules = AlertRules(cooldown_ms=2 * HOUR, resolve_after_ms=None, resolve_after_events=10)
    policy = AlertPolicy(rules)
    adwin(policy, sig(0))
    policy.tick("fraud", 10, events=10)  # resolved
    assert adwin(policy, sig(20)) == []  # held: cooling down
    assert policy.tick("fraud", 30, events=10) == []  # stale before the cooldown ends
    assert policy.tick("fraud", 3 * HOUR) == []


# -- ids, severity, segments, messages ------------------------------------------------------------


def script(policy: AlertPolicy) -> list[Alert]:
    out = psi(policy, sig(0)) + psi(policy, sig(10, drifting=False)) + adwin(policy, sig(20))
    out += psi(policy, sig(2 * HOUR)) + psi(policy, sig(2 * HOUR), {"a": "b"})
    return out + policy.tick("fraud", 20 * HOUR)


def test_ids_are_deterministic_and_distinct() -> None:
    first, second = script(AlertPolicy()), script(AlertPolicy())
    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    assert len({a.alert_id for a in first}) == len(first) == 6


def test_state_pickles_mid_stream() -> None:
    policy = AlertPolicy()
    psi(policy, sig(0))
    adwin(policy, sig(5))
    restored = pickle.loads(pickle.dumps(policy))
    later = [
        psi(p, sig(10, drifting=False)) + p.tick("fraud", 30 * HOUR) for p in (policy, restored)
    ]
    assert later[0] == later[1] and len(later[0]) == 2


@pytest.mark.parametrize(
    ("statistic", "threshold", "severity"),
    [(0.39, 0.2, "warning"), (0.4, 0.2, "critical"), (5.0, 0.0, "warning"), (0.2, 0.2, "warning")],
)
def test_severity_from_statistic_over_threshold(
    statistic: float, threshold: float, severity: str
) -> None:
    [alert] = psi(AlertPolicy(), sig(0, statistic=statistic, threshold=threshold))
    assert alert.severity == severity


def test_critical_ratio_is_a_rule() -> None:
    [alert] = psi(AlertPolicy(AlertRules(critical_ratio=1.5)), sig(0, statistic=0.31))
    assert alert.severity == "critical"


def test_segments_are_separate_keys_and_order_free() -> None:
    policy = AlertPolicy()
    [web] = psi(policy, sig(0), {"channel": "web", "region": "eu"})
    assert psi(policy, sig(1), {"region": "eu", "channel": "web"}) == []
    [app] = psi(policy, sig(2), {"channel": "app"})
    [whole] = psi(policy, sig(3))
    assert web.segment == {"channel": "web", "region": "eu"} and whole.segment is None
    assert "segment channel=web,region=eu" in web.message
    assert len({web.alert_id, app.alert_id, whole.alert_id}) == 3
    check_contract(web)


def test_message_is_one_actionable_line_of_statistics() -> None:
    window = {"current_size": 500, "reference_size": 1000, "loss_cut": 123.456}
    [alert] = psi(AlertPolicy(), sig(0, statistic=0.31, p_value=1e-9, window=window))
    assert alert.message == (
        "model fraud v7: feature amount drifted: psi 0.31 >= 0.2 (p=1e-09) over 500 events "
        "vs reference of 1000; check the upstream data source"
    )
    [concept] = adwin(AlertPolicy(), sig(0, statistic=0.31, threshold=0.1, window=None))
    assert concept.message == (
        "model fraud v7: error rate rose: adwin 0.31 >= 0.1; check label quality, then consider "
        "retraining"
    )


def test_non_finite_statistics_become_null() -> None:
    [alert] = psi(AlertPolicy(), sig(0, statistic=float("inf")))
    assert alert.statistic is None and alert.severity == "critical"
    check_contract(alert)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown alert kind"):
        AlertPolicy().observe("m", None, "weather", None, None, "psi", sig(0))  # type: ignore[arg-type]


def test_rules_round_trip_and_validate() -> None:
    rules = AlertRules(cooldown_ms=5, change_point_detectors=("x",))
    assert AlertRules(**json.loads(json.dumps(rules.to_dict()))) == rules
    assert DEFAULT_RULES.resolve_after_ms == 6 * HOUR
    for bad in ({"critical_ratio": 0.5}, {"cooldown_ms": -1}, {"resolve_after_ms": 0}):
        with pytest.raises(ConfigError):
            AlertRules(**bad)


# -- property: any sequence of signals gives a well-formed lifecycle ------------------------------

KEYS = st.tuples(
    st.sampled_from(["fraud", "churn"]),
    st.sampled_from(["data_drift", "concept_drift", "performance", "data_quality"]),
    st.sampled_from([None, "amount", "pays 🌍"]),
    st.sampled_from([None, {"channel": "web"}, {"channel": "app", "region": "eu"}]),
    st.sampled_from(["psi", "adwin", "error_rate", "accuracy_drop"]),
)
STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("signal"),
            KEYS,
            st.booleans(),
            st.floats(-10, 10, allow_nan=False) | st.just(float("inf")),
            st.floats(0, 1),
            st.none() | st.floats(0, 1),
        ),
        st.tuples(st.just("tick"), st.sampled_from(["fraud", "churn"]), st.integers(0, 5000)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    steps=STEPS,
    gaps=st.lists(st.integers(-HOUR, 3 * HOUR), min_size=60, max_size=60),
    cooldown=st.sampled_from([0, HOUR]),
    resolve=st.sampled_from([None, HOUR, 2 * HOUR]),
    resolve_events=st.sampled_from([None, 500]),
)
def test_any_signal_sequence_gives_a_well_formed_lifecycle(
    steps: list[Any],
    gaps: list[int],
    cooldown: int,
    resolve: int | None,
    resolve_events: int | None,
) -> None:
    rules = AlertRules(
        cooldown_ms=cooldown, resolve_after_ms=resolve, resolve_after_events=resolve_events
    )
    policy = AlertPolicy(rules)
    ts, alerts = 1_700_000_000_000, []
    for step, gap in zip(steps, gaps, strict=False):
        ts = max(0, ts + gap)
        if step[0] == "tick":
            alerts += policy.tick(step[1], ts, events=step[2])
            continue
        _, (model, kind, feature, segment, detector), drifting, statistic, threshold, p = step
        signal = Signal(0, ts, drifting, statistic, threshold, p, {"current_size": 10})
        alerts += policy.observe(model, "v1", kind, feature, segment, detector, signal)
    replay = pickle.loads(pickle.dumps(policy))
    assert replay.firing() == policy.firing()
    states: dict[Any, list[str]] = defaultdict(list)
    for alert in alerts:
        check_contract(alert)
        segment = tuple(sorted((alert.segment or {}).items()))
        states[(alert.model, alert.kind, alert.feature, segment, alert.detector)].append(
            alert.status
        )
    for history in states.values():
        assert history[0] == "firing"
        assert all(a != b for a, b in itertools.pairwise(history)), history
    assert len({a.alert_id for a in alerts}) == len(alerts)
    assert len(policy.firing()) == sum(h[-1] == "firing" for h in states.values())
