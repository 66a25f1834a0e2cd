"""How a model is retrained and when a new version is promoted: a serialisable spec.

>>> spec = RetrainSpec.from_dict({"learner": "logistic_regression", "margin": 0.01})
>>> spec.learner, spec.min_paired, spec.refresh_every
('logistic_regression', 250, 250)
>>> RetrainSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from driftline.errors import ConfigError

__all__ = ["RetrainSpec"]


@dataclass(frozen=True)
class RetrainSpec:
    """Champion/challenger retraining of one model (see :class:`~driftline.models.Retrainer`).

    - ``learner``: a name of :data:`~driftline.models.learners.LEARNERS`; ``task`` is found from
      the first labelled event (non-integral numbers: regression) unless given.
    - ``min_events``: labelled events the first learner sees before version 1 (``initial``).
    - ``buffer_size``: the last K outcomes kept; a new challenger learns them first.
    - ``min_paired`` / ``max_paired``: a challenger is judged on at least ``min_paired`` events
      it and the champion both predicted, and dropped if it has not won after ``max_paired``.
    - ``margin`` / ``alpha``: the promotion test of :mod:`driftline.models.compare` (accuracy
      points for classifiers, relative MAE reduction for regressors; one-sided sign test).
    - ``trigger_kinds``: firing alerts of these kinds start (or reset) a challenger.
    - ``challenge_every``: also start one every N labelled events (0: off), reason
      ``scheduled``; it does not replace a challenger already running.
    - ``refresh_every``: every N labelled events (0: off), publish the champion as it has kept
      learning since its last version if it beats the served versions by the same test on the
      last ``refresh_window`` events (0: on the events since the last version); reason
      ``scheduled``. The window outlives a refresh, so where the served version keeps falling
      behind the learning champion every check refreshes it: a faster reaction to a concept
      change, but it also replaces a first version that was still learning on a stationary
      stream (``python -m bench.retrain``, "window refresh"), so it is off by default.
    - ``max_inline_bytes``: larger artifacts are delivered by reference (artifact store).
    - ``seed``: the learners' seed; with it, the same events give the same versions.

    The defaults come from ``python -m bench.retrain``: a first version after 1000 events is
    good enough not to be replaced on a stationary stream, and checking every 250 events keeps
    the served version close to the learning champion on a fast-changing stream (Elec2).
    """

    learner: str = "hoeffding_adaptive_tree"
    task: Literal["classification", "regression"] | None = None
    min_events: int = 1000
    buffer_size: int = 200
    min_paired: int = 250
    max_paired: int = 5000
    margin: float = 0.02
    alpha: float = 0.01
    trigger_kinds: tuple[str, ...] = ("concept_drift",)
    challenge_every: int = 0
    refresh_every: int = 250
    refresh_window: int = 0
    max_inline_bytes: int = 900_000
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "min_events": self.min_events >= 1,
            "buffer_size": self.buffer_size >= 0,
            "min_paired": self.min_paired >= 1,
            "max_paired": self.max_paired >= self.min_paired,
            "margin": 0.0 <= self.margin < 1.0,
            "alpha": 0.0 < self.alpha < 1.0,
            "challenge_every": self.challenge_every >= 0,
            "refresh_every": self.refresh_every >= 0,
            "refresh_window": self.refresh_window == 0 or self.refresh_window >= self.min_paired,
            "max_inline_bytes": self.max_inline_bytes >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"models.{name} = {getattr(self, name)!r} is out of range; see "
                    "driftline.models.RetrainSpec for the allowed values"
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrainSpec:
        """Build from plain data (a TOML or JSON table); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"unknown retraining settings {sorted(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = dict(data)
        if "trigger_kinds" in values:
            values["trigger_kinds"] = tuple(values["trigger_kinds"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["trigger_kinds"] = list(self.trigger_kinds)
        return out
