"""Process settings of the OnFS plugin, from the environment (Go Inferflow's names, go-compatibility §8.3).

Go Inferflow codes no defaults (a missing host panics, batch size 0 divides by zero). Here every setting has a
working default, and the remote backend is only chosen when ``EXTERNAL_SERVICE_ONFS_FS_HOST`` is set; without
it the embedded Parquet store under ``INFERFLOW_ONFS_LOCAL_DIR`` serves the features.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from inferflow_core.api import net


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class OnfsSettings(BaseSettings):
    """Everything the feature components read from the environment."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    fs_host: str = Field("", validation_alias=_env("EXTERNAL_SERVICE_ONFS_FS_HOST"))
    fs_port: int = Field(8089, ge=1, le=65535, validation_alias=_env("EXTERNAL_SERVICE_ONFS_FS_PORT"))
    # Go Inferflow defaults to TLS (skip-verify). Python gRPC cannot skip verification, so TLS here verifies
    # against the system roots; in-cluster deployments normally set plaintext (as Go's compose does).
    fs_plaintext: bool = Field(False, validation_alias=_env("EXTERNAL_SERVICE_ONFS_FS_GRPC_PLAIN_TEXT"))
    caller_id: str = Field("", validation_alias=_env("EXTERNAL_SERVICE_ONFS_FS_CALLER_ID"))
    caller_token: str = Field("", validation_alias=_env("EXTERNAL_SERVICE_ONFS_FS_CALLER_TOKEN"))
    deadline_ms: int = Field(200, validation_alias=_env("EXTERNAL_SERVICE_ONFS_FS_DEAD_LINE"))
    batch_size: int = Field(50, validation_alias=_env("EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE"))
    local_dir: str = Field("", validation_alias=_env("INFERFLOW_ONFS_LOCAL_DIR"))
    cache_bytes: int = Field(256 * 1024 * 1024, ge=0, validation_alias=_env("IN_MEMORY_CACHE_SIZE_IN_BYTES"))
    cache_l2_path: str = Field("", validation_alias=_env("INFERFLOW_ONFS_CACHE_L2_PATH"))
    # reconnect backoff of the OnFS channel (gRPC's default waits up to 120 s after an outage)
    reconnect_min_ms: int = Field(100, ge=1, validation_alias=_env("INFERFLOW_ONFS_RECONNECT_MIN_MS"))
    reconnect_max_ms: int = Field(500, ge=1, validation_alias=_env("INFERFLOW_ONFS_RECONNECT_MAX_MS"))
    # outbound TLS (docs/configuration.md): custom CA, client certificate (mTLS), server-name override
    tls_ca_file: str = Field("", validation_alias=_env("INFERFLOW_ONFS_TLS_CA_FILE"))
    tls_cert_file: str = Field("", validation_alias=_env("INFERFLOW_ONFS_TLS_CERT_FILE"))
    tls_key_file: str = Field("", validation_alias=_env("INFERFLOW_ONFS_TLS_KEY_FILE"))
    tls_server_name: str = Field("", validation_alias=_env("INFERFLOW_ONFS_TLS_SERVER_NAME"))

    @property
    def tls(self) -> net.ClientTls:
        return net.ClientTls(
            self.tls_ca_file, self.tls_cert_file, self.tls_key_file, self.tls_server_name, "OnFS TLS"
        )

    @property
    def remote(self) -> bool:
        return bool(self.fs_host)

    @property
    def target(self) -> str:
        return f"{self.fs_host}:{self.fs_port}"

    def problems(self) -> list[tuple[str, str]]:
        """Start-up errors of the remote settings (reported as config errors naming the env var)."""
        out: list[tuple[str, str]] = []
        if not self.remote:
            return out
        if self.batch_size <= 0:
            out.append(("", f"EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE must be > 0, got {self.batch_size}"))
        if self.deadline_ms <= 0:
            out.append(("", f"EXTERNAL_SERVICE_ONFS_FS_DEAD_LINE must be > 0 ms, got {self.deadline_ms}"))
        try:
            self.tls.check(self.fs_plaintext)
        except net.TlsConfigError as exc:
            out.append(("", exc.message))
        return out
