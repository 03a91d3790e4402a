"""Pydantic models of a model config (Go Inferflow's JSON, go-compatibility §2.2) and the service config."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Component sections Horizon (Go Inferflow's config generator) emits that Go Inferflow ignores.
# Accepted, not used.
KNOWN_EXTRA_COMPONENT_SECTIONS = {"real_time_pricing_feature_components", "seen_score_components"}
# A key with this suffix is a component section even when no installed plugin registers it (so the
# compiler reports it as a section without a plugin); plugins register the config key they consume.
COMPONENT_SECTION_SUFFIX = "_components"
FEATURE_INITIALIZER = "feature_initializer"
# component_config keys that are switches, not sections: no component type may claim one
RESERVED_SECTION_KEYS = {"cache_enabled", "cache_version", "cache_ttl", "error_logging_percent"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DagExecutionConfig(_Strict):
    component_dependency: dict[str, list[str]] = Field(min_length=1)


class ComponentConfig(BaseModel):
    """``component_config``: global switches plus one list per component section.

    The core names no section: every other key is kept as it came (``model_extra``) and :meth:`sections`
    picks the component sections out of them; each entry is validated by the model its plugin registers.
    """

    model_config = ConfigDict(extra="allow")

    cache_enabled: bool = False
    cache_version: int = Field(default=0, ge=0)
    cache_ttl: int = Field(default=0, ge=0)
    error_logging_percent: int = Field(default=0, ge=0, le=100)

    def sections(self, registered: Collection[str] = ()) -> dict[str, Any]:
        """Every component section of this config, in config order: each ``*_components`` key plus any
        key a ``registered`` component type consumes (a plugin's key need not end in ``_components``).
        Values are as they came: a value that is not a list of objects is reported by the compiler."""
        return {
            key: value
            for key, value in (self.model_extra or {}).items()
            if key.endswith(COMPONENT_SECTION_SUFFIX) or key in registered
        }

    @property
    def effective_cache_version(self) -> int:
        return self.cache_version or 1


class ResponseConfig(_Strict):
    features: list[str] = []
    model_schema_features_perc: int = Field(default=0, ge=0, le=100)
    logging_perc: int = Field(default=0, ge=0, le=100)
    log_features: bool = False
    log_batch_size: int = Field(default=0, ge=0)

    @property
    def id_column(self) -> str:
        """``features[0]`` names the target-id column of the Predict APIs (fallback ``id``)."""
        return self.features[0] if self.features and self.features[0] else "id"

    @property
    def effective_log_batch_size(self) -> int:
        return self.log_batch_size or 500


class ModelConfig(BaseModel):
    """The value of ``.../config-map/<model_config_id>``."""

    model_config = ConfigDict(extra="forbid")

    dag_execution_config: DagExecutionConfig
    component_config: ComponentConfig = ComponentConfig()
    response_config: ResponseConfig = ResponseConfig()
    # extension: columns the request supplies (target, context or pair/slate features) that components
    # read; a read column neither produced by a component nor listed here is a validation warning
    request_features: list[str] = []
    route_config: Any = None
    logging_ttl: Any = None


class ServiceConfig(BaseModel):
    """The value of ``.../model-config/service-config``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    # the inference-log format name (Go Inferflow's key; None = the logging plugin's default): which
    # names exist is up to the plugins, which check it through ``validate_service_config``
    v2_logging_type: str | None = Field(default=None, alias="v2-logging-type")
    compression_enabled: bool = Field(default=False, alias="compression-enabled")

    @field_validator("v2_logging_type")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not value:
            raise ValueError("v2-logging-type must not be empty")
        return value
