"""``driftline topics create`` against the real broker, and its error without one."""

from __future__ import annotations

import subprocess
import sys

import pytest
from confluent_kafka.admin import ConfigResource

from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.topics import create_topics, topic_specs


@pytest.mark.kafka
def test_topics_create_is_idempotent_and_compacts_models(kafka_settings: Settings) -> None:
    first = create_topics(kafka_settings)
    names = {spec.name for spec in topic_specs(kafka_settings)}
    assert set(first) == names and set(first.values()) == {"created"}
    assert set(create_topics(kafka_settings).values()) == {"exists"}

    admin = clients.admin_client(kafka_settings.kafka)
    metadata = admin.list_topics(timeout=10)
    for name in names:
        assert len(metadata.topics[name].partitions) == kafka_settings.topics.partitions
    resource = ConfigResource(ConfigResource.Type.TOPIC, kafka_settings.topics.models)
    config = admin.describe_configs([resource])[resource].result()
    assert config["cleanup.policy"].value == "compact"


@pytest.mark.kafka
def test_cli_topics_create(kafka_settings: Settings) -> None:
    env_topics = {
        "DRIFTLINE_TOPICS_PREDICTIONS": kafka_settings.topics.predictions + ".cli",
        "DRIFTLINE_TOPICS_INTERNAL_PREFIX": kafka_settings.topics.internal_prefix + "cli.",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "driftline",
            "--bootstrap",
            kafka_settings.kafka.bootstrap,
            "topics",
            "create",
        ],
        capture_output=True,
        text=True,
        env={**_base_env(), **env_topics},
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert f"created  {kafka_settings.topics.predictions}.cli" in run.stdout


def test_unreachable_broker_gives_one_actionable_line() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "driftline", "--bootstrap", "127.0.0.1:1", "topics", "create"],
        capture_output=True,
        text=True,
        env=_base_env(),
        check=False,
        timeout=60,
    )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: cannot reach Kafka at 127.0.0.1:1")
    assert "DRIFTLINE_KAFKA_BOOTSTRAP" in lines[0]


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
