"""What a runtime reports about its work, through a small observer interface (no-op by default).

Runtimes call an :class:`Observer` with plain values, once per batch or per commit, never per
record. The default does nothing; :class:`driftline.streams.metrics.PrometheusObserver` turns
the calls into Prometheus metrics. Only that one module knows about ``prometheus_client``, so
the core and the runtimes stay free of it (faust's Sensor idea).

>>> observer = Observer()
>>> observer.records_in("driftline.predictions", 500)  # does nothing
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from driftline.events import Alert, ModelVersion

__all__ = ["Observer"]


class Observer:
    """The metrics interface of the runtimes. Subclass it and override what you need."""

    def records_in(self, topic: str, count: int) -> None:
        """``count`` records were read from ``topic``."""

    def records_out(self, topic: str, count: int) -> None:
        """``count`` records were written to ``topic``."""

    def dead_letters(self, reason: str, count: int) -> None:
        """``count`` records were dead-lettered with ``reason`` (a codec reason code)."""

    def consumer_lag(self, topic: str, partition: int, records: int) -> None:
        """Records in ``topic[partition]`` not yet read by this worker."""

    def processing_latency(self, seconds: float) -> None:
        """From a record's Kafka timestamp to the commit of everything it caused."""

    def join_counts(self, partition: int, counts: Mapping[str, int]) -> None:
        """The label joiner's running counts (``predictions``, ``joined``, ``unlabelled``...)."""

    def label_delays(self, seconds: Sequence[float]) -> None:
        """How long labels took to come, in event time, for the outcomes just joined."""

    def drift_statistics(self, model: str, values: Iterable[tuple[str, str, float]]) -> None:
        """The latest ``(feature, detector, statistic)`` of each detector of ``model``."""

    def alerts(self, alerts: Sequence[Alert]) -> None:
        """Alerts just published."""

    def model_versions(self, versions: Sequence[ModelVersion]) -> None:
        """Model versions just published (committed), oldest first."""

    def state_size(self, stage: str, partition: int, size_bytes: int, written: int) -> None:
        """A task of ``stage`` for ``partition`` was just checkpointed: ``written`` bytes (the
        task whole, or its changes), and ``size_bytes`` is what restoring it reads (its latest
        whole checkpoint and the changes after it)."""

    def rebalance(self, assigned: int) -> None:
        """A rebalance left this worker with ``assigned`` partitions."""

    def restart(self, reason: str) -> None:
        """The worker's session failed and starts again from the last commit; ``reason`` is a
        short code (``kafka``: the broker or a client failed, ``artifact_store``: the store
        of model artifacts was down)."""
