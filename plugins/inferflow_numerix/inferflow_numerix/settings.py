"""Environment settings of the Numerix plugin (Go's ``NUMERIX_CLIENT_V1_*`` names, go-compatibility §8.3).

None is mandatory: without ``NUMERIX_CLIENT_V1_HOST`` the component evaluates expressions in process
(the embedded evaluator) and the other client settings are ignored.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from inferflow_core.api import net


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class NumerixSettings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    host: str = Field("", validation_alias=_env("NUMERIX_CLIENT_V1_HOST", "host"))
    port: int = Field(8083, gt=0, lt=65536, validation_alias=_env("NUMERIX_CLIENT_V1_PORT", "port"))
    deadline_ms: float = Field(
        5000, gt=0, validation_alias=_env("NUMERIX_CLIENT_V1_DEADLINE_MS", "deadline_ms")
    )
    plaintext: bool = Field(False, validation_alias=_env("NUMERIX_CLIENT_V1_PLAINTEXT", "plaintext"))
    auth_token: str = Field("", validation_alias=_env("NUMERIX_CLIENT_V1_AUTHTOKEN", "auth_token"))
    batch_size: int = Field(100, gt=0, validation_alias=_env("NUMERIX_CLIENT_V1_BATCHSIZE", "batch_size"))
    # the Numerix service's own APP_NAME: its expressions live under /config/<app>/expression-config/
    numerix_app_name: str = Field("numerix", validation_alias=_env("NUMERIX_APP_NAME", "numerix_app_name"))
    # this service's APP_NAME, sent as the numerix-caller-id metadata
    caller_id: str = Field("inferflow", validation_alias=_env("APP_NAME", "caller_id"))
    # reconnect backoff of the Numerix channel (gRPC's default waits up to 120 s after an outage)
    reconnect_min_ms: int = Field(
        100, ge=1, validation_alias=_env("INFERFLOW_NUMERIX_RECONNECT_MIN_MS", "reconnect_min_ms")
    )
    reconnect_max_ms: int = Field(
        500, ge=1, validation_alias=_env("INFERFLOW_NUMERIX_RECONNECT_MAX_MS", "reconnect_max_ms")
    )
    # outbound TLS (docs/configuration.md): custom CA, client certificate (mTLS), server-name override
    tls_ca_file: str = Field("", validation_alias=_env("INFERFLOW_NUMERIX_TLS_CA_FILE", "tls_ca_file"))
    tls_cert_file: str = Field("", validation_alias=_env("INFERFLOW_NUMERIX_TLS_CERT_FILE", "tls_cert_file"))
    tls_key_file: str = Field("", validation_alias=_env("INFERFLOW_NUMERIX_TLS_KEY_FILE", "tls_key_file"))
    tls_server_name: str = Field(
        "", validation_alias=_env("INFERFLOW_NUMERIX_TLS_SERVER_NAME", "tls_server_name")
    )

    @property
    def tls(self) -> net.ClientTls:
        return net.ClientTls(
            self.tls_ca_file, self.tls_cert_file, self.tls_key_file, self.tls_server_name, "Numerix TLS"
        )

    @property
    def remote(self) -> bool:
        return bool(self.host)

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


def expression_prefix(app_name: str) -> str:
    """Config-tree prefix (relative to ``/config/``) of the expressions: ``<app>/expression-config/``."""
    return f"{app_name}/expression-config/"
