"""Champion and challenger of one model: online learners, prequential scores, promotions.

:class:`Retrainer` learns from a model's joined outcomes (the features of the prediction, the
truth of the label) and returns the new versions to publish, each a signed
:class:`~driftline.models.artifact.Release`:

- ``initial``: version 1, once the champion has learned ``min_events`` labelled events;
- ``drift``: a challenger started by a firing alert (``on_alert``) beat the champion;
- ``scheduled``: a challenger started by the schedule (``challenge_every``) beat the champion,
  or the champion, which keeps learning, beat the version being served (``refresh_every``);
- ``manual``: :meth:`Retrainer.publish` was called.

Every labelled event is first predicted by the champion, the challenger (if any) and, when
``refresh_every`` is on, the served version, then learned by the champion and the challenger
(test-then-train): all are scored on the same events (:mod:`driftline.models.compare` has the
test). A new challenger first learns the last ``buffer_size`` outcomes. Versions count up by one
per model; ``created_ts`` is the event time of the outcome that decided the promotion.

Metrics of a version (:class:`~driftline.events.ModelVersion`): ``challenger_accuracy`` (or
``_mae``) is the new version's score, ``champion_accuracy`` that of the model it replaces, on the
same ``events``; with ``gain`` and the sign test's ``p_value``. Version 1 has only
``challenger_accuracy``: the first learner's prequential accuracy while it learned.

Pure: no I/O, no clock; the signing ``key`` is never pickled (set it again after a restore).

>>> from driftline.datasets import drifting_stream
>>> stream = drifting_stream(3000, seed=1, shift_at=None, concept_at=None)
>>> retrainer = Retrainer("demo", RetrainSpec(min_events=1000), key=b"k" * 32)
>>> releases = retrainer.learn_many(zip(stream.predictions, stream.labels))
>>> [(r.event.version, r.event.reason) for r in releases]
[(1, 'initial')]
"""

from __future__ import annotations

import base64
import pickle
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from driftline.events import Alert, FeatureValue, Label, ModelVersion, Prediction, Target
from driftline.models.artifact import FLAVOR, ArtifactError, Release, digest, pack, sign
from driftline.models.compare import PairedTally, Verdict
from driftline.models.learners import Task, make_learner
from driftline.models.spec import RetrainSpec

__all__ = ["Reason", "Retrainer"]

Reason = Literal["initial", "drift", "scheduled", "manual", "rollback"]
_ADOPTED_KEPT = 8  # rollbacks remembered, to ignore one read again after a restart
Features = Mapping[str, FeatureValue]


def _task_of(label: Target) -> Task:
    if isinstance(label, float) and not label.is_integer():
        return "regression"
    return "classification"


class Retrainer:
    """The champion/challenger retraining of one model (see the module docstring)."""

    def __init__(self, model: str, spec: RetrainSpec | None = None, key: bytes = b"") -> None:
        self.model = model
        self.spec = spec or RetrainSpec()
        self.key = key
        self._reset()

    def _reset(self) -> None:
        self.task: Task | None = self.spec.task
        self.version = 0  # the latest version published (0: none yet)
        self.champion: Any = None
        self.challenger: Any = None
        self._challenge: PairedTally | None = None  # champion (a) against challenger (b)
        self._challenge_reason: Reason = "drift"
        self._challenge_alert: str | None = None
        self._served: Any = None  # the latest version as published, frozen (refresh_every)
        self._refresh: PairedTally | None = None  # served (a) against the champion (b)
        self._first: PairedTally | None = None  # the first learner, before version 1
        self._since_initial = 0  # labelled events learned since version 1
        self._buffer: deque[tuple[Features, Target]] = deque(maxlen=self.spec.buffer_size)
        self.counts: Counter[str] = Counter()

    _adopted: tuple[tuple[int, str], ...] = ()  # the latest rollbacks adopted (version, digest)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["key"] = b""  # the signing key never goes into a checkpoint
        return state

    # -- public -------------------------------------------------------------------------------

    def learn_many(self, outcomes: Iterable[tuple[Prediction, Label]]) -> list[Release]:
        """Learn joined (prediction, label) pairs in order; the versions they promoted."""
        self._need_key()
        out: list[Release] = []
        for prediction, label in outcomes:
            if prediction.model != self.model:
                raise ValueError(
                    f"outcome of model {prediction.model!r} given to the retrainer of "
                    f"{self.model!r}; route outcomes by model (RetrainStage does)"
                )
            ts = max(prediction.ts or 0, label.ts or 0)
            release = self._learn_one(prediction.features, label.label, ts)
            if release is not None:
                out.append(release)
        return out

    def on_alert(self, alert: Alert) -> list[Release]:
        """A firing alert of a ``trigger_kinds`` kind starts or resets the challenger.

        Ignored before version 1, and while the current challenger has been scored on fewer
        than ``min_paired`` events (a burst of alerts must not keep resetting it). Returns the
        versions promoted at once: none today, the challenger needs events to win.
        """
        if (
            alert.model != self.model
            or alert.status != "firing"
            or alert.kind not in self.spec.trigger_kinds
        ):
            return []
        if self.version == 0:
            self.counts["alerts_before_initial"] += 1
        elif self._challenge is not None and self._challenge.n < self.spec.min_paired:
            self.counts["alerts_during_challenge"] += 1
        else:
            self._start_challenger("drift", alert.alert_id)
        return []

    def publish(self, ts: int, reason: Reason = "manual") -> Release:
        """Publish the champion as it is now (``manual``); ``ArtifactError`` before it exists."""
        self._need_key()
        if self.champion is None:
            raise ArtifactError(f"model {self.model}: no labelled events learned yet")
        metrics = self._refresh.metrics("champion", "challenger") if self._refresh else {}
        return self._publish(reason, ts, metrics, None)

    def adopt(self, event: ModelVersion, model: Any) -> Release | None:
        """Serve a rolled-back version (published elsewhere) as the champion.

        ``model`` is its artifact, loaded by the caller after checking it (``load_verified``).
        Numbered after the latest version, it is just adopted (None). If this retrainer
        published a version after the rollback was numbered (the registry and the worker raced
        for the same number), the operator's choice still wins: the rolled-back model is
        published again as the next version (reason ``rollback``), which is returned. A
        rollback seen before (read again after a restart) and any other version are ignored.
        """
        seen = (event.version, event.sha256)
        if event.reason != "rollback" or seen in self._adopted:
            return None
        self._adopted = (*self._adopted[-(_ADOPTED_KEPT - 1) :], seen)
        self.champion = model
        self._drop_challenger()
        self.counts["adopted"] += 1
        if event.version <= self.version:
            self._need_key()
            return self._publish("rollback", event.created_ts, {}, None)
        self.version = event.version
        if self.spec.refresh_every:  # a copy: the champion keeps learning, the served does not
            self._serve(pickle.loads(pickle.dumps(model, protocol=5)))
        return None

    # -- learning -----------------------------------------------------------------------------

    def _learn_one(self, x: Features, y: Target, ts: int) -> Release | None:
        if self.task is None:
            self.task = _task_of(y)
        if self.version == 0:
            return self._learn_first(x, y, ts)
        champion_says = self.champion.predict_one(x)
        if self._refresh is not None:
            self._refresh.add(self._served.predict_one(x), champion_says, y)
        if self._challenge is not None:
            self._challenge.add(champion_says, self.challenger.predict_one(x), y)
            self.challenger.learn_one(x, y)
        self.champion.learn_one(x, y)
        self._buffer.append((x, y))
        self._since_initial += 1
        return self._decide(ts)

    def _learn_first(self, x: Features, y: Target, ts: int) -> Release | None:
        first = self._first
        if first is None:
            task = self.task or "classification"
            self.champion = make_learner(self.spec.learner, task, self.spec.seed)
            first = self._first = PairedTally(task)
        said = self.champion.predict_one(x)
        first.add(said, said, y)
        self.champion.learn_one(x, y)
        self._buffer.append((x, y))
        if first.n < self.spec.min_events:
            return None
        metrics = first.metrics("challenger", "challenger")
        self._first = None
        return self._publish("initial", ts, metrics, None)

    def _decide(self, ts: int) -> Release | None:
        spec = self.spec
        release = None
        challenge, refresh = self._challenge, self._refresh
        if challenge is not None:
            verdict = challenge.verdict(
                margin=spec.margin, alpha=spec.alpha, min_paired=spec.min_paired
            )
            if verdict.promote:
                release = self._promote(challenge, verdict, ts)
            elif challenge.n >= spec.max_paired:
                self.counts["challengers_dropped"] += 1
                self._drop_challenger()
        every = spec.refresh_every
        if release is None and refresh is not None and every and self._since_initial % every == 0:
            verdict = refresh.verdict(
                margin=spec.margin, alpha=spec.alpha, min_paired=spec.min_paired
            )
            if verdict.promote:
                metrics = {**refresh.metrics("champion", "challenger"), **_test(verdict)}
                release = self._publish("scheduled", ts, metrics, None, refreshed=True)
        every = spec.challenge_every
        if every and self._challenge is None and self._since_initial % every == 0:
            self._start_challenger("scheduled", None)
        return release

    def _start_challenger(self, reason: Reason, alert_id: str | None) -> None:
        self.counts["challengers"] += 1
        seed = self.spec.seed + self.counts["challengers"]
        self.challenger = make_learner(self.spec.learner, self.task or "classification", seed)
        for x, y in self._buffer:
            self.challenger.learn_one(x, y)
        self._challenge = PairedTally(self.task or "classification")
        self._challenge_reason, self._challenge_alert = reason, alert_id

    def _drop_challenger(self) -> None:
        self.challenger, self._challenge, self._challenge_alert = None, None, None

    def _promote(self, challenge: PairedTally, verdict: Verdict, ts: int) -> Release:
        metrics = {**challenge.metrics("champion", "challenger"), **_test(verdict)}
        reason, alert_id = self._challenge_reason, self._challenge_alert
        self.champion = self.challenger
        self._drop_challenger()
        self.counts["promotions"] += 1
        return self._publish(reason, ts, metrics, alert_id)

    # -- versions -----------------------------------------------------------------------------

    def _publish(
        self,
        reason: Reason,
        ts: int,
        metrics: Mapping[str, float],
        alert_id: str | None,
        *,
        refreshed: bool = False,
    ) -> Release:
        data = pack(self.champion)
        inline = 4 * ((len(data) + 2) // 3) <= self.spec.max_inline_bytes
        event = ModelVersion(
            model=self.model,
            version=self.version + 1,
            created_ts=ts,
            reason=reason,
            flavor=FLAVOR,
            sha256=digest(data),
            signature="",
            metrics=dict(metrics),
            parent_version=self.version or None,
            trigger_alert_id=alert_id,
            artifact=base64.b64encode(data).decode("ascii") if inline else None,
            artifact_size=len(data),
        )
        self.version += 1
        if self.spec.refresh_every:  # what the services now serve, exactly as they load it
            self._serve(pickle.loads(zlib.decompress(data)), refreshed)
        self.counts[reason] += 1
        return Release(sign(event, self.key), data)

    def _serve(self, served: Any, refreshed: bool = False) -> None:
        """``served`` is what the services now serve (``refresh_every``): the champion is
        scored against it from here on. A refreshed champion keeps its record against the
        served versions (the window); a new model (initial, challenger, manual, rollback)
        starts a new one."""
        self._served = served
        window = self.spec.refresh_window
        if not (refreshed and window and self._refresh and self._refresh.window == window):
            self._refresh = PairedTally(self.task or "classification", window)

    def _need_key(self) -> None:
        if not self.key:
            raise ArtifactError(
                f"model {self.model}: the retrainer has no signing key (keys are not kept in "
                "checkpoints): set .key after restoring it, from settings.models.key"
            )


def _test(verdict: Verdict) -> dict[str, float]:
    return {"gain": verdict.gain, "p_value": verdict.p_value}
