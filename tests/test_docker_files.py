"""docker/compose.yml cannot run here (no Docker engine): check what can be checked, and that
the Grafana dashboard charts metrics the worker serves."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from driftline.streams.metrics import PrometheusObserver

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def _kafka_version() -> str:
    pom = (DOCKER / "kafka-local" / "pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match, "kafka.version missing from docker/kafka-local/pom.xml"
    return match.group(1)


def test_compose_file_is_complete_and_matches_the_local_broker() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "topics", "driftline", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"] == f"apache/kafka:{_kafka_version()}"
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 1
    worker = services["driftline"]
    assert worker["build"]["dockerfile"] == "docker/Dockerfile"
    assert worker["environment"]["DRIFTLINE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    # the state key comes from the host, and compose refuses to start the worker without it
    assert worker["environment"]["DRIFTLINE_STATE_KEY"].startswith("${DRIFTLINE_STATE_KEY:?")
    for name in ("prometheus.yml",):
        assert (DOCKER / name).is_file()
    scrape = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    targets = [
        t for job in scrape["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ]
    assert "driftline:9464" in targets
    if _compose_plugin_answers():
        run = subprocess.run(
            ["docker", "compose", "-f", str(DOCKER / "compose.yml"), "config", "--quiet"],
            env={**os.environ, "DRIFTLINE_STATE_KEY": "k" * 32},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr


def test_dockerfile_runs_as_non_root_and_uses_the_lock() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^USER\s+(?!root)\S+", text, re.M)
    assert "constraints.txt" in text


def _compose_plugin_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


def test_dashboard_panels_chart_metrics_the_worker_serves() -> None:
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "driftline.json").read_text())
    registry = CollectorRegistry()
    PrometheusObserver(registry)
    served = set()
    for family in registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        served |= {family.name + s for s in suffixes.get(family.type, ("",))}
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        for target in panel["targets"]:
            metrics = set(re.findall(r"driftline_[a-z_]+", target["expr"]))
            assert metrics and metrics <= served, (panel["title"], metrics - served)
            for metric in metrics:  # the description says what is charted
                assert metric in panel["description"], (panel["title"], panel["description"])
