"""Model performance: metrics over arrays, sliding windows per model version, a drop detector.

The metric functions take plain arrays (vectorised numpy). Class labels are compared through
:func:`class_key`, the string a label has as a key of a prediction's ``scores``: ``1``, ``1.0``
and ``"1"`` are the same class, ``True`` is ``"true"``.

:class:`PerformanceWindow` keeps one model version's metrics over the last ``window_size``
labelled events and since it started; :class:`ModelPerformance` keeps one per model version
(the most recently updated ``max_versions``). :class:`AccuracyDrop` (``"accuracy_drop"``,
alert kind ``performance``) is a window test on the per-event errors; :class:`RiverFHDDM`
(``"fhddm"``) is River's change detector on accuracy.

>>> window = PerformanceWindow("classification", window_size=3)
>>> window.update(np.array([1, 0, 1, 1]), np.array([1, 1, 1, 0]))
>>> window.metrics()["window"]["accuracy"], window.metrics()["cumulative"]["accuracy"]
(0.3333333333333333, 0.5)
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from driftline.errors import ConfigError
from driftline.events import Target
from driftline.monitors.base import InputKind, register
from driftline.monitors.concept import finite_values, fixed_point
from driftline.monitors.windows import WindowSpec, WindowTest

__all__ = [
    "ACCURACY_WINDOW",
    "AccuracyDrop",
    "Labels",
    "ModelPerformance",
    "PerformanceWindow",
    "Task",
    "accuracy",
    "class_key",
    "class_keys",
    "f1_score",
    "log_loss",
    "mae",
    "rmse",
    "true_class_probability",
]

Task: TypeAlias = Literal["classification", "regression"]
#: Class labels or predictions: a sequence of contract targets, or a numpy array of them.
Labels: TypeAlias = Sequence[Target] | npt.NDArray[Any]
#: Windows of :class:`AccuracyDrop`: reference 1000 errors, current 500, checked every 100
#: (summing 500 errors is cheap, and frequent checks keep the delay near 300 events).
ACCURACY_WINDOW = WindowSpec(reference_size=1000, window_size=500, check_every=100)
#: Probabilities are clipped to ``[EPS, 1 - EPS]`` before the log, as scikit-learn and River do.
EPS = 1e-15


def class_key(label: Target) -> str:
    """The key a class label has in ``scores``: JSON's spelling of booleans, integral numbers as
    integers.

    >>> [class_key(v) for v in (1, 1.0, "1", True, 0.5)]
    ['1', '1', '1', 'true', '0.5']
    """
    if isinstance(label, bool):
        return "true" if label else "false"
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def class_keys(labels: Sequence[Target]) -> list[str]:
    """:func:`class_key` of each label; in one C call when they are all strings or all ints.

    >>> class_keys([1, 0, 1]), class_keys(["a", "b"]), class_keys([1.0, True])
    (['1', '0', '1'], ['a', 'b'], ['1', 'true'])
    """
    kinds = set(map(type, labels))
    if kinds <= _STR:
        return list(labels)  # type: ignore[arg-type]
    if kinds <= _INT:
        return list(map(str, labels))
    return [class_key(v) for v in labels]


_STR: frozenset[type] = frozenset({str})
_INT: frozenset[type] = frozenset({int})


def _distinct(labels: Labels) -> tuple[list[str], npt.NDArray[np.intp]]:
    """The distinct class keys of ``labels`` (sorted) and each label's index among them."""
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "iub":
        values, inverse = np.unique(labels, return_inverse=True)  # keys of the few distinct only
        return [class_key(v) for v in values.tolist()], inverse.reshape(-1)
    items = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)
    kinds = set(map(type, items))
    if kinds and (kinds <= _INT or kinds <= _STR):  # the usual labels: a dict, no sort of keys
        order = sorted(set(items), key=str)  # numpy's order of the keys (code points)
        keys = list(map(str, order))
        if not any(key.endswith("\x00") for key in keys):  # numpy strings drop trailing NULs
            code = dict(zip(order, range(len(order)), strict=True))
            inverse = np.fromiter(map(code.__getitem__, items), dtype=np.intp, count=len(items))
            return keys, inverse
    unique, inverse = np.unique(np.array(class_keys(items), dtype=str), return_inverse=True)
    return unique.tolist(), inverse.reshape(-1)


def _keys(labels: Labels) -> npt.NDArray[np.str_]:
    """:func:`class_key` of each label."""
    keys, inverse = _distinct(labels)
    return np.array(keys, dtype=str)[inverse] if keys else np.array([], dtype=str)


def accuracy(y_true: Labels, y_pred: Labels) -> float:
    """Share of predictions equal to the label (by :func:`class_key`); NaN when empty."""
    t, p = _keys(y_true), _keys(y_pred)
    return float(np.mean(t == p)) if t.size else math.nan


def f1_score(y_true: Labels, y_pred: Labels, positive: Target | None = None) -> float:
    """Binary F1 of class ``positive``, or macro F1 over the classes seen in either array.

    A class never predicted nor true scores 0 (scikit-learn's ``zero_division=0``).

    >>> f1_score([0, 1, 1, 2], [0, 1, 2, 2]), f1_score([0, 1, 1], [1, 1, 1], positive=1)
    (0.7777777777777777, 0.8)
    """
    t, p = _keys(y_true), _keys(y_pred)
    classes, codes = np.unique(np.concatenate((t, p)), return_inverse=True)
    true_codes, pred_codes = codes[: t.size], codes[t.size :]
    return _f1(true_codes, pred_codes, classes.size, _code(classes, positive))


def _code(classes: npt.NDArray[np.str_], positive: Target | None) -> int | None:
    if positive is None:
        return None
    where = np.flatnonzero(classes == class_key(positive))
    return int(where[0]) if where.size else -1


def _f1(true: npt.NDArray[np.intp], pred: npt.NDArray[np.intp], k: int, pos: int | None) -> float:
    tp = np.bincount(true[true == pred], minlength=k)
    seen = np.bincount(true, minlength=k) + np.bincount(pred, minlength=k)
    return _f1_counts(tp.astype(np.float64), seen.astype(np.float64), pos)


def _f1_counts(
    tp: npt.NDArray[np.float64], seen: npt.NDArray[np.float64], pos: int | None
) -> float:
    """F1 from true positives and (true + predicted) counts per class code; ``pos=-1``: absent."""
    f1 = np.divide(2.0 * tp, seen, out=np.zeros(tp.size), where=seen > 0)
    if pos is not None:
        return float(f1[pos]) if pos >= 0 else 0.0
    present = seen > 0
    return float(f1[present].mean()) if present.any() else math.nan


def true_class_probability(
    y_true: Labels, scores: Sequence[Mapping[str, float] | None]
) -> npt.NDArray[np.float64]:
    """The probability each event's scores gave its true class (0 when absent; NaN: no scores)."""
    return _probability(_row_keys(*_distinct(y_true)), scores)


def _row_keys(keys: list[str], inverse: npt.NDArray[np.intp]) -> list[str]:
    """Each label's class key, from :func:`_distinct`'s answer."""
    return list(map(keys.__getitem__, inverse.tolist()))


def _probability(
    keys: list[str], scores: Sequence[Mapping[str, float] | None]
) -> npt.NDArray[np.float64]:
    """``scores[i][keys[i]]`` (0 when absent, NaN when ``scores[i]`` is None) as floats; in C
    when every row has a dict of numbers (the common case)."""
    if set(map(type, scores)) == _DICT:
        found = list(map(dict.get, scores, keys, itertools.repeat(0.0)))  # type: ignore[arg-type]
        if set(map(type, found)) <= _NUMBER:  # numpy converts them as float() does
            return np.array(found, dtype=np.float64)
    return np.array(
        [math.nan if s is None else float(s.get(k, 0.0)) for k, s in zip(keys, scores, strict=True)]
    )


_DICT: frozenset[type] = frozenset({dict})
_NUMBER: frozenset[type] = frozenset({int, float})


def log_loss(y_true: Labels, scores: Sequence[Mapping[str, float] | None]) -> float:
    """Mean of ``-log p(true class)`` over events with scores, probabilities clipped to
    ``[EPS, 1 - EPS]`` and not renormalised; NaN when no event has scores.

    >>> round(log_loss([1, 0], [{"0": 0.2, "1": 0.8}, {"0": 0.6, "1": 0.4}]), 6)
    0.366985
    """
    p = true_class_probability(y_true, scores)
    p = p[~np.isnan(p)]
    return float(-np.log(np.clip(p, EPS, 1 - EPS)).mean()) if p.size else math.nan


def mae(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float))))


def rmse(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2)))


class PerformanceWindow:
    """One model version's metrics over the last ``window_size`` labelled events, and in total.

    Classification: accuracy, F1 (binary for class ``positive``, else macro) and log loss (over
    events with scores). Regression: MAE and RMSE. Memory: a ring buffer of ``window_size`` rows
    plus one counter per class. Pure and picklable.
    """

    def __init__(self, task: Task, window_size: int = 1000, positive: Target | None = None) -> None:
        if task not in ("classification", "regression"):
            raise ConfigError(f"task must be 'classification' or 'regression', got {task!r}")
        if window_size < 1:
            raise ConfigError(f"window_size must be >= 1 event, got {window_size}; e.g. 1000")
        self.task = task
        self.window_size = window_size
        self.positive = positive
        self._reset()

    def _reset(self) -> None:
        self._classes: dict[str, int] = {}  # class key -> code
        self._rows = np.zeros((self.window_size, 3))  # true code | error, pred code | sq, loss
        self._head, self._count, self._events = 0, 0, 0
        self._totals = np.zeros(3)  # correct | abs error, log-loss sum | sq error, scored events
        self._tp: list[int] = []  # per class code, since the start
        self._seen: list[int] = []  # true count + predicted count per class code

    def _codes(self, labels: Labels) -> npt.NDArray[np.intp]:
        return self._code_of(*_distinct(labels))

    def _code_of(self, keys: list[str], inverse: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """Class codes (new classes get the next ones) of labels given by :func:`_distinct`."""
        for k in keys:
            if k not in self._classes:
                self._classes[k] = len(self._classes)
                self._tp.append(0)
                self._seen.append(0)
        return np.array([self._classes[k] for k in keys], dtype=np.intp)[inverse]

    def update(
        self,
        y_true: Labels,
        y_pred: Labels,
        scores: Sequence[Mapping[str, float] | None] | None = None,
    ) -> None:
        """Add labelled events: labels, predictions and (classification) optional scores."""
        if self.task == "regression":
            error = np.asarray(y_true, float) - np.asarray(y_pred, float)
            rows = np.stack([np.abs(error), error**2, np.zeros(error.size)], axis=1)
            self._totals += [rows[:, 0].sum(), rows[:, 1].sum(), 0.0]
        else:
            true_keys, true_inverse = _distinct(y_true)  # once, for the codes and the loss
            t, p = self._code_of(true_keys, true_inverse), self._codes(y_pred)
            loss = np.full(t.size, np.nan)
            if scores is not None:
                probability = _probability(_row_keys(true_keys, true_inverse), scores)
                loss = -np.log(np.clip(probability, EPS, 1 - EPS))
            rows = np.stack([t, p, loss], axis=1).astype(np.float64)
            scored = ~np.isnan(loss)
            self._totals += [float(np.sum(t == p)), loss[scored].sum(), scored.sum()]
            k = len(self._classes)
            tp = np.bincount(t[t == p], minlength=k)
            seen = np.bincount(t, minlength=k) + np.bincount(p, minlength=k)
            self._tp = [a + int(b) for a, b in zip(self._tp, tp, strict=True)]
            self._seen = [a + int(b) for a, b in zip(self._seen, seen, strict=True)]
        rows = rows[-self.window_size :]
        idx = (self._head + np.arange(rows.shape[0])) % self.window_size
        self._rows[idx] = rows
        self._head = int((self._head + rows.shape[0]) % self.window_size)
        self._count = min(self._count + rows.shape[0], self.window_size)
        self._events += len(y_true)

    def metrics(self) -> dict[str, dict[str, float]]:
        """``{"window": {...}, "cumulative": {...}}``; each has ``events`` and the task's metrics
        (NaN where undefined: no events yet, or no scores for log loss)."""
        rows, n, total = self._rows[: self._count], self._count, self._events
        if self.task == "regression":
            return {
                "window": {
                    "events": float(n),
                    "mae": float(rows[:, 0].mean()) if n else math.nan,
                    "rmse": math.sqrt(rows[:, 1].mean()) if n else math.nan,
                },
                "cumulative": {
                    "events": float(total),
                    "mae": float(self._totals[0] / total) if total else math.nan,
                    "rmse": math.sqrt(float(self._totals[1] / total)) if total else math.nan,
                },
            }
        t, p, loss = rows[:, 0].astype(np.intp), rows[:, 1].astype(np.intp), rows[:, 2]
        k = len(self._classes)
        pos = None if self.positive is None else self._classes.get(class_key(self.positive), -1)
        scored = loss[~np.isnan(loss)]
        tp, seen = np.array(self._tp, dtype=float), np.array(self._seen, dtype=float)
        return {
            "window": {
                "events": float(n),
                "accuracy": float(np.mean(t == p)) if n else math.nan,
                "f1": _f1(t, p, k, pos) if n else math.nan,
                "log_loss": float(scored.mean()) if scored.size else math.nan,
            },
            "cumulative": {
                "events": float(total),
                "accuracy": float(self._totals[0] / total) if total else math.nan,
                "f1": _f1_counts(tp, seen, pos) if total else math.nan,
                "log_loss": float(self._totals[1] / self._totals[2])
                if self._totals[2]
                else math.nan,
            },
        }


class ModelPerformance:
    """A :class:`PerformanceWindow` per model version, for the ``max_versions`` most recently
    updated versions (older ones are dropped, so memory stays bounded)."""

    def __init__(
        self,
        task: Task,
        window_size: int = 1000,
        positive: Target | None = None,
        max_versions: int = 3,
    ) -> None:
        if max_versions < 1:
            raise ConfigError(f"max_versions must be >= 1, got {max_versions}; e.g. 3")
        PerformanceWindow(task, window_size, positive)  # validates the arguments
        self.task = task
        self.window_size = window_size
        self.positive = positive
        self.max_versions = max_versions
        self._versions: OrderedDict[str | int | None, PerformanceWindow] = OrderedDict()

    def update(
        self,
        model_version: str | int | None,
        y_true: Labels,
        y_pred: Labels,
        scores: Sequence[Mapping[str, float] | None] | None = None,
    ) -> None:
        """Add labelled events of one model version."""
        window = self._versions.pop(model_version, None) or PerformanceWindow(
            self.task, self.window_size, self.positive
        )
        window.update(y_true, y_pred, scores)
        self._versions[model_version] = window
        while len(self._versions) > self.max_versions:
            self._versions.popitem(last=False)

    def versions(self) -> list[str | int | None]:
        """The versions kept, least recently updated first."""
        return list(self._versions)

    def metrics(self, model_version: str | int | None) -> dict[str, dict[str, float]] | None:
        """That version's metrics, or None if it is not kept."""
        window = self._versions.get(model_version)
        return None if window is None else window.metrics()


class AccuracyDrop(WindowTest):
    """A drop of accuracy, from per-event errors (``1`` = wrong prediction, NaN = no label).

    The first ``window.reference_size`` errors (default 1000) make the reference accuracy. Every
    ``check_every`` (100) events the accuracy over the last ``window_size`` (500) is compared: the
    statistic is the drop ``reference - current`` (absolute; a rise is negative), and a check
    counts when it is ``>= threshold`` (default 0.05) **and** a one-sided two-proportion z-test
    gives ``p <= alpha`` (default 0.0001: at high error rates a 0.05 drop over 500 events is
    noise, and the reference's own noise is shared by every check; measured false alarms: 0.05
    per 1e5 events at error rate 0.1, none at 0.3 and 0.5; with 0.001, up to 1 per 1e5).
    ``persistence`` checks in a row (default 3) make the signal; as many without make
    ``drifting=False``. Errors in ``[0, 1]`` are quantised to 1/65536 (exact window sums).
    A step 0.1 -> 0.4 is signalled 399 events after it (60 seeds).

    >>> rng = np.random.default_rng(5)
    >>> errors = np.r_[rng.random(3000) < 0.1, rng.random(2000) < 0.3].astype(float)
    >>> [(s.index, s.drifting) for s in AccuracyDrop().update_many(errors, np.arange(5000))]
    [(3399, True)]
    """

    name: ClassVar[str] = "accuracy_drop"
    input_kind: ClassVar[InputKind] = "binary"
    declared_delay: ClassVar[int] = 600
    false_alarm_budget: ClassVar[float] = 1.0
    default_threshold: ClassVar[float] = 0.05

    def __init__(
        self,
        threshold: float | None = None,
        alpha: float = 0.0001,
        persistence: int = 3,
        window: WindowSpec = ACCURACY_WINDOW,
        reference: npt.ArrayLike | None = None,
    ) -> None:
        super().__init__(threshold, alpha, persistence, window, reference)

    def _reset(self) -> None:
        self._ref_errors = 0.0  # set before the base class, which may learn a given reference
        self._ref_n = 0
        super()._reset()

    def _observe(self, values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[np.intp]]:
        x, pos = finite_values(values, np.zeros(np.shape(values), np.int64), unit=True)
        return fixed_point(x).astype(np.float64) / 65536.0, pos

    def _learn_reference(self, values: npt.NDArray[Any]) -> int:
        self._ref_errors, self._ref_n = float(values.sum()), int(values.size)
        return self._ref_n

    def _column_dtypes(self) -> tuple[npt.DTypeLike, ...]:
        return (np.float64,)

    def _encode(self, values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], ...]:
        return (values,)

    def _compare(self, columns: list[npt.NDArray[Any]]) -> tuple[float, float]:
        e0, n0 = self._ref_errors, self._ref_n
        e1, n1 = float(columns[0].sum()), columns[0].size
        drop = e1 / n1 - e0 / n0  # accuracy drop = error rate rise
        pooled = (e0 + e1) / (n0 + n1)
        spread = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1))
        if spread == 0.0:  # no error anywhere, or only errors: no drop
            return drop, 1.0
        return drop, 0.5 * math.erfc(drop / spread / math.sqrt(2.0))


register(AccuracyDrop)
