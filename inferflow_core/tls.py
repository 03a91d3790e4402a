"""TLS material from PEM files, for the servers (gRPC port, HTTP side port) and every outbound client.

* :class:`ServerTls` - certificate chain + key (+ a client CA for mTLS), re-read when the files change
  (a rotated Kubernetes Secret, cert-manager renewal): gRPC asks it before every new connection
  (``dynamic_ssl_server_credentials``), the HTTP side port builds each connection's ``SSLContext`` from it.
  A half-written rotation (cert and key that do not match yet) keeps the previous material and logs once.
* :class:`ClientTls` - custom CA, client certificate/key and a server-name override for outbound gRPC
  channels (OnFS, KServe, Numerix, etcd); :func:`open_channel` picks plaintext or TLS.

Every problem is a :class:`TlsConfigError` raised when the object is built (at start-up), never a
silent fall-back to plaintext. File contents are never logged; paths are.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from .errors import InferflowError

log = logging.getLogger("inferflow.tls")


class TlsConfigError(InferflowError):
    """TLS was requested but cannot be set up (missing or unreadable file, cert without key ...)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


def read_pem(path: str, what: str) -> bytes:
    """The bytes of ``path``; a :class:`TlsConfigError` naming ``what`` (the setting) if unreadable."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise TlsConfigError(f"{what}: cannot read {path!r} ({exc.strerror or exc})") from None
    if b"-----BEGIN" not in data:
        raise TlsConfigError(f"{what}: {path!r} is not a PEM file")
    return data


def _check_pair(cert_file: str, key_file: str, what: str) -> None:
    """The key must belong to the certificate (OpenSSL checks it for us)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            f"{what}: certificate {cert_file!r} and key {key_file!r} do not load: {exc}"
        ) from None


def _check_ca(ca_file: str, what: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"{what}: CA file {ca_file!r} does not load: {exc}") from None


def _signature(paths: Sequence[str]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append((-1, -1, -1))
    return tuple(out)


@dataclass(frozen=True)
class _ServerMaterial:
    cert: bytes
    key: bytes
    client_ca: bytes | None


class ServerTls:
    """Server certificate chain + key, and optionally the CA that client certificates must chain to."""

    def __init__(
        self, cert_file: str, key_file: str, client_ca_file: str | None = None, what: str = "TLS"
    ) -> None:
        if not cert_file or not key_file:
            raise TlsConfigError(f"{what}: a certificate file and a key file are both required")
        self.cert_file, self.key_file, self.client_ca_file = cert_file, key_file, client_ca_file or None
        self.what = what
        self._lock = threading.Lock()
        self._contexts: dict[bool, ssl.SSLContext] = {}
        self.generation = 0
        self._sig = _signature(self._paths)
        self._material = self._load()

    @property
    def _paths(self) -> tuple[str, ...]:
        return (self.cert_file, self.key_file) + ((self.client_ca_file,) if self.client_ca_file else ())

    @property
    def mtls(self) -> bool:
        return self.client_ca_file is not None

    def _load(self) -> _ServerMaterial:
        cert = read_pem(self.cert_file, f"{self.what} certificate")
        key = read_pem(self.key_file, f"{self.what} key")
        _check_pair(self.cert_file, self.key_file, self.what)
        ca = None
        if self.client_ca_file:
            ca = read_pem(self.client_ca_file, f"{self.what} client CA")
            _check_ca(self.client_ca_file, self.what)
        return _ServerMaterial(cert, key, ca)

    def refresh(self) -> bool:
        """Re-read the files if they changed; True when new material was loaded. Never raises."""
        sig = _signature(self._paths)
        if sig == self._sig:
            return False
        with self._lock:
            if sig == self._sig:
                return False
            try:
                material = self._load()
            except TlsConfigError as exc:
                log.warning(
                    "%s: rotated files do not load yet, keeping the previous ones: %s", self.what, exc
                )
                self._sig = sig  # retry when the files change again
                return False
            self._material, self._sig = material, sig
            self._contexts = {}
            self.generation += 1
        log.info("%s: certificate files changed, reloaded (generation %d)", self.what, self.generation)
        return True

    # -- gRPC --------------------------------------------------------------------------------------
    def _grpc_config(self) -> Any:
        m = self._material
        return grpc.ssl_server_certificate_configuration([(m.key, m.cert)], root_certificates=m.client_ca)

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials whose certificates follow the files: gRPC calls the fetcher per new connection."""

        served = [self.generation]  # what this server last got (the HTTP side port refreshes too)

        def fetch() -> Any:
            try:
                self.refresh()
                if self.generation == served[0]:
                    return None
                served[0] = self.generation
                return self._grpc_config()
            except Exception:  # pragma: no cover - a fetcher that raises would fail the handshake
                log.exception("%s: certificate reload failed", self.what)
                return None

        return grpc.dynamic_ssl_server_credentials(
            self._grpc_config(), fetch, require_client_authentication=self.mtls
        )

    # -- HTTP (ssl module) ---------------------------------------------------------------------------
    def ssl_context(self, verify_clients: bool | None = None) -> ssl.SSLContext:
        """The current server ``SSLContext`` (rebuilt after a rotation); ``verify_clients``: mTLS or not
        (default: mTLS when a client CA is configured)."""
        self.refresh()
        want = self.mtls if verify_clients is None else verify_clients
        if want and not self.mtls:
            raise TlsConfigError(f"{self.what}: client verification needs a client CA file")
        ctx = self._contexts.get(want)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(self.cert_file, self.key_file)
            if want and self._material.client_ca is not None:
                ctx.load_verify_locations(cadata=self._material.client_ca.decode("ascii", "replace"))
                ctx.verify_mode = ssl.CERT_REQUIRED
            self._contexts[want] = ctx
        return ctx


@dataclass(frozen=True)
class ClientTls:
    """Outbound TLS settings for one backend. All optional: an empty object means system roots, no
    client certificate and the target's host name."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    what: str = "TLS"

    @property
    def customised(self) -> bool:
        return bool(self.ca_file or self.cert_file or self.key_file or self.server_name)

    def check(self, plaintext: bool = False) -> None:
        """Raise :class:`TlsConfigError` now (at start-up) if the files cannot be used, or if TLS files
        are given for a connection configured as plaintext (never a silent downgrade)."""
        if plaintext:
            if self.customised:
                raise TlsConfigError(
                    f"{self.what}: TLS files or a server name are set but the connection is configured as "
                    "plaintext; unset one of them"
                )
            return
        self.credentials()

    def credentials(self) -> grpc.ChannelCredentials:
        if bool(self.cert_file) != bool(self.key_file):
            raise TlsConfigError(f"{self.what}: a client certificate needs its key and vice versa (set both)")
        ca = read_pem(self.ca_file, f"{self.what} CA") if self.ca_file else None
        if self.ca_file:
            _check_ca(self.ca_file, self.what)
        cert = key = None
        if self.cert_file:
            cert = read_pem(self.cert_file, f"{self.what} client certificate")
            key = read_pem(self.key_file, f"{self.what} client key")
            _check_pair(self.cert_file, self.key_file, self.what)
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def channel_options(self) -> list[tuple[str, Any]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def open_channel(
    target: str,
    plaintext: bool,
    tls: ClientTls | None = None,
    options: Sequence[tuple[str, Any]] = (),
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel to ``target``: plaintext, or TLS with ``tls`` (system roots if None).

    Pass ``credentials`` made once by ``tls.credentials()`` to avoid re-reading the files per channel.
    """
    if plaintext:
        return grpc.aio.insecure_channel(target, options=list(options))
    tls = tls or ClientTls()
    creds = credentials or tls.credentials()
    return grpc.aio.secure_channel(target, creds, options=[*options, *tls.channel_options()])
