"""Pieces of ``driftline run`` that need no broker: settings, metrics endpoint, locations."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from driftline.cli import main
from driftline.errors import ConfigError
from driftline.events import Alert
from driftline.settings import MetricsSettings, Settings
from driftline.streams.metrics import PrometheusObserver, serve_metrics
from driftline.streams.state import Location


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metrics_are_served_and_can_be_turned_off() -> None:
    assert serve_metrics(MetricsSettings(port=0), CollectorRegistry()) is None
    assert serve_metrics(MetricsSettings(enabled=False), CollectorRegistry()) is None
    registry = CollectorRegistry()
    observer = PrometheusObserver(registry)
    observer.records_in("driftline.predictions", 7)
    observer.dead_letters("schema", 2)
    observer.alerts([Alert("a1", "fraud", "data_drift", "firing", "critical", "psi", 5, "m")])
    observer.drift_statistics("fraud", [("amount", "psi", 0.31)])
    observer.join_counts(0, {"predictions": 10, "joined": 9})
    port = _free_port()
    server = serve_metrics(MetricsSettings(host="127.0.0.1", port=port), registry)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        body = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'driftline_records_in_total{topic="driftline.predictions"} 7.0' in body
    assert 'driftline_deadletter_total{reason="schema"} 2.0' in body
    assert 'driftline_alerts_total{kind="data_drift",severity="critical"} 1.0' in body
    assert 'driftline_drift_statistic{detector="psi",feature="amount",model="fraud"} 0.31' in body
    assert 'driftline_join_coverage_ratio{partition="0"} 0.9' in body


def test_checkpoint_locations_round_trip_through_offset_metadata() -> None:
    for where in (Location((42,), 3), Location((42, 43, 45), 0)):
        assert Location.parse(where.metadata()) == where
    for other in (None, "", "something else", "driftline-state x@y"):
        assert Location.parse(other) is None


def test_run_needs_a_state_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DRIFTLINE_STATE_KEY", raising=False)
    with pytest.raises(ConfigError, match="DRIFTLINE_STATE_KEY"):
        Settings.load().state.key_bytes()
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--metrics-port", "0"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: driftline run signs its state checkpoints")
