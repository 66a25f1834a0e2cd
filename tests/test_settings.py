"""Settings: precedence of defaults < TOML < environment < flags, secrets, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.errors import ConfigError
from driftline.settings import Settings


@pytest.fixture
def toml_file(tmp_path: Path) -> Path:
    path = tmp_path / "driftline.toml"
    path.write_text(
        '[kafka]\nbootstrap = "toml:1"\nsasl_password = "s3cret"\n'
        '[topics]\nalerts = "alerts.toml"\nlabels = "labels.toml"\npartitions = 2\n'
    )
    return path


def test_defaults_follow_the_contracts_readme(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DRIFTLINE_KAFKA_BOOTSTRAP", "DRIFTLINE_TOPICS_ALERTS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.load()
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    topics = settings.topics
    assert (topics.predictions, topics.labels, topics.alerts, topics.models, topics.deadletter) == (
        "driftline.predictions",
        "driftline.labels",
        "driftline.alerts",
        "driftline.models",
        "driftline.deadletter",
    )


def test_precedence(toml_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP", "env:1")
    monkeypatch.setenv("DRIFTLINE_TOPICS_ALERTS", "alerts.env")
    settings = Settings.load(toml_file, kafka={"bootstrap": "flag:1"})
    assert settings.kafka.bootstrap == "flag:1"  # flag over env over TOML
    assert settings.topics.alerts == "alerts.env"  # env over TOML
    assert settings.topics.labels == "labels.toml"  # TOML over default
    assert settings.topics.partitions == 2
    assert settings.topics.models == "driftline.models"  # default


def test_security_settings_pass_through_and_stay_secret(
    toml_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DRIFTLINE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    settings = Settings.load(toml_file, kafka={"client": {"client.id": "x"}})
    config = settings.kafka.client_config()
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.password"] == "s3cret"
    assert config["client.id"] == "x"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)


def test_errors_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"topics\.partitions"):
        Settings.load(topics={"partitions": 0})
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="could not be read"):
        Settings.load(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[kafka]\nbootstrapp = 'x'\n")
    with pytest.raises(ConfigError, match="bootstrapp"):
        Settings.load(unknown)
