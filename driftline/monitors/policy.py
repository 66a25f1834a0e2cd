"""From detector signals to contract alerts: severity, lifecycle, cooldown, stable ids.

An alert is about a *key*: ``(model, kind, feature, segment, detector)``. Its lifecycle is
``firing`` then ``resolved``, then maybe ``firing`` again; never two ``firing`` in a row.

- **Firing.** A ``drifting=True`` signal on a key that is not firing raises a ``firing`` alert,
  unless the key is cooling down (its last firing alert is less than ``cooldown_ms`` of event
  time old): the signal is then held, and fires when the cooldown ends if the problem is still
  there (a window test has not recovered; a change point has not expired). Further signals on a
  firing key raise nothing: one alert per change.
- **Resolving.** Window tests resolve their alert with a ``drifting=False`` signal. Change-point
  detectors (names in :attr:`AlertRules.change_point_detectors`) never send one: their alert
  resolves after ``resolve_after_ms`` of event time (or ``resolve_after_events`` events, counted
  by :meth:`AlertPolicy.tick`) without a new signal. Expiry is checked on each later signal of
  the same model and on :meth:`AlertPolicy.tick`, which the caller invokes once per batch.
- **Severity.** ``critical`` when ``statistic >= critical_ratio * threshold`` (threshold > 0),
  else ``warning``; ``info`` for ``resolved``.
- **Ids.** ``alert_id`` is the sha256 of (model, kind, feature, sorted segment, detector, status,
  event_ts, the key's alert number), first 32 hex digits: the same stream gives the same ids.

Event time only (no clock): "now" for a model is the largest event time seen for it. The rules
are a small serialisable spec, :class:`AlertRules`, kept apart from this code.

>>> from driftline.monitors.base import Signal
>>> policy = AlertPolicy()
>>> signal = Signal(0, 1_000, True, 0.31, 0.2, 1e-9, {"current_size": 500, "reference_size": 1000})
>>> [alert] = policy.observe("fraud", "7", "data_drift", "amount", None, "psi", signal)
>>> alert.status, alert.severity, alert.message
('firing', 'warning', 'model fraud v7: feature amount drifted: psi 0.31 >= 0.2 (p=1e-09) over 500 \
events vs reference of 1000; check the upstream data source')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from driftline.errors import ConfigError
from driftline.events import Alert, AlertKind, Severity
from driftline.monitors.base import Signal

__all__ = ["DEFAULT_RULES", "AlertPolicy", "AlertRules"]

Key: TypeAlias = tuple[str, AlertKind, str | None, tuple[tuple[str, str], ...], str]
Status: TypeAlias = Literal["firing", "resolved"]

_SUBJECTS: dict[str, str] = {
    "data_drift": "feature {feature} drifted",
    "prediction_drift": "model output {feature} drifted",
    "concept_drift": "error rate rose",
    "performance": "performance dropped",
    "label_delay": "labels are late",
    "data_quality": "feature {feature} data quality changed",
}
_ADVICE: dict[str, str] = {
    "data_drift": "check the upstream data source",
    "prediction_drift": "check the model's inputs and its latest deployment",
    "concept_drift": "check label quality, then consider retraining",
    "performance": "consider retraining or rolling back the model version",
    "label_delay": "check the label pipeline",
    "data_quality": "check the upstream data pipeline for missing or invalid values",
}
_CHANGE_POINT = ("adwin", "ddm", "hddm_a", "hddm_w", "fhddm", "page_hinkley", "error_rate",
                 "loss_increase")  # fmt: skip


@dataclass(frozen=True)
class AlertRules:
    """The alert policy's rules: plain data, serialisable with :meth:`to_dict`.

    ``cooldown_ms`` (default 1 h) and ``resolve_after_ms`` (default 6 h) are event time;
    ``resolve_after_events`` (default None: off) counts events passed to :meth:`AlertPolicy.tick`.
    ``advice`` ends each firing message, by alert kind.
    """

    critical_ratio: float = 2.0
    cooldown_ms: int = 3_600_000
    resolve_after_ms: int | None = 21_600_000
    resolve_after_events: int | None = None
    change_point_detectors: tuple[str, ...] = _CHANGE_POINT
    advice: Mapping[str, str] = field(default_factory=lambda: dict(_ADVICE))

    def __post_init__(self) -> None:
        if not self.critical_ratio >= 1.0:
            raise ConfigError(f"critical_ratio must be >= 1, got {self.critical_ratio}; e.g. 2.0")
        if self.cooldown_ms < 0:
            raise ConfigError(f"cooldown_ms must be >= 0, got {self.cooldown_ms}; e.g. 3600000")
        for name in ("resolve_after_ms", "resolve_after_events"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be > 0 or None (off), got {value}")
        object.__setattr__(self, "change_point_detectors", tuple(self.change_point_detectors))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``AlertRules(**rules.to_dict())`` gives the rules back."""
        out = dataclasses.asdict(self)
        out["change_point_detectors"] = list(self.change_point_detectors)
        out["advice"] = dict(self.advice)
        return out


DEFAULT_RULES = AlertRules()


@dataclass(slots=True)
class _KeyState:
    """Where one key is in its lifecycle."""

    change_point: bool
    firing: bool = False
    number: int = 0  # alerts raised on this key so far
    last_fired_ts: int | None = None
    last_signal_ts: int | None = None
    events_since_signal: int = 0
    held: tuple[str | int | None, Signal] | None = None  # a firing held back by the cooldown
    last: tuple[str | int | None, Signal] | None = None  # the latest drifting signal


class AlertPolicy:
    """Turns signals into :class:`~driftline.events.Alert` events. Pure; picklable state."""

    def __init__(self, rules: AlertRules = DEFAULT_RULES) -> None:
        self.rules = rules
        self._reset()

    def _reset(self) -> None:
        self._keys: dict[Key, _KeyState] = {}
        self._now: dict[str, int] = {}  # largest event time seen per model

    def observe(
        self,
        model: str,
        model_version: str | int | None,
        kind: AlertKind,
        feature: str | None,
        segment: Mapping[str, str] | None,
        detector: str,
        signal: Signal,
    ) -> list[Alert]:
        """The alerts one signal raises (and any expiries due at its event time)."""
        if kind not in _SUBJECTS:
            raise ValueError(f"unknown alert kind {kind!r}; use one of {sorted(_SUBJECTS)}")
        tags = tuple(sorted((str(k), str(v)) for k, v in (segment or {}).items()))
        key: Key = (model, kind, feature, tags, detector)
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState(detector in self.rules.change_point_detectors)
        alerts = self._expire(model, signal.ts)
        if signal.drifting:
            state.last_signal_ts, state.events_since_signal = signal.ts, 0
            state.last = (model_version, signal)
            if state.firing:
                return alerts
            cooling = state.last_fired_ts is not None and (
                signal.ts - state.last_fired_ts < self.rules.cooldown_ms
            )
            if cooling:
                state.held = (model_version, signal)
            else:
                alerts.append(self._alert(key, state, "firing", model_version, signal, signal.ts))
        else:
            state.held = None
            if state.firing:
                alerts.append(self._alert(key, state, "resolved", model_version, signal, signal.ts))
        return alerts

    def tick(self, model: str, event_ts: int, events: int = 0) -> list[Alert]:
        """Advance ``model``'s event time (``events`` more events seen); the expiries due."""
        for key, state in self._keys.items():
            if key[0] == model and state.last_signal_ts is not None:
                state.events_since_signal += events
        return self._expire(model, event_ts)

    def firing(self) -> list[Key]:
        """The keys whose alert is firing, in the order they were first seen."""
        return [key for key, state in self._keys.items() if state.firing]

    def _expire(self, model: str, event_ts: int) -> list[Alert]:
        now = self._now[model] = max(self._now.get(model, event_ts), event_ts)
        alerts: list[Alert] = []
        for key, state in self._keys.items():
            if key[0] != model:
                continue
            if state.firing and state.change_point and self._stale(state, now):
                version = state.last[0] if state.last else None
                at = self._resolved_at(state, now)
                alerts.append(self._alert(key, state, "resolved", version, None, at))
            held = state.held
            if held is not None and not state.firing and state.last_fired_ts is not None:
                if now - state.last_fired_ts < self.rules.cooldown_ms:
                    continue
                state.held = None
                if not (state.change_point and self._stale(state, now)):
                    version, signal = held
                    alerts.append(self._alert(key, state, "firing", version, signal, signal.ts))
        return alerts

    def _resolved_at(self, state: _KeyState, now: int) -> int:
        """When a stale change point resolved: ``resolve_after_ms`` after its last signal, so
        that the alert (and its id) does not depend on when the caller happened to look."""
        last, after = state.last_signal_ts, self.rules.resolve_after_ms
        if last is not None and after is not None and now - last >= after:
            return last + after
        return now

    def _stale(self, state: _KeyState, now: int) -> bool:
        """A change point's last signal is old enough for its alert to resolve."""
        rules, last = self.rules, state.last_signal_ts
        late_ms = (
            rules.resolve_after_ms is not None
            and last is not None
            and (now - last >= rules.resolve_after_ms)
        )
        late_events = rules.resolve_after_events is not None and (
            state.events_since_signal >= rules.resolve_after_events
        )
        return late_ms or late_events

    def _alert(
        self,
        key: Key,
        state: _KeyState,
        status: Status,
        version: str | int | None,
        signal: Signal | None,
        event_ts: int,
    ) -> Alert:
        model, kind, feature, tags, detector = key
        firing = status == "firing"
        state.firing, state.number = firing, state.number + 1
        if firing:
            state.last_fired_ts = event_ts
        fields = [model, kind, feature, tags, detector, status, event_ts, state.number]
        ident = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        severity: Severity = "info"
        if firing and signal is not None:
            ratio_hit = signal.threshold > 0 and (
                signal.statistic >= self.rules.critical_ratio * signal.threshold
            )
            severity = "critical" if ratio_hit else "warning"
        return Alert(
            alert_id=hashlib.sha256(ident).hexdigest()[:32],
            model=model,
            kind=kind,
            status=status,
            severity=severity,
            detector=detector,
            event_ts=int(event_ts),
            message=self._message(key, status, version, signal),
            model_version=version,
            feature=feature,
            segment=dict(tags) if tags else None,
            statistic=_number(signal.statistic) if signal else None,
            threshold=_number(signal.threshold) if signal else None,
            p_value=_number(signal.p_value) if signal and signal.p_value is not None else None,
            window=dict(signal.window) if signal and signal.window is not None else None,
        )

    def _message(
        self, key: Key, status: Status, version: str | int | None, signal: Signal | None
    ) -> str:
        model, kind, feature, tags, detector = key
        head = f"model {model}" + (f" v{version}" if version is not None else "")
        head += f" segment {','.join(f'{k}={v}' for k, v in tags)}" if tags else ""
        subject = _SUBJECTS[kind].format(feature=feature if feature is not None else "-")
        if status == "resolved":
            if signal is not None and not signal.drifting:
                return (
                    f"{head}: resolved ({subject}): {detector} now {signal.statistic:.3g} "
                    f"vs threshold {signal.threshold:.3g}"
                )
            return f"{head}: resolved ({subject}): no new {detector} signal since the change"
        if signal is None:  # not raised: a firing alert always comes from a signal
            return f"{head}: {subject}"
        test = (signal.window or {}).get("test", detector)  # a detector may run several tests
        text = f"{head}: {subject}: {test} {signal.statistic:.3g} >= {signal.threshold:.3g}"
        if signal.p_value is not None:
            text += f" (p={signal.p_value:.1g})"
        current, reference = _sizes(signal.window)
        if current is not None:
            text += f" over {current} events"
            if reference is not None:
                text += f" vs reference of {reference}"
        advice = self.rules.advice.get(kind)
        return text + (f"; {advice}" if advice else "")


def _sizes(window: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """The current and reference sizes a window reports, under the names detectors use."""
    if not window:
        return None, None
    current = window.get("current_size", window.get("current_events", window.get("events")))
    reference = window.get("reference_size", window.get("reference_events"))
    return (
        int(current) if isinstance(current, int | float) else None,
        int(reference) if isinstance(reference, int | float) else None,
    )


def _number(value: float) -> float | None:
    """A float the contract accepts (JSON has no NaN nor infinity)."""
    return float(value) if math.isfinite(value) else None
