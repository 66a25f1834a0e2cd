"""Online retraining in ``driftline run``: model versions published exactly once.

**When.** The worker retrains when ``models.enabled`` is true or, left unset, when a signing key
is set (``DRIFTLINE_MODELS_KEY``); :meth:`driftline.settings.ModelsSettings.retrains`. Then
every :class:`~driftline.streams.tasks.MonitorTask` holds a
:class:`~driftline.models.RetrainStage` next to its monitors, fed the same in-order items and
the alerts raised on them, as ``driftline replay --models-out`` feeds it: the same input gives
the same versions (number, parent, reason, trigger, metrics, event time; the artifact bytes
aside, see :mod:`driftline.streams.replay`).

**Exactly once.** Each :class:`~driftline.models.Release` is delivered (an artifact over
``models.max_inline_bytes``, or one that would not fit in a record, goes to the artifact store
``models.artifact_dir`` names: a folder or an S3 bucket), and its event is produced to the
history and the models topics (:meth:`driftline.sdk.ModelRegistry.records`) in the worker's
open transaction: committed with the alerts, the checkpoint of the task that promoted it (its
retrainers, learners and version counters) and the input offsets, or not at all. After a crash
the next owner restores that checkpoint and promotes the same versions again. An aborted
transaction can leave an artifact that no committed version names; the store is
content-addressed, so it harms nothing.

**The key.** The signing key is never in a checkpoint (``RetrainStage.__getstate__`` blanks it);
:meth:`Retraining.attach` sets it again on every task the worker creates or restores.

**Rollbacks.** ``driftline models rollback`` also writes the version it publishes to the joined
topic, keyed by its model: the one task that retrains that model reads it in order with its
items, :meth:`Retraining.load` checks its signature and digest and loads it, and the retrainer
serves it as its champion and numbers its next version after it
(:class:`~driftline.streams.tasks.Adoption`). If the worker published a version with the
rollback's number meanwhile (the registry numbers it from the history it has read), the
rolled-back model is published again as the worker's next version, reason ``rollback``: what the
operator chose is what gets served. One that does not verify is refused, logged and counted
(``rollbacks_refused``).

**Limits.** A restored task keeps the retraining spec it was checkpointed with (its learners
were built with it); a changed ``[models]`` spec applies to models first seen after, or after
the consumer group is reset.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

from driftline.codec import encode
from driftline.errors import DriftlineError, StoreUnavailable
from driftline.events import ModelVersion
from driftline.models import Release, RetrainStage
from driftline.models.artifact import load_verified
from driftline.sdk.registry import ModelRegistry, history_topic
from driftline.settings import Settings
from driftline.streams.artifacts import deliver, fetch, open_store
from driftline.streams.tasks import Adoption, MonitorTask
from driftline.streams.transaction import Restart

__all__ = ["Retraining"]

_OVERHEAD = 4096  # room for a record's key, headers and framing under the size limit

#: ``produce(topic, value, key)``, e.g. :meth:`driftline.streams.transaction.Transaction.produce`
Produce = Callable[[str, bytes, bytes | None], None]


class Retraining:
    """The retraining of a worker: spec, key, artifact store, and where versions go.

    ``ConfigError`` if ``settings.models`` has no valid key.
    """

    def __init__(self, settings: Settings) -> None:
        models = settings.models
        self.spec = models.retrain_spec()
        self.key = models.key_bytes()
        self.store = open_store(models)
        self.registry = ModelRegistry(settings, store=self.store)  # for its records only
        self.topics = (settings.topics.models, history_topic(settings))
        self.max_record_bytes = settings.topics.max_message_bytes - _OVERHEAD

    def stage(self) -> RetrainStage:
        """A new task's stage; no lateness, since the task's merge buffer orders its items."""
        return RetrainStage(self.spec, self.key, lateness_ms=0)

    def attach(self, task: MonitorTask) -> None:
        """Give a new or restored task its stage (a new one if its checkpoint had none) and
        the signing key, which no checkpoint holds."""
        if task.retrain is None:
            task.retrain = self.stage()
        else:
            task.retrain.key = self.key

    def load(self, event: ModelVersion) -> Adoption:
        """A rolled-back version to adopt, verified and loaded; ``ArtifactError`` otherwise."""
        return Adoption(event, load_verified(event, fetch(event, self.store), self.key))

    def adoption(self, event: ModelVersion, log: logging.Logger) -> Adoption | None:
        """:meth:`load`, or None for a rollback that does not verify (unsigned, another key,
        bytes missing), logged to ``log`` as refused. ``StoreUnavailable`` (an outage) is the
        caller's: the rollback is to be read again later."""
        try:
            return self.load(event)
        except StoreUnavailable:
            raise
        except DriftlineError as exc:
            log.warning(
                "rollback of model %s to version %d refused: %s", event.model, event.version, exc
            )
            return None

    def publish(self, releases: Iterable[Release], produce: Produce) -> list[ModelVersion]:
        """Deliver each release and produce its registry records; the events produced."""
        out = []
        for release in releases:
            try:
                event = deliver(release, self.store)
                value = encode(event)
                if event.artifact is not None and len(value) > self.max_record_bytes:
                    # inline, it would not fit in a record: by reference (the URI is not signed)
                    uri = self.store.put(release.artifact)
                    event = dataclasses.replace(event, artifact=None, artifact_uri=uri)
            except StoreUnavailable as exc:  # an outage: from the last commit, a little later
                what = f"model {release.event.model} version {release.event.version} not published"
                raise Restart.store_down(what, exc) from None
            for topic, key, record in self.registry.records(event):
                produce(topic, record, key)
            out.append(event)
        return out
