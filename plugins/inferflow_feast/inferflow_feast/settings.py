"""Process settings of the Feast plugin, read from the environment when a model config is built."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FeastSettings(BaseSettings):
    """Everything ``feast_components`` read from the environment (prefix ``INFERFLOW_FEAST_``)."""

    model_config = SettingsConfigDict(env_prefix="INFERFLOW_FEAST_", extra="ignore")

    repo: str = Field("", description="Feast repository directory (holds feature_store.yaml)")
    deadline_ms: int = Field(200, gt=0, description="per-batch timeout (ms), also bounded by the request")
    batch_size: int = Field(100, gt=0, description="unique entities per get_online_features call")
    workers: int = Field(4, gt=0, description="threads running SDK calls (batches run in parallel)")
    cache_bytes: int = Field(256 * 1024 * 1024, ge=0, description="L1 feature cache bound (bytes)")
    cache_l2_path: str = Field("", description="optional diskcache L2 directory shared by workers (tmpfs)")
