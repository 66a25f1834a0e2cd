"""How the clients' librdkafka properties are layered: defaults < the user's < the caller's."""

from __future__ import annotations

from driftline.settings import Settings
from driftline.streams.clients import consumer_config, producer_config


def test_the_users_client_properties_override_driftlines_defaults() -> None:
    kafka = Settings.load(
        kafka={"client": {"compression.type": "zstd", "linger.ms": "50", "group.id": "theirs"}}
    ).kafka
    produce = producer_config(kafka)
    assert (produce["compression.type"], produce["linger.ms"]) == ("zstd", "50")
    assert produce["enable.idempotence"] is True  # a default the user left alone
    # what a caller needs wins over both
    assert producer_config(kafka, **{"compression.type": "none"})["compression.type"] == "none"
    consume = consumer_config(kafka, "driftline")
    assert consume["group.id"] == "driftline" and consume["enable.auto.commit"] is False
    assert consume["auto.offset.reset"] == "earliest"


def test_without_client_properties_the_defaults_apply() -> None:
    kafka = Settings.load().kafka
    assert producer_config(kafka)["compression.type"] == "lz4"
    assert (
        consumer_config(kafka, "g", **{"fetch.queue.backoff.ms": 1})["fetch.queue.backoff.ms"] == 1
    )
