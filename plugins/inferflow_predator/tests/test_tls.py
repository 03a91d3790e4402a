"""Outbound TLS to a KServe v2 server: the predator client against an in-process KServe v2 gRPC server
(ServerReady / ModelReady / ModelInfer, doubling its FP32 input) served over mTLS, with a custom CA, a
client certificate and a server-name override; certificates made in the test.

MLServer 1.7 serves gRPC only in plaintext, so the TLS path is checked against this small server speaking
the same protocol (the stubs are the ones the client uses).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
import pytest
from inferflow_predator import kserve
from inferflow_predator.component import PredatorComponent
from inferflow_predator.pool import BackendPool
from inferflow_predator.settings import PredatorSettings
from inferflow_predator.tensors import Tensor

from inferflow_core.api import ComponentError, ConfigError, Metrics, net

pytestmark = pytest.mark.integration
pytest.importorskip("cryptography")

from inferflow_core.testing.certs import CertAuthority  # noqa: E402

pb, pb_grpc = kserve.service_pb2, kserve.service_pb2_grpc


class Doubler(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc,name-defined]
    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=True)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        return pb.ModelReadyResponse(ready=True)

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        x = np.frombuffer(request.raw_input_contents[0], dtype="<f4") * 2
        reply = pb.ModelInferResponse(model_name=request.model_name)
        reply.outputs.add(name="y", datatype="FP32", shape=list(request.inputs[0].shape))
        reply.raw_output_contents.append(x.astype("<f4").tobytes())
        return reply


@pytest.fixture
async def kserve_tls(tmp_path) -> AsyncIterator[dict[str, Any]]:
    ca = CertAuthority(tmp_path, "kserve")
    cert = ca.issue("triton", dns=("triton.internal",), ips=())
    client = ca.issue("inferflow", client=True, dns=(), ips=())
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Doubler(), server)
    port = server.add_secure_port(
        "127.0.0.1:0", net.ServerTls(cert.cert_file, cert.key_file, ca.ca_file).grpc_credentials()
    )
    await server.start()
    try:
        yield {"endpoint": f"127.0.0.1:{port}", "ca": ca, "client": client}
    finally:
        await server.stop(0)


def _settings(env: dict[str, Any], **over: Any) -> PredatorSettings:
    base = {
        "plain_text": False,
        "tls_ca_file": env["ca"].ca_file,
        "tls_cert_file": env["client"].cert_file,
        "tls_key_file": env["client"].key_file,
        "tls_server_name": "triton.internal",
    }
    return PredatorSettings(**{**base, **over})


async def _double(pool: BackendPool, endpoint: str) -> np.ndarray:
    backend = pool.get(endpoint)
    try:
        await backend.check_ready("m", "1", 5.0)
        x = np.arange(4, dtype=np.float32).reshape(2, 2)
        got = await backend.infer("m", "1", [Tensor("x", "FP32", x)], ["y"], 5.0)
        return got["y"].array
    finally:
        await pool.aclose()


async def test_mtls_with_custom_ca_and_server_name(kserve_tls: dict[str, Any]) -> None:
    pool = BackendPool(_settings(kserve_tls))
    assert pool.tls_problem == ""
    got = await _double(pool, kserve_tls["endpoint"])
    np.testing.assert_array_equal(got.reshape(-1), [0, 2, 4, 6])


@pytest.mark.parametrize(
    "over",
    [{"tls_cert_file": "", "tls_key_file": ""}, {"tls_server_name": ""}, {"tls_ca_file": ""}],
)
async def test_each_tls_setting_matters(kserve_tls: dict[str, Any], over: dict[str, str]) -> None:
    with pytest.raises(ComponentError, match="UNAVAILABLE"):
        await _double(BackendPool(_settings(kserve_tls, **over)), kserve_tls["endpoint"])


def test_unusable_tls_rejects_models_with_remote_endpoints(tmp_path) -> None:
    ca = CertAuthority(tmp_path, "x")
    plain = BackendPool(PredatorSettings(plain_text=True, tls_ca_file=ca.ca_file))
    assert "plaintext" in plain.tls_problem
    half = BackendPool(PredatorSettings(tls_cert_file=ca.ca_file))
    assert "needs its key" in half.tls_problem
    from inferflow_predator.config import PredatorConfig

    cfg = PredatorConfig.model_validate(
        {
            "component": "p",
            "component_id": "id",
            "model_name": "m",
            "model_end_point": "triton:8001",
            "inputs": [{"name": "x", "features": ["a"], "shape": [1], "data_type": "FP32"}],
            "outputs": [
                {"name": "y", "model_scores": ["s"], "model_scores_dims": [[1]], "data_type": "FP32"}
            ],
        }
    )
    with pytest.raises(ConfigError, match="plaintext"):
        PredatorComponent(cfg, "model", plain, Metrics())
    onnx_only = cfg.model_copy(update={"model_end_point": "onnx:///models"})
    with pytest.raises(ConfigError) as err:  # embedded endpoints need no TLS: rejected for the file only
        PredatorComponent(onnx_only, "model", plain, Metrics())
    assert "does not exist" in err.value.message
    assert "plaintext" not in err.value.message
