"""Recovery after OnFS returns (issue 19): the client's channel reconnects within its bounded backoff
(INFERFLOW_ONFS_RECONNECT_MAX_MS), not gRPC's default of up to 120 s."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from inferflow_onfs.client import OnfsClient
from inferflow_onfs.settings import OnfsSettings
from onfs_support import all_types_component, fetch_request, onfs_server

from inferflow_core.api import Runtime
from inferflow_core.testing import pick_free_port
from inferflow_core.testing.protos import predict_pb2, predict_pb2_grpc
from inferflow_core.testing.server import running_server

pytestmark = pytest.mark.integration
AUTH = ("--caller-id", "inferflow", "--auth-token", "secret")


async def test_first_clean_answer_within_1s_of_the_backend_returning(store_dir) -> None:
    port = pick_free_port()
    settings = OnfsSettings(
        fs_host="127.0.0.1", fs_port=port, fs_plaintext=True, caller_id="inferflow",
        caller_token="secret", deadline_ms=2000, batch_size=7,
    )  # fmt: skip
    assert settings.reconnect_max_ms <= 500
    client = OnfsClient(settings)
    request = fetch_request(all_types_component())
    keys = [("1",), ("2",)]
    with onfs_server(store_dir[0], *AUTH, port=port):
        assert not (await client.fetch(request, keys, 2.0)).failures
    # outage, long enough for gRPC's default backoff to grow past 1 s; calls fail fast meanwhile
    for _ in range(12):
        assert (await client.fetch(request, keys, 0.3)).failed_all
        await asyncio.sleep(0.3)
    with onfs_server(store_dir[0], *AUTH, port=port):
        back = time.monotonic()
        while (await client.fetch(request, keys, 0.2)).failures:
            assert time.monotonic() - back < 3.0
            await asyncio.sleep(0.02)
        recovered = time.monotonic() - back
    await client.close()
    assert recovered < 1.0, recovered


def _served_model() -> str:
    """OnFS features -> a Numerix score computed from them (embedded evaluator)."""
    return json.dumps(
        {
            "dag_execution_config": {
                "component_dependency": {"user_features": ["feature_initializer"], "final": ["user_features"]}
            },
            "component_config": {
                "feature_components": [all_types_component()],
                "numerix_components": [
                    {
                        "component": "final",
                        "component_id": "catalog_id",
                        "score_col": "final_score",
                        "data_type": "DataTypeFP32",
                        "score_mapping": {"x@DataTypeFP32": "user:scalars:fp32"},
                        "compute_id": "1",
                    }
                ],
            },
            "response_config": {"features": ["catalog_id", "final_score"]},
        }
    )


async def test_scores_from_a_stopped_feature_store_carry_errors_then_recover(
    store_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OnFS down: the score is computed from missing features, so every target says so (main: silent
    zeros). OnFS back: clean answers again within 1 s."""
    port = pick_free_port()
    for key, value in {
        "EXTERNAL_SERVICE_ONFS_FS_HOST": "127.0.0.1",
        "EXTERNAL_SERVICE_ONFS_FS_PORT": str(port),
        "EXTERNAL_SERVICE_ONFS_FS_GRPC_PLAIN_TEXT": "true",
        "EXTERNAL_SERVICE_ONFS_FS_CALLER_ID": "inferflow",
        "EXTERNAL_SERVICE_ONFS_FS_CALLER_TOKEN": "secret",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("INFERFLOW_ONFS_LOCAL_DIR", raising=False)
    runtime = Runtime()
    tree = {
        runtime.settings.config_map_prefix + "m": _served_model(),
        "numerix/expression-config/1": json.dumps({"expression": "x 2 *"}),
    }
    request = predict_pb2.PointWiseRequest(
        model_config_id="m",
        context_features=[
            predict_pb2.ContextFeature(name="user_id", value=b"u1", data_type=predict_pb2.DataTypeString)
        ],
        targets=[predict_pb2.Target(id=c) for c in ("c1", "c2")],
    )
    async with running_server(runtime, tree) as srv:
        assert not runtime.store.current.errors, runtime.store.current.errors
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        down = await stub.InferPointWise(request, timeout=5)
        for target in down.target_scores:
            assert "'user_features' failed" in target.error
            assert "'final_score'" in target.error
        with onfs_server(store_dir[0], *AUTH, port=port):
            back = time.monotonic()
            while True:
                resp = await stub.InferPointWise(request, timeout=5)
                if not resp.request_error:
                    break
                assert time.monotonic() - back < 3.0, resp.request_error
                await asyncio.sleep(0.02)
            recovered = time.monotonic() - back
        assert all(not t.error for t in resp.target_scores)
    assert recovered < 1.0, recovered
