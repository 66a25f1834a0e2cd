"""One settings object, built once by the CLI and passed down.

Sources, from lowest to highest precedence: the defaults below, an optional TOML file, environment
variables prefixed ``DRIFTLINE_`` (``DRIFTLINE_KAFKA_BOOTSTRAP``, ``DRIFTLINE_TOPICS_ALERTS``: the
first ``_`` after the section name separates it from the field), and CLI flags. Nothing in
driftline reads the environment anywhere else.

>>> Settings.load(kafka={"bootstrap": "broker:9093"}).kafka.bootstrap
'broker:9093'
>>> Settings.load().topics.predictions
'driftline.predictions'
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from driftline.errors import ConfigError

if TYPE_CHECKING:
    from driftline.models.spec import RetrainSpec
    from driftline.pipeline import PipelineSpec

__all__ = [
    "CodecSettings",
    "KafkaSettings",
    "MetricsSettings",
    "ModelsSettings",
    "PipelineSettings",
    "RunSettings",
    "Settings",
    "StateSettings",
    "TopicSettings",
]

DAY_MS = 24 * 3600 * 1000


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    """How to reach Kafka. Security settings pass through to every client driftline makes."""

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    client: dict[str, str] = Field(
        default_factory=dict, description="Any other librdkafka property, passed through as is."
    )

    def client_config(self) -> dict[str, str]:
        """The librdkafka properties shared by every producer, consumer and admin client."""
        config = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol}
        optional: dict[str, str | SecretStr | None] = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": self.ssl_key_password,
        }
        for key, value in optional.items():
            if isinstance(value, SecretStr):
                config[key] = value.get_secret_value()
            elif value is not None:
                config[key] = value
        config.update(self.client)
        return config


class TopicSettings(_Section):
    """Topic names (defaults from ``shared/contracts/README.md``) and how they are created."""

    predictions: str = "driftline.predictions"
    labels: str = "driftline.labels"
    alerts: str = "driftline.alerts"
    models: str = "driftline.models"
    deadletter: str = "driftline.deadletter"
    internal_prefix: str = "driftline.internal."
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    retention_ms: int = Field(default=7 * DAY_MS, ge=-1)
    deadletter_retention_ms: int = Field(default=30 * DAY_MS, ge=-1)
    max_message_bytes: int = Field(default=8 << 20, ge=1024)


class MetricsSettings(_Section):
    """The Prometheus ``/metrics`` endpoint of ``driftline run``."""

    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = Field(default=9464, ge=0, le=65535)


class CodecSettings(_Section):
    """Limits applied when records become events."""

    max_event_bytes: int = Field(default=1 << 20, ge=64)


class PipelineSettings(_Section):
    """Joining and ordering (see ``driftline.pipeline.PipelineSpec``).

    ``join_dedupe_ms``: how long after its join a repeated label is recognised and ignored
    (default: ``join_ttl_ms``); shorter keeps less state, and a later repeat waits as an orphan
    label and is counted when it expires (see ``driftline.join``).
    """

    join_ttl_ms: int = Field(default=7 * DAY_MS, ge=1)
    join_dedupe_ms: int | None = Field(default=None, ge=0)
    lateness_ms: int = Field(default=60_000, ge=0)


class StateSettings(_Section):
    """Checkpoints of the stream processors' state (see ``driftline.checkpoint``).

    ``key`` signs every checkpoint (HMAC-SHA256) and is checked before one is loaded: a secret of
    at least 16 characters shared by all the workers, e.g. from ``openssl rand -hex 32``.
    """

    key: SecretStr | None = None

    def key_bytes(self) -> bytes:
        """The key as bytes, or ``ConfigError`` saying how to set it."""
        secret = self.key.get_secret_value() if self.key is not None else ""
        if len(secret) < 16:
            raise ConfigError(
                "driftline run signs its state checkpoints and needs a key of at least 16 "
                "characters: set DRIFTLINE_STATE_KEY (or [state] key) to a secret shared by the "
                "workers, e.g. the output of `openssl rand -hex 32`"
            )
        return secret.encode()


class RunSettings(_Section):
    """``driftline run``, the Kafka worker (see ``driftline.streams.runtime``).

    Outputs, state checkpoints and input offsets are committed together, in one Kafka
    transaction, every ``commit_interval_ms`` (or less often while checkpoints are big, so that
    committing takes at most a fifth of the time). A join partition with no input for ``idle_ms``
    releases everything it holds and stops holding the monitors back. ``exit_when_idle``
    (seconds): flush and exit after that long without records, once every join partition
    (this worker's or another's) has released all it held to this worker's monitors (tests,
    backfills).
    ``instance_id``: a name unique to the worker and stable across its restarts (a pod name);
    it makes a restarted worker abort its predecessor's open transaction at once, instead of
    after ``transaction_timeout_ms``.
    """

    group_id: str = "driftline"
    instance_id: str | None = None
    batch_size: int = Field(default=5000, ge=1)
    commit_interval_ms: int = Field(default=1000, ge=10)
    idle_ms: int = Field(default=10_000, ge=100)
    exit_when_idle: float | None = Field(default=None, gt=0)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    transaction_timeout_ms: int = Field(default=30_000, ge=1000)


class ModelsSettings(_Section):
    """Online retraining and model versions (see ``driftline.models``; the defaults are those of
    ``driftline.models.RetrainSpec``, whose docstring explains each one).

    ``key`` signs every model version (HMAC-SHA256) and is checked by every serving process
    before it loads one: a secret of at least 16 characters shared by driftline and the
    services, e.g. from ``openssl rand -hex 32`` (``DRIFTLINE_MODELS_KEY``). ``artifact_dir``:
    the artifact store for versions over ``max_inline_bytes``, which the services read too: a
    folder, or an S3 bucket written ``s3://bucket/optional/prefix`` (``pip install
    'driftline[s3]'``). For a bucket, ``s3_endpoint_url`` points at an S3-compatible service
    instead of AWS (MinIO, Ceph, R2...: ``http://minio:9000``) and ``s3_region`` names its
    region; the credentials are boto3's own (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance or container role), never a
    driftline setting. ``enabled``: whether ``driftline run`` retrains (:meth:`retrains`);
    unset, it does when a key is set. ``driftline replay`` retrains when given ``--models-out``.
    """

    enabled: bool | None = None
    key: SecretStr | None = None
    learner: str = "hoeffding_adaptive_tree"
    task: Literal["classification", "regression"] | None = None
    min_events: int = Field(default=1000, ge=1)
    buffer_size: int = Field(default=200, ge=0)
    min_paired: int = Field(default=250, ge=1)
    max_paired: int = Field(default=5000, ge=1)
    margin: float = Field(default=0.02, ge=0.0, lt=1.0)
    alpha: float = Field(default=0.01, gt=0.0, lt=1.0)
    trigger_kinds: tuple[str, ...] = ("concept_drift",)
    challenge_every: int = Field(default=0, ge=0)
    refresh_every: int = Field(default=250, ge=0)
    refresh_window: int = Field(default=0, ge=0)
    max_inline_bytes: int = Field(default=900_000, ge=0)
    seed: int = 0
    artifact_dir: str = "driftline-artifacts"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None

    def key_bytes(self) -> bytes:
        """The signing key as bytes, or ``ConfigError`` saying how to set it."""
        secret = self.key.get_secret_value() if self.key is not None else ""
        if len(secret) < 16:
            raise ConfigError(
                "model versions are signed and need a key of at least 16 characters: set "
                "DRIFTLINE_MODELS_KEY (or [models] key) to a secret shared with the serving "
                "processes, e.g. the output of `openssl rand -hex 32`"
            )
        return secret.encode()

    def retrains(self) -> bool:
        """Whether ``driftline run`` retrains: ``enabled``, or, when unset, whether a key is set.

        ``enabled = true`` without a key is a ``ConfigError`` when the worker starts.
        """
        return self.enabled if self.enabled is not None else self.key is not None

    def retrain_spec(self) -> RetrainSpec:
        """The retraining spec from these settings."""
        from driftline.models.spec import RetrainSpec

        store = {"artifact_dir", "s3_endpoint_url", "s3_region"}
        return RetrainSpec.from_dict(self.model_dump(exclude={"enabled", "key", *store}))


_config_file: ContextVar[Path | None] = ContextVar("driftline_config_file", default=None)


class Settings(BaseSettings):
    """Everything driftline can be told. Build it with :meth:`load`."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    metrics: MetricsSettings = MetricsSettings()
    codec: CodecSettings = CodecSettings()
    pipeline: PipelineSettings = PipelineSettings()
    state: StateSettings = StateSettings()
    run: RunSettings = RunSettings()
    models: ModelsSettings = ModelsSettings()
    monitor: dict[str, Any] = Field(
        default_factory=dict,
        description="What to monitor and thresholds: the fields of driftline.monitors.MonitorSpec.",
    )

    def pipeline_spec(self) -> PipelineSpec:
        """The pipeline's spec from these settings (``ConfigError`` if ``monitor`` is wrong)."""
        from driftline.monitors.spec import MonitorSpec
        from driftline.pipeline import PipelineSpec

        return PipelineSpec(
            monitor=MonitorSpec.from_dict(self.monitor),
            join_ttl_ms=self.pipeline.join_ttl_ms,
            join_dedupe_ms=self.pipeline.join_dedupe_ms,
            lateness_ms=self.pipeline.lateness_ms,
        )

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Defaults < ``config_file`` (TOML) < ``DRIFTLINE_*`` variables < ``overrides``.

        ``overrides`` are the CLI flags, by section: ``load(kafka={"bootstrap": "b:9092"})``.
        Raises :class:`~driftline.errors.ConfigError` naming the bad setting.
        """
        path = Path(config_file) if config_file is not None else None
        if path is not None and not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass an existing TOML file")
        token = _config_file.set(path)
        try:
            return cls(**overrides)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid settings: {problems}") from None
        except ValueError as exc:  # a TOML file that does not parse
            raise ConfigError(f"config file {path} could not be read: {exc}") from None
        finally:
            _config_file.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)
