"""Everything watched for one model: its features, its outputs, its errors and its performance.

:class:`ModelMonitor` takes batches of predictions and of joined (prediction, label) pairs, turns
them into numpy columns, feeds each column's detectors in one call, and passes their signals to
the :class:`~driftline.monitors.policy.AlertPolicy`, which makes the alerts. Which detectors, with
which thresholds, comes from a :class:`~driftline.monitors.spec.MonitorSpec`.

What is watched, per segment (the whole model, plus each value of ``spec.segment_by`` tags):

======================= ============================== =====================================
stream                  detector                       alert kind
======================= ============================== =====================================
each numeric feature    ``spec.numeric_test`` (PSI)    ``data_drift``
each categorical one    Jensen-Shannon, unseen share   ``data_drift``
each feature            missing-value rate             ``data_quality``
the prediction          PSI or Jensen-Shannon          ``prediction_drift``
each class score        PSI                            ``prediction_drift``
errors (labelled)       ``spec.concept_detector``      ``concept_drift``
errors (labelled)       accuracy drop (classifiers)    ``performance``
======================= ============================== =====================================
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from driftline.events import Alert, AlertKind, Label, Prediction
from driftline.monitors.base import REGISTRY, Detector
from driftline.monitors.categorical import CategoricalDrift, UnseenCategories
from driftline.monitors.concept import LossIncreaseCUSUM
from driftline.monitors.missing import MissingRate
from driftline.monitors.numeric import KSDrift, NumericDrift, WassersteinDrift
from driftline.monitors.performance import AccuracyDrop, ModelPerformance, class_key, class_keys
from driftline.monitors.policy import AlertPolicy
from driftline.monitors.spec import MonitorSpec

__all__ = ["ModelMonitor"]

_NUMERIC = {"psi": NumericDrift, "ks": KSDrift, "wasserstein": WassersteinDrift}
_OTHER = "other"
_NUMERIC_TYPES = frozenset({int, float, bool, type(None)})
_DICT: frozenset[type] = frozenset({dict})
_FEATURES, _SCORES = operator.attrgetter("features"), operator.attrgetter("scores")
_PREDICTION, _VERSION = operator.attrgetter("prediction"), operator.attrgetter("model_version")
_LABEL = operator.attrgetter("label")
Segment = tuple[tuple[str, str], ...]


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _numeric_column(values: Sequence[Any]) -> npt.NDArray[np.float64]:
    """Numbers as floats (booleans as 0 and 1); anything else is missing (NaN)."""
    if set(map(type, values)) <= _NUMERIC_TYPES:  # the common case, in C (numpy: None -> NaN)
        return np.array(values, dtype=np.float64)
    return np.array(  # a string or an object among them: value by value
        [float(v) if type(v) in (int, float, bool) else math.nan for v in values],
        dtype=np.float64,
    )


def _categorical_column(values: Sequence[Any]) -> npt.NDArray[np.object_]:
    """Class keys (:func:`~driftline.monitors.performance.class_key`); None stays missing."""
    column = np.empty(len(values), dtype=object)
    if type(None) in set(map(type, values)):
        column[:] = [None if v is None else class_key(v) for v in values]
    else:
        column[:] = class_keys(values)
    return column


class _Watch:
    """One stream (a feature, the prediction, a score) and the detectors on it."""

    def __init__(
        self, kind: AlertKind, name: str | None, numeric: bool, detectors: list[Detector]
    ) -> None:
        self.kind = kind  # the alert kind of drift detectors: data_drift or prediction_drift
        self.name = name
        self.numeric = numeric
        self.detectors = detectors

    def column(self, values: Sequence[Any]) -> npt.NDArray[Any]:
        return _numeric_column(values) if self.numeric else _categorical_column(values)


class ModelMonitor:
    """The monitors of one model. Pure: event times come from the events."""

    def __init__(
        self,
        model: str,
        spec: MonitorSpec | None = None,
        reference: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        """``reference``: feature values to compare with (e.g. the training set), by feature name;
        features without one use their first ``spec.window.reference_size`` values."""
        self.model = model
        self.spec = spec or MonitorSpec()
        self.reference = dict(reference or {})
        self._reset()

    def _reset(self) -> None:
        self.policy = AlertPolicy()
        self._inputs: dict[Segment, dict[str, _Watch]] = {}
        self._outcomes: dict[Segment, list[tuple[AlertKind, Detector]]] = {}
        self._segments: set[Segment] = set()
        self._task: str | None = self.spec.task
        self.performance: ModelPerformance | None = None
        self._n_tests: int | None = None

    # -- public -------------------------------------------------------------------------------

    def observe_predictions(self, batch: Sequence[Prediction]) -> list[Alert]:
        """Feature and prediction drift over a batch of this model's predictions."""
        if not batch:
            return []
        if self._n_tests is None:
            self._n_tests = self._count_tests(batch[0])
        alerts: list[Alert] = []
        for segment, rows in self._split(batch):
            watches = self._inputs.setdefault(segment, {})
            columns = self._gather(watches, rows)
            if columns is None:  # something new, or unusual, in these rows
                self._discover(watches, rows)
                features = [p.features for p in rows]
                columns = {key: self._values(key, rows, features) for key in watches}
            ts = np.array([p.ts or 0 for p in rows], dtype=np.int64)
            version = rows[-1].model_version
            for key, watch in watches.items():
                column = watch.column(columns[key])
                for detector in watch.detectors:
                    kind = "data_quality" if isinstance(detector, MissingRate) else watch.kind
                    alerts += self._signals(
                        detector, column, ts, kind, watch.name, segment, version
                    )
        return alerts

    def observe_outcomes(self, pairs: Sequence[tuple[Prediction, Label]]) -> list[Alert]:
        """Concept drift and performance over a batch of joined predictions and labels."""
        if not pairs:
            return []
        if self._task is None:
            p, y = pairs[0]
            floats = any(
                type(v) is float and not float(v).is_integer() for v in (p.prediction, y.label)
            )
            self._task = "regression" if floats else "classification"
        if self.performance is None:
            self.performance = ModelPerformance(self._task)  # type: ignore[arg-type]
        alerts: list[Alert] = []
        for segment, rows in self._split([p for p, _ in pairs], pairs):
            detectors = self._outcomes.setdefault(segment, self._outcome_detectors())
            preds, ys = [p for p, _ in rows], [y for _, y in rows]
            labels, predicted = list(map(_LABEL, ys)), list(map(_PREDICTION, preds))
            ts = np.maximum(  # an outcome's time: the later of its two events
                np.array([p.ts or 0 for p in preds], dtype=np.int64),
                np.array([y.ts or 0 for y in ys], dtype=np.int64),
            )
            errors = self._errors(predicted, labels)
            version = rows[-1][0].model_version
            if not segment:
                versions = list(map(_VERSION, preds))
                if versions.count(versions[0]) == len(versions):  # one version: one update
                    scores = list(map(_SCORES, preds))
                    self.performance.update(versions[0], labels, predicted, scores)
                else:
                    self._update_performance(self.performance, rows)
            for kind, detector in detectors:
                alerts += self._signals(detector, errors, ts, kind, None, segment, version)
        return alerts

    def tick(self, event_ts: int) -> list[Alert]:
        """Let time pass to ``event_ts``: the alerts of change points that went quiet resolve."""
        return self.policy.tick(self.model, event_ts)

    def statistics(self) -> Iterator[tuple[str, str, float]]:
        """``(stream, detector, statistic)`` of the whole-model input detectors (not the
        segments'), for metrics: the latest value of each that has one. Statistics only."""
        for watch in self._inputs.get((), {}).values():
            for detector in watch.detectors:
                value = detector.statistic
                if value is not None:
                    yield str(watch.name), detector.name, float(value)

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _update_performance(
        performance: ModelPerformance, rows: Sequence[tuple[Prediction, Label]]
    ) -> None:
        """Performance is kept per model version: one update per version present in the batch."""
        by_version: dict[str | int | None, list[tuple[Prediction, Label]]] = {}
        for row in rows:
            by_version.setdefault(row[0].model_version, []).append(row)
        for version, group in by_version.items():
            performance.update(
                version,
                [y.label for _, y in group],
                [p.prediction for p, _ in group],
                [p.scores for p, _ in group],
            )

    def _signals(
        self,
        detector: Detector,
        values: npt.NDArray[Any],
        ts: npt.NDArray[np.int64],
        kind: AlertKind,
        feature: str | None,
        segment: Segment,
        version: str | int | None,
    ) -> list[Alert]:
        out: list[Alert] = []
        for signal in detector.update_many(values, ts):
            out += self.policy.observe(
                model=self.model,
                model_version=version,
                kind=kind,
                feature=feature,
                segment=dict(segment) or None,
                detector=detector.name,
                signal=signal,
            )
        return out

    def _split(self, predictions: Sequence[Prediction], rows: Sequence[Any] | None = None):  # type: ignore[no-untyped-def]
        """The whole batch for the model, then the rows of each segment of ``segment_by``."""
        items = list(rows if rows is not None else predictions)
        yield (), items
        for tag in self.spec.segment_by:
            groups: dict[Segment, list[Any]] = {}
            for p, item in zip(predictions, items, strict=True):
                value = (p.tags or {}).get(tag)
                if value is None:
                    continue
                segment: Segment = ((tag, value),)
                if segment not in self._segments:
                    if len(self._segments) >= self.spec.max_segments:
                        segment = ((tag, _OTHER),)
                    self._segments.add(segment)
                groups.setdefault(segment, []).append(item)
            yield from sorted(groups.items())

    def _count_tests(self, first: Prediction) -> int:
        scores = len(first.scores or {})
        return max(1, len(first.features) + 1 + scores)

    def _alpha(self) -> float:
        return self.spec.family_alpha / (self._n_tests or 1)

    @staticmethod
    def _gather(
        watches: Mapping[str, _Watch], rows: Sequence[Prediction]
    ) -> dict[str, Sequence[Any]] | None:
        """Each watched stream's values over ``rows`` (as :meth:`_values` gives them), taken in
        C; None unless every row holds exactly the watched features and scores, in dicts.

        Then no row has anything to discover: a row with as many keys as the watched names,
        all of them among its keys, has no other key.
        """
        if "prediction" not in watches:
            return None
        out: dict[str, Sequence[Any]] = {"prediction": list(map(_PREDICTION, rows))}
        for prefix, maps in (("f:", list(map(_FEATURES, rows))), ("s:", list(map(_SCORES, rows)))):
            names = [key[2:] for key in watches if key.startswith(prefix)]
            if not names:
                if any(maps):  # features or scores where none are watched
                    return None
                continue
            if set(map(type, maps)) != _DICT or set(map(len, maps)) != {len(names)}:
                return None
            try:
                table = list(map(operator.itemgetter(*names), maps))
            except KeyError:
                return None
            values: Iterable[Sequence[Any]] = (
                zip(*table, strict=True) if len(names) > 1 else [table]
            )
            out.update(zip([prefix + name for name in names], values, strict=True))
        return out

    def _discover(self, watches: dict[str, _Watch], rows: Sequence[Prediction]) -> None:
        """Create detectors for streams seen for the first time, with kinds from their values."""
        features = {key[2:] for key in watches if key.startswith("f:")}
        scores = {key[2:] for key in watches if key.startswith("s:")}
        for p in rows:
            if (
                p.features.keys() <= features
                and (not p.scores or p.scores.keys() <= scores)
                and "prediction" in watches
            ):
                continue  # the common case: nothing new in this event
            for name, value in p.features.items():
                key = "f:" + name
                if key not in watches and value is not None:
                    numeric = self._kind(name, value)
                    watches[key] = self._watch(
                        "data_drift", name, numeric, reference=self.reference.get(name)
                    )
                    features.add(name)
            if "prediction" not in watches:
                numeric = self._task == "regression" or type(p.prediction) is float
                watches["prediction"] = self._watch(
                    "prediction_drift", "prediction", numeric, missing=False
                )
            for label in p.scores or {}:
                key = "s:" + label
                if key not in watches:
                    watches[key] = self._watch(
                        "prediction_drift", f"scores.{label}", True, missing=False
                    )
                    scores.add(label)

    def _kind(self, name: str, value: Any) -> bool:
        kind = self.spec.features.get(name)
        return kind == "numeric" if kind is not None else _is_number(value)

    def _watch(
        self,
        kind: AlertKind,
        name: str,
        numeric: bool,
        missing: bool = True,
        reference: Sequence[Any] | None = None,
    ) -> _Watch:
        spec, alpha = self.spec, self._alpha()
        common: dict[str, Any] = {
            "alpha": alpha,
            "persistence": spec.persistence,
            "window": spec.window,
        }
        if reference is not None:  # the same column encoding as the live values
            column = _numeric_column(reference) if numeric else _categorical_column(reference)
            common["reference"] = column
        detectors: list[Detector]
        if numeric:
            scan = spec.shift_scan.for_tests(self._n_tests or 1) if spec.shift_scan else None
            window = spec.window  # with a scan, which catches clear shifts between checks:
            if scan is not None:  # checked less often (the missing rate is not scanned)
                window = replace(window, check_every=spec.scanned_check_every)
            test = _NUMERIC[spec.numeric_test]
            options = {**common, "window": window}
            detectors = [test(threshold=spec.numeric_threshold, scan=scan, **options)]
        else:
            detectors = [
                CategoricalDrift(threshold=spec.categorical_threshold, **common),
                UnseenCategories(**common),
            ]
        if missing:
            detectors.append(MissingRate(threshold=spec.missing_threshold, **common))
        return _Watch(kind, name, numeric, detectors)

    @staticmethod
    def _values(
        key: str, rows: Sequence[Prediction], features: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        if key == "prediction":
            return [p.prediction for p in rows]
        if key.startswith("s:"):
            label = key[2:]
            return [(p.scores or {}).get(label) for p in rows]
        name = key[2:]
        return [f.get(name) for f in features]

    def _outcome_detectors(self) -> list[tuple[AlertKind, Detector]]:
        if self._task == "regression":
            return [("concept_drift", LossIncreaseCUSUM())]
        factory: Callable[[], Detector] = REGISTRY[self.spec.concept_detector]
        drop = AccuracyDrop(persistence=self.spec.persistence, window=self.spec.window)
        return [("concept_drift", factory()), ("performance", drop)]

    def _errors(self, predicted: list[Any], labels: list[Any]) -> npt.NDArray[np.float64]:
        if self._task == "regression":
            p, y = _numeric_column(predicted), _numeric_column(labels)
            return np.abs(p - y)
        kinds = set(map(type, predicted))
        if len(kinds) == 1 and set(map(type, labels)) == kinds:  # one type: compare in C
            return np.array(list(map(operator.ne, predicted, labels)), dtype=np.float64)
        return np.array(
            [
                (a != b) if type(a) is type(b) else class_key(a) != class_key(b)
                for a, b in zip(predicted, labels, strict=True)
            ],
            dtype=np.float64,
        )
