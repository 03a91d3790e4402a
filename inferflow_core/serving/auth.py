"""Caller authentication for the four APIs (and the HTTP side port's ``/metrics`` and ready details).

A caller proves who it is with a **bearer token** in gRPC metadata (``authorization: Bearer <token>``;
tokens from ``INFERFLOW_AUTH_TOKENS`` and/or ``INFERFLOW_AUTH_TOKENS_FILE``) and/or a **client
certificate** on an mTLS connection whose common name or any SAN is in ``INFERFLOW_AUTH_ALLOWED_IDENTITIES``.
``INFERFLOW_AUTH_APIS`` lists the APIs that need it; ``INFERFLOW_AUTH_REQUIRE`` = ``any`` (either proof)
or ``all`` (every configured proof). Health and reflection are never behind auth.

A token-file line is ``<token>`` (valid for everything) or ``<token> <scope>[,<scope>...]`` with scopes
among the API names plus ``metrics`` and ``ready`` (the HTTP side port). ``#`` starts a comment. The file
is re-read (at most once a second) when it changes; a file that no longer parses keeps the old tokens.

Answers: no credentials or an unknown token -> UNAUTHENTICATED; a valid token not scoped for the API or
a certificate identity not on the list -> PERMISSION_DENIED. Tokens are compared with
``hmac.compare_digest`` against every configured token (no early exit) and never logged.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import grpc

from ..errors import InferflowError
from ..observability.metrics import Metrics

log = logging.getLogger("inferflow.auth")

APIS = ("pointwise", "pairwise", "slatewise", "retrieve_model_score")
HTTP_SCOPES = ("metrics", "ready")
API_OF_METHOD = {
    **{f"/{svc}/Infer{kind.capitalize()}Wise": f"{kind}wise" for svc in ("Predict", "PredictService")
       for kind in ("point", "pair", "slate")},
    "/Inferflow/RetrieveModelScore": "retrieve_model_score",
}  # fmt: skip
_ALL = frozenset((*APIS, *HTTP_SCOPES))


class AuthConfigError(InferflowError):
    """Authentication settings that cannot work (unknown API name, unreadable token file ...)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_token_lines(text: str, source: str) -> list[tuple[bytes, frozenset[str]]]:
    """``(token, scopes)`` per non-comment line; raises :class:`AuthConfigError` naming the line number."""
    out: list[tuple[bytes, frozenset[str]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        token, _, rest = line.partition(" ")
        scopes = frozenset(_split(rest.replace(" ", ","))) or _ALL
        unknown = sorted(scopes - _ALL)
        if unknown:
            raise AuthConfigError(
                f"{source} line {number}: unknown scope(s) {unknown}; known: {sorted(_ALL)}"
            )
        out.append((token.encode(), scopes))
    return out


class TokenSet:
    """The accepted tokens (from the env value and the file), with the file re-read on change."""

    def __init__(self, inline: str = "", path: str | None = None) -> None:
        self._inline = [(t.encode(), _ALL) for t in _split(inline)]
        self.path = path or None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._sig: tuple[int, int, int] | None = None
        self._from_file: list[tuple[bytes, frozenset[str]]] = []
        if self.path is not None:
            self._sig = self._stat()
            self._from_file = self._read()

    @property
    def configured(self) -> bool:
        return bool(self._inline) or self.path is not None

    def _stat(self) -> tuple[int, int, int]:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return (-1, -1, -1)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self) -> list[tuple[bytes, frozenset[str]]]:
        assert self.path is not None
        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthConfigError(f"INFERFLOW_AUTH_TOKENS_FILE: cannot read {self.path!r} ({exc})") from None
        return parse_token_lines(text, f"INFERFLOW_AUTH_TOKENS_FILE {self.path!r}")

    def _refresh(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked < 1.0:
            return
        with self._lock:
            self._checked = now
            sig = self._stat()
            if sig == self._sig:
                return
            self._sig = sig
            try:
                self._from_file = self._read()
                log.info("auth: token file reloaded (%d tokens)", len(self._from_file))
            except AuthConfigError as exc:
                log.warning("auth: token file changed but does not load, keeping the old tokens: %s", exc)

    def scopes_of(self, presented: str) -> frozenset[str] | None:
        """The scopes of ``presented`` if it is a configured token, else None (constant-time compare)."""
        self._refresh()
        candidate = presented.encode()
        found: frozenset[str] | None = None
        for token, scopes in (*self._inline, *self._from_file):
            if hmac.compare_digest(candidate, token) and found is None:
                found = scopes
        return found


def bearer_token(values: Iterable[str]) -> str | None:
    """The token of the first ``Bearer <token>`` value (scheme case-insensitive), else None."""
    for value in values:
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


def peer_identities(auth_context: Mapping[str, Sequence[bytes]]) -> set[str]:
    """Common name and SANs of the verified client certificate (empty without mTLS)."""
    names: set[str] = set()
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth_context.get(key, ()):
            names.add(value.decode("utf-8", "replace"))
    return names


Denial = tuple[grpc.StatusCode, str]
UnaryFn = Callable[[bytes, Any], Awaitable[bytes]]
_MISSING = "missing credentials"


class CallerAuth:
    """The policy built from the settings, once per server."""

    def __init__(self, settings: Any, metrics: Metrics | None = None) -> None:
        self.tokens = TokenSet(settings.auth_tokens, settings.auth_tokens_file)
        self.identities = frozenset(_split(settings.auth_allowed_identities))
        self.apis = frozenset(_split(settings.auth_apis))
        unknown = sorted(self.apis - set(APIS))
        if unknown:
            raise AuthConfigError(f"INFERFLOW_AUTH_APIS: unknown API(s) {unknown}; known: {list(APIS)}")
        self.require_all = settings.auth_require == "all"
        self.metrics = metrics
        if self.identities and not settings.tls_client_ca_file:
            raise AuthConfigError(
                "INFERFLOW_AUTH_ALLOWED_IDENTITIES needs mTLS: set INFERFLOW_TLS_CLIENT_CA_FILE (and the "
                "server certificate) so callers present certificates"
            )

    @property
    def enabled(self) -> bool:
        return self.tokens.configured or bool(self.identities)

    # -- decisions --------------------------------------------------------------------------------------
    def _token_result(self, scope: str, values: Iterable[str]) -> Denial | None:
        token = bearer_token(values)
        if token is None:
            return grpc.StatusCode.UNAUTHENTICATED, f"{_MISSING}: send 'authorization: Bearer <token>'"
        scopes = self.tokens.scopes_of(token)
        if scopes is None:
            return grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token"
        if scope not in scopes:
            return grpc.StatusCode.PERMISSION_DENIED, f"this token is not permitted to call {scope}"
        return None

    def _identity_result(self, scope: str, auth_context: Mapping[str, Sequence[bytes]]) -> Denial | None:
        names = peer_identities(auth_context)
        if not names:
            return grpc.StatusCode.UNAUTHENTICATED, f"{_MISSING}: no client certificate"
        if names & self.identities:
            return None
        return (
            grpc.StatusCode.PERMISSION_DENIED,
            f"client certificate identity is not allowed to call {scope}",
        )

    def decide(
        self, scope: str, authorization: Iterable[str], auth_context: Mapping[str, Sequence[bytes]]
    ) -> Denial | None:
        """None if the caller may call ``scope``, else the status and message to answer with."""
        results: list[Denial | None] = []
        if self.tokens.configured:
            results.append(self._token_result(scope, authorization))
        if self.identities:
            results.append(self._identity_result(scope, auth_context))
        failures = [r for r in results if r is not None]
        if not failures or (not self.require_all and len(failures) < len(results)):
            return None
        if self.require_all:
            return failures[0]
        # nothing passed: answer with the most specific reason (refused > invalid > missing)
        refused = [f for f in failures if f[0] is grpc.StatusCode.PERMISSION_DENIED]
        invalid = [f for f in failures if not f[1].startswith(_MISSING)]
        if refused or invalid:
            return (refused or invalid)[0]
        if len(failures) == 1:
            return failures[0]
        return (
            grpc.StatusCode.UNAUTHENTICATED,
            f"{_MISSING}: send 'authorization: Bearer <token>' or a client certificate",
        )

    def allows_http(self, scope: str, authorization: str | None) -> bool:
        """HTTP side port: a bearer token scoped for ``metrics`` / ``ready``."""
        if not self.tokens.configured or authorization is None:
            return False
        return self._token_result(scope, [authorization]) is None

    # -- gRPC wiring ------------------------------------------------------------------------------------
    def wrap(self, handlers: Sequence[grpc.GenericRpcHandler]) -> list[grpc.GenericRpcHandler]:
        """The handlers, with the protected APIs checking the caller first (unchanged when disabled)."""
        if not self.enabled:
            return list(handlers)
        return [_Guarded(h, self) for h in handlers]

    def guard(self, api: str, fn: UnaryFn) -> UnaryFn:
        """``fn`` checking the caller first when ``api`` is protected (the gRPC and HTTP APIs use it)."""
        if not self.enabled or api not in self.apis:
            return fn

        async def guarded(request: bytes, context: Any) -> bytes:
            values = [v for k, v in (context.invocation_metadata() or ()) if k.lower() == "authorization"]
            denial = self.decide(api, [v for v in values if isinstance(v, str)], context.auth_context() or {})
            if denial is not None:
                self._count(api, denial[0])
                await context.abort(*denial)
            return await fn(request, context)

        return guarded

    def _count(self, api: str, code: grpc.StatusCode) -> None:
        if self.metrics is not None:
            self.metrics.count("auth_rejected", api=api, code=code.name)


class _Guarded(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, auth: CallerAuth) -> None:
        self.inner = inner
        self.auth = auth
        self._cache: dict[str, Any] = {}

    def service(self, handler_call_details: Any) -> Any:
        method = handler_call_details.method
        api = API_OF_METHOD.get(method)
        if api is None or api not in self.auth.apis:  # not a protected API (or an unknown method path)
            return self.inner.service(handler_call_details)
        if method in self._cache:  # only the few protected method paths are ever cached
            return self._cache[method]
        handler = self.inner.service(handler_call_details)
        if handler is not None and handler.unary_unary is not None:
            handler = grpc.unary_unary_rpc_method_handler(
                self.auth.guard(api, handler.unary_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        self._cache[method] = handler
        return handler
