"""Logging settings from the environment (Go Inferflow's Kafka names, ``INFERFLOW_*`` for the rest)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TOPIC = "inferflow_inference_logs"
# Formats INFERFLOW_LOG_ENCODER=auto encodes in the child process: the built-in ones, which measured
# cheaper there (the served S1 bench, benchmarks/RESULTS.md); formats from plugins stay in the server
PROCESS_FORMATS = frozenset({"proto", "parquet", "arrow"})


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class LoggingSettings(BaseSettings):
    """Where inference logs go and how much may queue up. Every field has a working default."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    sink: str = Field(
        "auto", validation_alias=_env("INFERFLOW_LOG_SINK", "sink")
    )  # a registered sink's name; auto = kafka when KAFKA_BOOTSTRAP_SERVERS is set, else file; none = off
    kafka_bootstrap_servers: str | None = Field(
        None, validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers")
    )
    topic: str = Field(DEFAULT_TOPIC, validation_alias=_env("KAFKA_LOGGING_TOPIC", "topic"))
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none",
        validation_alias=_env("KAFKA_COMPRESSION_TYPE", "INFERFLOW_KAFKA_COMPRESSION", "kafka_compression"),
    )
    kafka_config: dict[str, str | int | float | bool] = Field(
        default_factory=dict, validation_alias=_env("INFERFLOW_KAFKA_CONFIG", "kafka_config")
    )  # extra librdkafka producer settings (JSON object)
    log_dir: str = Field("inferflow-logs", validation_alias=_env("INFERFLOW_LOG_DIR", "log_dir"))
    file_max_bytes: int = Field(
        64 * 1024 * 1024, gt=0, validation_alias=_env("INFERFLOW_LOG_FILE_MAX_BYTES", "file_max_bytes")
    )
    file_max_age_s: float = Field(
        3600.0, gt=0, validation_alias=_env("INFERFLOW_LOG_FILE_MAX_AGE_S", "file_max_age_s")
    )
    queue_size: int = Field(1024, gt=0, validation_alias=_env("INFERFLOW_LOG_QUEUE_SIZE", "queue_size"))
    linger_ms: float = Field(
        10.0, ge=0, le=1000, validation_alias=_env("INFERFLOW_LOG_LINGER_MS", "linger_ms")
    )  # the worker collects requests this long before encoding a batch (fewer GIL hand-offs)
    encoder: Literal["auto", "process", "thread"] = Field(
        "auto", validation_alias=_env("INFERFLOW_LOG_ENCODER", "encoder")
    )  # process: formats and sink run in a child process (off the server's GIL); thread: in the server;
    # auto: PROCESS_FORMATS in a child process (started with the first such log), others in the server
    encoder_nice: int = Field(
        10, ge=0, le=19, validation_alias=_env("INFERFLOW_LOG_ENCODER_NICE", "encoder_nice")
    )  # the encoder process's CPU priority below the server's (nice increment): it uses the CPU requests
    # leave idle instead of competing with the server and its clients for it; 0 = the server's priority
    log_slates: bool = Field(True, validation_alias=_env("INFERFLOW_LOG_SLATES", "log_slates"))

    @field_validator("sink")
    @classmethod
    def _sink(cls, value: str) -> str:
        value = value.strip().lower()
        if not value:
            raise ValueError("INFERFLOW_LOG_SINK must name a log sink, auto or none")
        return value

    def bootstrap_servers(self) -> str:
        """Comma-separated servers, whitespace removed (Go did not split them: go-compatibility §10.A1)."""
        raw = self.kafka_bootstrap_servers or ""
        return ",".join(s.strip() for s in raw.split(",") if s.strip())

    def effective_sink(self) -> str:
        if self.sink != "auto":
            return self.sink
        return "kafka" if self.bootstrap_servers() else "file"
