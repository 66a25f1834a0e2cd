"""Paired prequential comparison of two models, and the test that decides a promotion.

Both models predict each labelled event before either learns from it (test-then-train), so they
are scored on exactly the same events. :class:`PairedTally` keeps, for a model ``a`` (the
incumbent) and a model ``b`` (the candidate):

- classification: how many of the events each got right, and the *discordant* pairs: ``b_wins``
  (b right, a wrong) and ``a_wins`` (a right, b wrong);
- regression: the sums of absolute errors, and ``b_wins`` / ``a_wins``: the events where b's
  absolute error is smaller / larger than a's (ties are left out).

**The test** (:meth:`PairedTally.verdict`). ``b`` beats ``a`` when, over ``n >= min_paired``
paired events, all three hold:

1. the gain is at least ``margin``: ``accuracy(b) - accuracy(a) >= margin`` for classifiers;
   ``(MAE(a) - MAE(b)) / MAE(a) >= margin`` (a relative reduction) for regressors;
2. a one-sided exact sign test on the discordant pairs rejects "neither is better" at level
   ``alpha``: ``p = P(X >= b_wins)`` for ``X ~ Binomial(a_wins + b_wins, 1/2)``, ``p <= alpha``.
   For classifiers this is the exact one-sided McNemar test; for regressors the paired sign test
   on absolute errors;
3. ``n >= min_paired``.

With ``window`` set, the tally keeps only the last ``window`` events (a sliding window): the
retrainer scores the champion against the served versions that way, so that a stream where the
served version keeps falling behind (the champion beats it over the last events) is refreshed
at every check, and a stationary one is not.

The verdict is looked at after every event (so that it does not depend on how events are
batched): repeated looks make the real false-promotion rate larger than ``alpha``, which the
margin and a small ``alpha`` (0.01 by default) keep low; a candidate is also given at most
``max_paired`` events (see :class:`~driftline.models.retrainer.Retrainer`).

>>> tally = PairedTally("classification")
>>> for a, b in [(0, 1)] * 40 + [(1, 1)] * 50 + [(1, 0)] * 10:
...     tally.add(a, b, 1)
>>> v = tally.verdict(margin=0.05, alpha=0.01, min_paired=100)
>>> v.promote, round(v.gain, 2), v.p_value < 1e-4
(True, 0.3, True)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from scipy import stats

from driftline.models.learners import Task
from driftline.monitors.performance import class_key

__all__ = ["PairedTally", "Verdict", "sign_test"]


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign test: ``P(X >= wins)`` for ``X ~ Binomial(wins + losses, 1/2)``.

    >>> round(sign_test(8, 2), 4), sign_test(0, 0)
    (0.0547, 1.0)
    """
    n = wins + losses
    if n == 0:
        return 1.0
    return float(stats.binom.sf(wins - 1, n, 0.5))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of :meth:`PairedTally.verdict`: whether to promote, and why."""

    promote: bool
    gain: float
    p_value: float
    events: int


def _correct(predicted: Any, truth: Any) -> bool:
    return predicted is not None and class_key(predicted) == class_key(truth)


def _abs_error(predicted: Any, truth: Any) -> float:
    try:
        error = abs(float(predicted) - float(truth))
    except (TypeError, ValueError):
        return math.inf
    return error if math.isfinite(error) else math.inf


class PairedTally:
    """Running paired scores of an incumbent ``a`` and a candidate ``b`` on the same events."""

    def __init__(self, task: Task, window: int = 0) -> None:
        self.task = task
        self.window = window  # 0: every event since the start; N: the last N events
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.a_score = 0.0  # correct predictions (classification) or sum of |error| (regression)
        self.b_score = 0.0
        self.a_wins = 0
        self.b_wins = 0
        self._recent: deque[tuple[float, float, int, int]] = deque()

    def add(self, a_predicted: Any, b_predicted: Any, truth: Any) -> None:
        """Score both predictions of one event against its label."""
        if self.task == "classification":
            a, b = _correct(a_predicted, truth), _correct(b_predicted, truth)
            scored = (float(a), float(b), int(a and not b), int(b and not a))
        else:
            ea, eb = _abs_error(a_predicted, truth), _abs_error(b_predicted, truth)
            # an unusable prediction (None, NaN) counts as a loss but adds no error to the MAE
            scored = (
                ea if math.isfinite(ea) else 0.0,
                eb if math.isfinite(eb) else 0.0,
                int(ea < eb),
                int(eb < ea),
            )
        self._count(scored, 1)
        if self.window:
            self._recent.append(scored)
            if len(self._recent) > self.window:
                self._count(self._recent.popleft(), -1)

    def _count(self, scored: tuple[float, float, int, int], sign: int) -> None:
        self.n += sign
        self.a_score += sign * scored[0]
        self.b_score += sign * scored[1]
        self.a_wins += sign * scored[2]
        self.b_wins += sign * scored[3]

    def gain(self) -> float:
        """Accuracy of b minus that of a, or the relative reduction of the MAE from a to b."""
        if self.n == 0:
            return 0.0
        if self.task == "classification":
            return (self.b_score - self.a_score) / self.n
        if self.a_score <= 0.0:
            return 0.0
        return (self.a_score - self.b_score) / self.a_score

    def verdict(self, *, margin: float, alpha: float, min_paired: int) -> Verdict:
        """Whether b beats a (see the module docstring for the test)."""
        gain = self.gain()
        if self.n < min_paired or gain < margin:
            return Verdict(False, gain, 1.0, self.n)
        p_value = sign_test(self.b_wins, self.a_wins)
        return Verdict(p_value <= alpha, gain, p_value, self.n)

    def metrics(self, a_name: str, b_name: str) -> dict[str, float]:
        """The scores as model-version metrics: ``{a}_accuracy``, ``{b}_accuracy`` (or ``_mae``)."""
        if self.n == 0:
            return {"events": 0.0}
        kind = "accuracy" if self.task == "classification" else "mae"
        return {
            f"{a_name}_{kind}": self.a_score / self.n,
            f"{b_name}_{kind}": self.b_score / self.n,
            "events": float(self.n),
        }
