"""Service settings from the environment: Go Inferflow's names where they exist, ``INFERFLOW_*`` otherwise."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .limits import ReliabilitySettings


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class ServiceSettings(BaseSettings, ReliabilitySettings):
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
    etcd_password: str | None = Field(
        None, validation_alias=_env("ETCD_PASSWORD", "etcd_password"), repr=False
    )
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
    idle_spin_us: int = Field(
        500, ge=0, le=100_000, validation_alias=_env("INFERFLOW_IDLE_SPIN_US", "idle_spin_us")
    )
    """Longest time an idle worker polls its sockets before it sleeps, so a request arriving soon after
    pays no vCPU wake-up and cold caches. The window adapts (serving/eventloop.py): waits that end within
    it double it back up, a longer one resets it to 0. 0 = sleep at once."""
    dag_cache_size: int = Field(500, ge=1, validation_alias=_env("DAG_TOPOLOGY_CACHE_SIZE", "dag_cache_size"))
    config_source: str | None = Field(None, validation_alias=_env("INFERFLOW_CONFIG_SOURCE", "config_source"))
    bind_host: str = Field("0.0.0.0", validation_alias=_env("INFERFLOW_BIND_HOST", "bind_host"))
    log_json: bool = Field(True, validation_alias=_env("INFERFLOW_LOG_JSON", "log_json"))

    grpc_max_connection_age_s: float | None = Field(
        None, gt=0, validation_alias=_env("INFERFLOW_GRPC_MAX_CONNECTION_AGE_S", "grpc_max_connection_age_s")
    )
    """Close client connections after this many seconds (GOAWAY; clients reconnect and re-resolve), so
    replicas added by an autoscaler get traffic from long-lived channels. Unset = never."""
    grpc_max_connection_age_grace_s: float | None = Field(
        None,
        ge=0,
        validation_alias=_env("INFERFLOW_GRPC_MAX_CONNECTION_AGE_GRACE_S", "grpc_max_connection_age_grace_s"),
    )
    """After the max age, in-flight calls get this long to finish before the connection is closed."""
    access_log_sample: float = Field(
        0.0, ge=0, le=1, validation_alias=_env("INFERFLOW_ACCESS_LOG_SAMPLE", "access_log_sample")
    )
    """Share of requests that get an access log line (logger ``inferflow.access``: API, model, tracking
    id, targets, latency, status); 0 = none, 1 = every request."""
    worker_max_restarts: int = Field(
        5, ge=0, validation_alias=_env("INFERFLOW_WORKER_MAX_RESTARTS", "worker_max_restarts")
    )
    """``--workers N``: more worker restarts than this within the window ends the process (exit 3)."""
    worker_restart_window_s: float = Field(
        60.0, gt=0, validation_alias=_env("INFERFLOW_WORKER_RESTART_WINDOW_S", "worker_restart_window_s")
    )

    # -- security (docs/configuration.md, "Security") ------------------------------------------------
    http_bind_host: str | None = Field(
        None, validation_alias=_env("INFERFLOW_HTTP_BIND_HOST", "http_bind_host")
    )
    """Listen address of the HTTP side port; unset = ``INFERFLOW_BIND_HOST``."""
    tls_cert_file: str | None = Field(None, validation_alias=_env("INFERFLOW_TLS_CERT_FILE", "tls_cert_file"))
    """Server certificate chain (PEM) for the gRPC port and the HTTP side port; with the key, turns TLS on."""
    tls_key_file: str | None = Field(None, validation_alias=_env("INFERFLOW_TLS_KEY_FILE", "tls_key_file"))
    tls_client_ca_file: str | None = Field(
        None, validation_alias=_env("INFERFLOW_TLS_CLIENT_CA_FILE", "tls_client_ca_file")
    )
    """CA bundle for client certificates: when set, the gRPC port requires one (mTLS)."""
    http_max_connections: int = Field(
        1024, gt=0, validation_alias=_env("INFERFLOW_HTTP_MAX_CONNECTIONS", "http_max_connections")
    )
    """Open connections the HTTP side port keeps (kept-alive ones included); beyond it a new connection
    is answered 503 and closed, so idle connections cannot exhaust the process's file descriptors."""
    http_api: bool = Field(True, validation_alias=_env("INFERFLOW_HTTP_API", "http_api"))
    """Serve the four APIs over HTTP on the HTTP side port (``POST /v1/models/{id}/pointwise`` ...,
    ``/openapi.json``); ``false`` leaves only /health and /metrics there."""
    http_tls: Literal["auto", "off", "tls", "mtls"] = Field(
        "auto", validation_alias=_env("INFERFLOW_HTTP_TLS", "http_tls")
    )
    """HTTP side port: ``auto`` = like the gRPC port; ``tls`` = no client certificate (kubelet probes)."""
    grpc_reflection: Literal["auto", "on", "off"] = Field(
        "auto", validation_alias=_env("INFERFLOW_GRPC_REFLECTION", "grpc_reflection")
    )
    """``auto`` = on unless caller authentication is configured."""
    auth_tokens: str = Field("", validation_alias=_env("INFERFLOW_AUTH_TOKENS", "auth_tokens"), repr=False)
    """Comma-separated bearer tokens accepted from callers (``authorization: Bearer <token>``)."""
    auth_tokens_file: str | None = Field(
        None, validation_alias=_env("INFERFLOW_AUTH_TOKENS_FILE", "auth_tokens_file")
    )
    """One token per line, optionally followed by the APIs it may call; re-read when it changes."""
    auth_allowed_identities: str = Field(
        "", validation_alias=_env("INFERFLOW_AUTH_ALLOWED_IDENTITIES", "auth_allowed_identities")
    )
    """Comma-separated client-certificate identities (CN or any SAN) allowed to call."""
    auth_apis: str = Field(
        "pointwise,pairwise,slatewise,retrieve_model_score",
        validation_alias=_env("INFERFLOW_AUTH_APIS", "auth_apis"),
    )
    """APIs that require an authenticated caller once tokens or identities are configured."""
    auth_require: Literal["any", "all"] = Field(
        "any", validation_alias=_env("INFERFLOW_AUTH_REQUIRE", "auth_require")
    )
    """``any``: a valid token or an allowed certificate; ``all``: both (when both are configured)."""
    metrics_access: Literal["open", "token", "off"] = Field(
        "open", validation_alias=_env("INFERFLOW_METRICS_ACCESS", "metrics_access")
    )
    ready_details: Literal["open", "token", "off"] = Field(
        "open", validation_alias=_env("INFERFLOW_READY_DETAILS", "ready_details")
    )
    """``/health/ready`` body: full details (``open``), only with a bearer token, or just the status."""
    explain_enabled: bool = Field(
        False, validation_alias=_env("INFERFLOW_EXPLAIN_ENABLED", "explain_enabled")
    )
    """Honour ``inferflow-explain: 1`` request metadata (EXPLAIN ANALYZE in a response trailer). Off by
    default; with auth configured, only for callers of an API that requires auth (never anonymous)."""
    explain_max_bytes: int = Field(
        6144, ge=512, validation_alias=_env("INFERFLOW_EXPLAIN_MAX_BYTES", "explain_max_bytes")
    )
    """Cap of the explain trailer's JSON (gRPC clients refuse metadata above 8 KiB by default): column
    samples are dropped first, then per-node details."""
    explain_sample_rows: int = Field(
        3, ge=0, validation_alias=_env("INFERFLOW_EXPLAIN_SAMPLE_ROWS", "explain_sample_rows")
    )
    """Rows of each written column included in the trailer when the caller asks for columns."""
    etcd_ca_file: str | None = Field(
        None, validation_alias=_env("INFERFLOW_ETCD_CA_FILE", "ETCDCTL_CACERT", "etcd_ca_file")
    )
    etcd_cert_file: str | None = Field(
        None, validation_alias=_env("INFERFLOW_ETCD_CERT_FILE", "ETCDCTL_CERT", "etcd_cert_file")
    )
    etcd_key_file: str | None = Field(
        None, validation_alias=_env("INFERFLOW_ETCD_KEY_FILE", "ETCDCTL_KEY", "etcd_key_file")
    )
    etcd_server_name: str | None = Field(
        None, validation_alias=_env("INFERFLOW_ETCD_SERVER_NAME", "etcd_server_name")
    )

    @field_validator("grpc_reflection", mode="before")
    @classmethod
    def _reflection_words(cls, value: object) -> object:
        words = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}
        return (
            words.get(str(value).strip().lower(), str(value).strip().lower()) if value is not None else value
        )

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
