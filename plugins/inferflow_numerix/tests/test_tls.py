"""Outbound TLS to Numerix: the component against ``inferflow-numerix serve --tls-*`` (real subprocess)
with a custom CA, a client certificate (mTLS), a server-name override and the auth token."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from inferflow_core.api import InitialData, RequestInfo, Runtime

pytestmark = pytest.mark.integration
pytest.importorskip("cryptography")

from inferflow_core.testing.certs import CertAuthority  # noqa: E402

EXPR_KEY = "numerix/expression-config/"
MODEL = json.dumps(
    {
        "dag_execution_config": {"component_dependency": {"final": ["feature_initializer"]}},
        "component_config": {
            "numerix_components": [
                {
                    "component": "final",
                    "component_id": "catalog_id",
                    "score_col": "final_score",
                    "score_mapping": {"pctr@DataTypeFP32": "pctr"},
                    "compute_id": "7",
                }
            ]
        },
        "response_config": {"features": ["catalog_id", "final_score"]},
    }
)


async def run(rt: Runtime) -> Any:
    initial = InitialData(rows=2, texts={"catalog_id": ["a", "b"], "pctr": ["0.5", "0.25"]})
    return await rt.execute("m", initial, RequestInfo(api="pointwise"))


@pytest.fixture(scope="module")
def tls_env(start_numerix_server, tmp_path_factory) -> dict:
    from inferflow_core.testing import write_config_dir

    root = tmp_path_factory.mktemp("numerix_tls")
    ca = CertAuthority(root / "pki", "numerix")
    server = ca.issue("numerix-server", dns=("numerix.internal",), ips=())
    client = ca.issue("inferflow", client=True, dns=(), ips=())
    write_config_dir(root / "cfg", {EXPR_KEY + "7": json.dumps({"expression": "pctr 2 *"})})
    tls = ("--tls-cert", server.cert_file, "--tls-key", server.key_file, "--tls-client-ca", ca.ca_file)
    port = start_numerix_server(root / "cfg", "tok", *tls)
    return {"port": port, "ca": ca, "client": client}


def tls_runtime(monkeypatch, env: dict, **over: str) -> Runtime:
    values = {
        "NUMERIX_CLIENT_V1_HOST": "127.0.0.1",
        "NUMERIX_CLIENT_V1_PORT": str(env["port"]),
        "NUMERIX_CLIENT_V1_PLAINTEXT": "false",
        "NUMERIX_CLIENT_V1_AUTHTOKEN": "tok",
        "INFERFLOW_NUMERIX_TLS_CA_FILE": env["ca"].ca_file,
        "INFERFLOW_NUMERIX_TLS_CERT_FILE": env["client"].cert_file,
        "INFERFLOW_NUMERIX_TLS_KEY_FILE": env["client"].key_file,
        "INFERFLOW_NUMERIX_TLS_SERVER_NAME": "numerix.internal",
        **over,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    rt = Runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "m": MODEL})
    return rt


async def test_mtls_with_custom_ca_and_server_name(monkeypatch, tls_env: dict) -> None:
    rt = tls_runtime(monkeypatch, tls_env)
    assert not rt.store.current.errors, rt.store.current.errors
    ctx = await run(rt)
    assert not ctx.failures, ctx.failures
    values, valid = ctx.matrix.read("final_score")
    assert valid.all()
    assert np.allclose(values, [1.0, 0.5])


async def test_without_client_certificate_or_server_name_the_call_fails(monkeypatch, tls_env: dict) -> None:
    for over in (
        {"INFERFLOW_NUMERIX_TLS_CERT_FILE": "", "INFERFLOW_NUMERIX_TLS_KEY_FILE": ""},
        {"INFERFLOW_NUMERIX_TLS_SERVER_NAME": ""},
    ):
        ctx = await run(tls_runtime(monkeypatch, tls_env, **over))
        assert [f.component for f in ctx.failures] == ["final"], over
        assert "UNAVAILABLE" in ctx.failures[0].message


def test_plaintext_with_tls_files_rejects_the_model(monkeypatch, tls_env: dict) -> None:
    rt = tls_runtime(monkeypatch, tls_env, NUMERIX_CLIENT_V1_PLAINTEXT="true")
    assert "plaintext" in rt.store.current.errors["m"].message
    rt = tls_runtime(monkeypatch, tls_env, INFERFLOW_NUMERIX_TLS_KEY_FILE="")
    assert "needs its key" in rt.store.current.errors["m"].message


async def test_twin_server_compares_tokens_in_constant_time(monkeypatch) -> None:
    import hmac

    import grpc
    from inferflow_numerix import server

    seen: list[bytes] = []
    real = hmac.compare_digest
    monkeypatch.setattr(server.hmac, "compare_digest", lambda a, b: seen.append(a) or real(a, b))

    class Aborted(Exception):
        pass

    class Context:
        def __init__(self, token: str) -> None:
            self.token = token

        def invocation_metadata(self):  # type: ignore[no-untyped-def]
            return (("numerix-auth-token", self.token),)

        async def abort(self, code, details):  # type: ignore[no-untyped-def]
            raise Aborted(code, details)

    servicer = server.NumerixServicer(lambda _id: None, auth_token="tok")
    with pytest.raises(Aborted) as info:
        await servicer.Compute(server.pb.NumerixRequestProto(), Context("wrong"))
    assert info.value.args[0] is grpc.StatusCode.UNAUTHENTICATED
    assert seen == [b"wrong"]
