"""Every Prometheus metric driftline exposes, built against a registry passed in.

The one module that imports ``prometheus_client``: :class:`PrometheusObserver` implements
:class:`~driftline.observe.Observer`, and :func:`serve_metrics` starts the ``/metrics``
endpoint of ``driftline run`` on ``settings.metrics.host:port`` (off when ``enabled`` is false
or the port is 0).

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> observer = PrometheusObserver(registry)
>>> observer.records_in("driftline.labels", 3)
>>> registry.get_sample_value("driftline_records_in_total", {"topic": "driftline.labels"})
3.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from driftline.events import Alert, ModelVersion
from driftline.observe import Observer
from driftline.settings import MetricsSettings

__all__ = ["PrometheusObserver", "serve_metrics"]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_DELAY_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86_400, 3 * 86_400, 7 * 86_400)


class PrometheusObserver(Observer):
    """Runtime observations as Prometheus metrics, all registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self._in = Counter("driftline_records_in", "Records read, by topic.", ["topic"], registry=r)
        self._out = Counter(
            "driftline_records_out", "Records written, by topic.", ["topic"], registry=r
        )
        self._dead = Counter(
            "driftline_deadletter", "Records dead-lettered, by reason.", ["reason"], registry=r
        )
        self._lag = Gauge(
            "driftline_consumer_lag",
            "Records not yet read, by topic and partition.",
            ["topic", "partition"],
            registry=r,
        )
        self._latency = Histogram(
            "driftline_processing_latency_seconds",
            "From a record's Kafka timestamp to the commit of what it caused (oldest record of "
            "each transaction).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._coverage = Gauge(
            "driftline_join_coverage_ratio",
            "Predictions joined with a label, over predictions seen, by input partition.",
            ["partition"],
            registry=r,
        )
        self._join = Gauge(
            "driftline_join_events",
            "The label joiner's running counts, by input partition and outcome.",
            ["partition", "outcome"],
            registry=r,
        )
        self._delay = Histogram(
            "driftline_label_delay_seconds",
            "Event time from a prediction to its label.",
            buckets=_DELAY_BUCKETS,
            registry=r,
        )
        self._drift = Gauge(
            "driftline_drift_statistic",
            "Latest statistic of each whole-model detector.",
            ["model", "feature", "detector"],
            registry=r,
        )
        self._alerts = Counter(
            "driftline_alerts", "Alerts published, by kind and severity.", ["kind", "severity"],
            registry=r,
        )  # fmt: skip
        self._versions = Counter(
            "driftline_model_versions",
            "Model versions published, by model and reason.",
            ["model", "reason"],
            registry=r,
        )
        self._version = Gauge(
            "driftline_model_current_version",
            "The latest version published, by model.",
            ["model"],
            registry=r,
        )
        self._state = Gauge(
            "driftline_state_bytes",
            "Bytes a restore reads (the latest whole checkpoint and the changes after it), by "
            "stage and partition.",
            ["stage", "partition"],
            registry=r,
        )
        self._checkpoints = Counter(
            "driftline_checkpoint_bytes",
            "Bytes of checkpoints written (tasks whole, or their changes), by stage.",
            ["stage"],
            registry=r,
        )
        self._assigned = Gauge(
            "driftline_assigned_partitions", "Partitions assigned to this worker.", registry=r
        )
        self._restarts = Counter(
            "driftline_restarts",
            "Sessions started again from the last commit, by reason (kafka, artifact_store).",
            ["reason"],
            registry=r,
        )

    def records_in(self, topic: str, count: int) -> None:
        self._in.labels(topic).inc(count)

    def records_out(self, topic: str, count: int) -> None:
        self._out.labels(topic).inc(count)

    def dead_letters(self, reason: str, count: int) -> None:
        self._dead.labels(reason).inc(count)

    def consumer_lag(self, topic: str, partition: int, records: int) -> None:
        self._lag.labels(topic, str(partition)).set(records)

    def processing_latency(self, seconds: float) -> None:
        self._latency.observe(max(0.0, seconds))

    def join_counts(self, partition: int, counts: Mapping[str, int]) -> None:
        label = str(partition)
        for outcome, count in counts.items():
            self._join.labels(label, outcome).set(count)
        if counts.get("predictions"):
            self._coverage.labels(label).set(counts.get("joined", 0) / counts["predictions"])

    def label_delays(self, seconds: Sequence[float]) -> None:
        for value in seconds:
            self._delay.observe(max(0.0, value))

    def drift_statistics(self, model: str, values: Iterable[tuple[str, str, float]]) -> None:
        for feature, detector, value in values:
            self._drift.labels(model, feature, detector).set(value)

    def alerts(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self._alerts.labels(alert.kind, alert.severity).inc()

    def model_versions(self, versions: Sequence[ModelVersion]) -> None:
        for version in versions:
            self._versions.labels(version.model, version.reason).inc()
            self._version.labels(version.model).set(version.version)

    def state_size(self, stage: str, partition: int, size_bytes: int, written: int) -> None:
        self._state.labels(stage, str(partition)).set(size_bytes)
        self._checkpoints.labels(stage).inc(written)

    def rebalance(self, assigned: int) -> None:
        self._assigned.set(assigned)

    def restart(self, reason: str) -> None:
        self._restarts.labels(reason).inc()


def serve_metrics(settings: MetricsSettings, registry: CollectorRegistry) -> Any | None:
    """Start the ``/metrics`` HTTP server in a daemon thread; the server (``.shutdown()``).

    None when metrics are disabled (``enabled = false`` or ``port = 0``).
    """
    if not settings.enabled or settings.port == 0:
        return None
    server, _ = start_http_server(settings.port, settings.host, registry=registry)
    return server
