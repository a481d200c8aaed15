"""The one typed settings object, built once at the entry point and passed down.

Sources, later ones winning: defaults, a YAML file (``--config``), environment variables
``SFLOWPIPE_<SECTION>__<NAME>`` (e.g. ``SFLOWPIPE_DECODE__PORT=6343``), then command-line flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DecodeSettings(BaseModel):
    """`sflowpipe decode`: the sflowtool drop-in."""

    port: int = Field(6343, ge=1, le=65535, description="UDP port to listen on when no -r file is given")
    listen_address: str = Field("::", description="address to bind (:: takes IPv4 and IPv6)")


class KafkaSettings(BaseModel):
    """The Kafka cluster and sflowpipe's topics on it."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="HOST:PORT[,HOST:PORT...]")
    topic_prefix: str = Field("sflow.", description="prefix of every topic name (renames them all)")
    partitions: int = Field(6, ge=1, description="partitions of topics sflowpipe creates")
    replication_factor: int = Field(1, ge=1, description="replication factor of topics sflowpipe creates")
    compression: Literal["zstd", "lz4", "snappy", "gzip", "none"] = "zstd"
    linger_ms: int = Field(20, ge=0, description="producer batching delay")
    memory_queue_mb: int = Field(256, ge=1, description="producer in-memory queue bound, then spill to disk")
    message_timeout_s: float = Field(30.0, gt=0, description="give a message back to the spill queue after this")
    schema_registry_url: str | None = Field(None, description="Confluent-compatible Schema Registry; "
                                                              "unset: Avro single-object encoding")
    producer: dict[str, str] = Field(default_factory=dict, description="extra librdkafka producer settings")
    consumer: dict[str, str] = Field(default_factory=dict, description="extra librdkafka consumer settings")

    def topic(self, name: str) -> str:
        return self.topic_prefix + name


class TopicNames(BaseModel):
    """Topic names, before the prefix (default prefix ``sflow.``)."""

    raw: str = "raw"
    flow_samples: str = "flow-samples"
    counter_samples: str = "counter-samples"
    discard_samples: str = "discard-samples"
    deadletter: str = "deadletter"


class IngestSettings(BaseModel):
    """`sflowpipe ingest`: stateless UDP ingesters."""

    listen: str = Field("[::]:6343", description="UDP HOST:PORT; [::] takes IPv4 and IPv6")
    workers: int = Field(1, ge=1, le=64, description="processes, each with its own SO_REUSEPORT socket")
    rcvbuf_bytes: int = Field(32 << 20, ge=1 << 16, description="SO_RCVBUF requested per socket")
    batch_max_samples: int = Field(500, ge=1, description="flush an agent's batch at this many samples")
    batch_max_ms: float = Field(50, gt=0, description="... or when its oldest sample is this old")
    spill_dir: str = Field("./data/spill", description="on-disk queue while Kafka is unreachable")
    spill_max_mb: int = Field(1024, ge=1, description="bound of the on-disk queue (per worker)")
    metrics_listen: str = Field("0.0.0.0:9343", description="Prometheus /metrics HTTP HOST:PORT (port 0: any)")


class Settings(BaseSettings):
    """Everything sflowpipe can be configured with."""

    model_config = SettingsConfigDict(env_prefix="SFLOWPIPE_", env_nested_delimiter="__", extra="forbid")

    log_level: str = Field("INFO", description="logging level")
    decode: DecodeSettings = DecodeSettings()
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicNames = TopicNames()
    ingest: IngestSettings = IngestSettings()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # the environment overrides the YAML file (passed in as init values)
        return (env_settings, init_settings)


def load_settings(config_file: str | None = None, **overrides: Any) -> Settings:
    """Build the settings: YAML file (if any) under environment variables under explicit overrides."""
    data: dict[str, Any] = {}
    if config_file:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings")
        data.update(loaded)
    settings = Settings(**data)
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        section, _, name = dotted.partition(".")
        sections.setdefault(section, {})[name] = value
    update = {}
    for section, values in sections.items():
        current = getattr(settings, section)
        update[section] = type(current).model_validate({**current.model_dump(), **values})
    return settings.model_copy(update=update) if update else settings
