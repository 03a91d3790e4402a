"""Environment settings of the predator client (Go's env names, go-compatibility §8.3, with defaults)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from inferflow_core.api import net


class PredatorSettings(BaseSettings):
    """Read once when the plugin registers its component type (i.e. at process start)."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    port: int = Field(
        8001, gt=0, lt=65536, validation_alias=AliasChoices("EXTERNAL_SERVICE_PREDATOR_PORT", "port")
    )
    plain_text: bool = Field(
        False, validation_alias=AliasChoices("EXTERNAL_SERVICE_PREDATOR_GRPC_PLAIN_TEXT", "plain_text")
    )
    caller_id: str = Field(
        "", validation_alias=AliasChoices("EXTERNAL_SERVICE_PREDATOR_CALLER_ID", "caller_id")
    )
    caller_token: str = Field(
        "", validation_alias=AliasChoices("EXTERNAL_SERVICE_PREDATOR_CALLER_TOKEN", "caller_token")
    )
    max_message_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        validation_alias=AliasChoices("INFERFLOW_PREDATOR_MAX_MESSAGE_BYTES", "max_message_bytes"),
    )
    onnx_workers: int = Field(
        2, ge=1, validation_alias=AliasChoices("INFERFLOW_PREDATOR_ONNX_WORKERS", "onnx_workers")
    )
    onnx_intra_op_threads: int = Field(
        1,
        ge=0,
        validation_alias=AliasChoices("INFERFLOW_PREDATOR_ONNX_INTRA_OP_THREADS", "onnx_intra_op_threads"),
    )
    onnx_inline_us: float = Field(
        150.0,
        ge=0,
        validation_alias=AliasChoices("INFERFLOW_PREDATOR_ONNX_INLINE_US", "onnx_inline_us"),
    )
    """An embedded model call expected to take at most this many microseconds (the session's measured
    rate x the request's rows) runs inline on the event loop instead of on an ONNX thread; 0: never."""
    onnx_idle_inline_us: float = Field(
        1000.0,
        ge=0,
        validation_alias=AliasChoices("INFERFLOW_PREDATOR_ONNX_IDLE_INLINE_US", "onnx_idle_inline_us"),
    )
    """The same limit when the worker executes no other request (nothing waits for the event loop): the
    call skips the hand-off's two thread wake-ups. A request arriving meanwhile waits at most this long to
    start. Never below ``onnx_inline_us``; 0 (with ``onnx_inline_us`` 0): never inline."""
    shadow_max_inflight: int = Field(
        4,
        ge=1,
        validation_alias=AliasChoices("INFERFLOW_PREDATOR_SHADOW_MAX_INFLIGHT", "shadow_max_inflight"),
    )
    """Shadow calls running at once in this process (all models); a shadow beyond it is dropped and
    counted (``predator.shadow.dropped``), never queued."""
    # reconnect backoff of each KServe channel (gRPC's default waits up to 120 s after an outage)
    reconnect_min_ms: int = Field(
        100, ge=1, validation_alias=AliasChoices("INFERFLOW_PREDATOR_RECONNECT_MIN_MS", "reconnect_min_ms")
    )
    reconnect_max_ms: int = Field(
        500, ge=1, validation_alias=AliasChoices("INFERFLOW_PREDATOR_RECONNECT_MAX_MS", "reconnect_max_ms")
    )
    # outbound TLS (docs/configuration.md): custom CA, client certificate (mTLS), server-name override;
    # one setting for every remote endpoint of the plugin
    tls_ca_file: str = Field(
        "", validation_alias=AliasChoices("INFERFLOW_PREDATOR_TLS_CA_FILE", "tls_ca_file")
    )
    tls_cert_file: str = Field(
        "", validation_alias=AliasChoices("INFERFLOW_PREDATOR_TLS_CERT_FILE", "tls_cert_file")
    )
    tls_key_file: str = Field(
        "", validation_alias=AliasChoices("INFERFLOW_PREDATOR_TLS_KEY_FILE", "tls_key_file")
    )
    tls_server_name: str = Field(
        "", validation_alias=AliasChoices("INFERFLOW_PREDATOR_TLS_SERVER_NAME", "tls_server_name")
    )

    @property
    def tls(self) -> net.ClientTls:
        return net.ClientTls(
            self.tls_ca_file, self.tls_cert_file, self.tls_key_file, self.tls_server_name, "Predator TLS"
        )
