"""The client's TLS and metadata options against a grpc.aio server with a self-signed certificate
(a stub Predict servicer: the point is the channel, not the engine)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from inferflow_core._proto import predict_pb2, predict_pb2_grpc
from inferflow_core.client import TLS, AsyncInferflowClient, InferflowClient, RPCError

pytestmark = pytest.mark.integration


def _certificate(tmp: Path) -> tuple[bytes, bytes]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return (tmp / "key.pem").read_bytes(), (tmp / "cert.pem").read_bytes()


class EchoMetadata(predict_pb2_grpc.PredictServicer):
    """Answers each target with the value of the ``x-tenant`` metadata it received (STRING)."""

    async def InferPointWise(self, request, context):  # type: ignore[no-untyped-def]
        tenant = dict(context.invocation_metadata()).get("x-tenant", "")
        return predict_pb2.PointWiseResponse(
            target_output_schema=[predict_pb2.FeatureSchema(name="tenant", data_type="DataTypeString")],
            target_scores=[predict_pb2.TargetScore(output_values=[tenant.encode()]) for _ in request.targets],
        )


async def test_tls_and_metadata(tmp_path: Path) -> None:
    key, cert = _certificate(tmp_path)
    server = grpc.aio.server()
    predict_pb2_grpc.add_PredictServicer_to_server(EchoMetadata(), server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    await server.start()
    try:
        tls = TLS(root_certificates=cert, server_name="localhost")
        with InferflowClient(f"127.0.0.1:{port}", tls=tls, metadata={"x-tenant": "t1"}) as client:
            res = await asyncio.to_thread(client.pointwise, "m", ["a", "b"])
            assert [r["tenant"] for r in res.to_dicts()] == ["t1", "t1"]
            res = await asyncio.to_thread(client.pointwise, "m", ["a"], metadata=[("x-tenant", "t2")])
            assert res.to_dicts()[0]["tenant"] == "t2"  # a per-call key replaces the client's
        async with AsyncInferflowClient(f"127.0.0.1:{port}", tls=tls, metadata={"x-tenant": "t3"}) as aclient:
            assert (await aclient.pointwise("m", ["a"])).to_dicts() == [{"tenant": "t3"}]
        with InferflowClient(f"127.0.0.1:{port}", timeout=5) as plain, pytest.raises(RPCError) as err:
            await asyncio.to_thread(plain.pointwise, "m", ["a"])  # no TLS against a TLS port
        assert err.value.code is grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)
