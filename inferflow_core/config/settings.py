"""Service settings from the environment: the anchor's names where they exist, ``INFERFLOW_*`` otherwise."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class ServiceSettings(BaseSettings):
    """Everything ``inferflow serve`` reads from the environment. All have working defaults."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    app_name: str = Field("inferflow", validation_alias=_env("APP_NAME", "app_name"))
    app_env: str = Field("local", validation_alias=_env("APP_ENV", "app_env"))
    app_port: int = Field(8085, validation_alias=_env("APP_PORT", "app_port"))
    app_log_level: str = Field("INFO", validation_alias=_env("APP_LOG_LEVEL", "app_log_level"))
    http_port: int | None = Field(None, validation_alias=_env("INFERFLOW_HTTP_PORT", "http_port"))
    config_dir: str | None = Field(None, validation_alias=_env("INFERFLOW_CONFIG_DIR", "config_dir"))
    etcd_server: str | None = Field(None, validation_alias=_env("ETCD_SERVER", "etcd_server"))
    etcd_watcher_enabled: bool = Field(
        True, validation_alias=_env("ETCD_WATCHER_ENABLED", "etcd_watcher_enabled")
    )
    etcd_username: str | None = Field(None, validation_alias=_env("ETCD_USERNAME", "etcd_username"))
    etcd_password: str | None = Field(None, validation_alias=_env("ETCD_PASSWORD", "etcd_password"))
    request_value_encoding: Literal["text", "binary"] = Field(
        "text", validation_alias=_env("INFERFLOW_REQUEST_VALUE_ENCODING", "request_value_encoding")
    )
    strict_plugins: bool = Field(False, validation_alias=_env("INFERFLOW_STRICT_PLUGINS", "strict_plugins"))
    strict_validation: bool = Field(
        False, validation_alias=_env("INFERFLOW_STRICT_VALIDATION", "strict_validation")
    )
    ready_with_rejected: bool = Field(
        False, validation_alias=_env("INFERFLOW_READY_WITH_REJECTED", "ready_with_rejected")
    )
    default_deadline_ms: int = Field(
        5000, gt=0, validation_alias=_env("INFERFLOW_DEFAULT_DEADLINE_MS", "default_deadline_ms")
    )
    max_message_bytes: int = Field(
        16 * 1024 * 1024, gt=0, validation_alias=_env("INFERFLOW_MAX_MESSAGE_BYTES", "max_message_bytes")
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, validation_alias=_env("INFERFLOW_SHUTDOWN_GRACE_S", "shutdown_grace_s")
    )
    dag_cache_size: int = Field(500, ge=1, validation_alias=_env("DAG_TOPOLOGY_CACHE_SIZE", "dag_cache_size"))
    config_source: str | None = Field(None, validation_alias=_env("INFERFLOW_CONFIG_SOURCE", "config_source"))
    bind_host: str = Field("0.0.0.0", validation_alias=_env("INFERFLOW_BIND_HOST", "bind_host"))
    log_json: bool = Field(True, validation_alias=_env("INFERFLOW_LOG_JSON", "log_json"))

    @property
    def model_config_prefix(self) -> str:
        """Key (relative to ``/config/``) under which this service's model configs live."""
        return f"inferflow/services/{self.app_name}/model-config/"

    @property
    def config_map_prefix(self) -> str:
        return self.model_config_prefix + "config-map/"

    @property
    def service_config_key(self) -> str:
        return self.model_config_prefix + "service-config"
