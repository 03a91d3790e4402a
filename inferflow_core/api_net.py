"""Network pieces plugins share, as one namespace: ``from inferflow_core.api import net``.

Outbound gRPC channels (``open_channel`` with a ``ClientTls``, ``reconnect_options`` for a bounded reconnect
backoff), ``gather_calls`` for a fan-out of batches that needs no task when there is one batch, TLS for a
plugin's own server (``ServerTls``; ``TlsConfigError`` for a setting that cannot work) and
``serve_grpc_service``: a plugin's own gRPC server with health, reflection, metrics and graceful shutdown
(``inferflow-onfs serve``, ``inferflow-numerix serve``), whose shared command-line flags are added by
``add_serve_arguments`` and read back by ``server_tls``.
"""

from __future__ import annotations

from .channels import gather_calls, reconnect_options
from .serving.standalone import add_serve_arguments, serve_grpc_service, server_tls
from .tls import ClientTls, ServerTls, TlsConfigError, open_channel

__all__ = [
    "ClientTls",
    "ServerTls",
    "TlsConfigError",
    "add_serve_arguments",
    "gather_calls",
    "open_channel",
    "reconnect_options",
    "serve_grpc_service",
    "server_tls",
]
