"""The component against a real gRPC server of the same protocol that misbehaves on purpose."""

from __future__ import annotations

import json
from concurrent import futures

import grpc
import numpy as np
import pytest
from inferflow_onfs._proto import retrieve_pb2 as pb
from inferflow_onfs.client import KIND_ERROR, KIND_MALFORMED, KIND_SHORT, OnfsClient
from inferflow_onfs.config import FeatureComponentConfig
from inferflow_onfs.plugin import FeatureComponentType
from inferflow_onfs.settings import OnfsSettings
from onfs_support import model_json

from inferflow_core.api import BuildContext as Build
from inferflow_core.api import Metrics, ModelConfig
from inferflow_core.testing import make_context

pytestmark = pytest.mark.integration

COMPONENT = {
    "component": "things",
    "component_id": "catalog_id",
    "fs_keys": [{"schema": "catalog_id", "col": "catalog_id"}],
    "fs_request": {
        "label": "thing",
        "featureGroups": [{"label": "g", "data_type": "fp32", "features": ["x"]}],
    },
    "fs_flatten_resp_keys": ["catalog_id"],
}


class Misbehaving:
    """Answers ``x = float(key[1:])`` per key, or misbehaves as ``mode`` says."""

    def __init__(self) -> None:
        self.mode = "ok"

    def __call__(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        query = pb.Query.FromString(body)
        keys = [list(k.cols) for k in query.keys]
        rows = [pb.Row(keys=k, columns=[np.float32(float(k[0][1:])).tobytes()]) for k in keys]
        if self.mode == "error" or (self.mode == "fail_k2" and ["k2"] in keys):
            context.abort(grpc.StatusCode.UNAVAILABLE, "store is down")
        if self.mode == "short":
            rows = [pb.Row(columns=r.columns) for r in rows[:-1]]  # no keys, one row short
        if self.mode == "reordered":
            rows = rows[::-1]
        if self.mode == "garbage":
            return b"\xff\x00garbage\x12\x99"
        if self.mode == "bad_columns":
            rows[0].columns.append(b"extra")
        if self.mode == "bad_cells":
            rows[0].columns[0] = b"\x01\x02"
        return pb.Result(entity_label=query.entity_label, rows=rows).SerializeToString()


@pytest.fixture(scope="module")
def misbehaving():
    behaviour = Misbehaving()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "retrieve.FeatureService", {"RetrieveFeatures": grpc.unary_unary_rpc_method_handler(behaviour)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield behaviour, port
    server.stop(1).wait(5)


def _component(port: int, batch_size: int = 10):  # type: ignore[no-untyped-def]
    # a deadline far above the default 200 ms: these tests are about malformed answers, and a loaded test
    # machine can delay a thread-pool server's answer past 200 ms (then the batch fails as a timeout)
    settings = OnfsSettings(
        fs_host="127.0.0.1", fs_port=port, fs_plaintext=True, batch_size=batch_size, deadline_ms=10_000
    )
    model = ModelConfig.model_validate(json.loads(model_json([COMPONENT])))
    metrics = Metrics()
    build = Build(model_id="m", model=model, config={}, metrics=metrics)
    comp = FeatureComponentType(backend=OnfsClient(settings)).build(
        FeatureComponentConfig.model_validate(COMPONENT), build
    )
    return comp, metrics


async def _run(comp, ids: list[str]):  # type: ignore[no-untyped-def]
    ctx = make_context(comp, rows=len(ids), texts={"catalog_id": ids}, model_id="m")
    error = None
    try:
        await comp.run(ctx)
    except Exception as exc:  # the engine contains this; record it like the engine does
        error = exc
    values, valid = ctx.matrix.read("thing:g:x")
    return ctx, error, values, valid


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("error", KIND_ERROR), ("short", KIND_SHORT), ("garbage", KIND_ERROR), ("bad_columns", KIND_MALFORMED)],
)
async def test_failures_are_contained_and_counted(misbehaving, mode: str, kind: str) -> None:
    behaviour, port = misbehaving
    behaviour.mode = mode
    comp, metrics = _component(port)
    _ctx, error, _values, valid = await _run(comp, ["k1", "k2", "k3"])
    assert error is not None, error
    assert getattr(error, "kind", None) == kind, error
    assert not valid.any()
    assert metrics.value("onfs_errors", model_id="m", component="things", kind=kind) == 1


async def test_reordered_rows_are_matched_by_key(misbehaving) -> None:
    behaviour, port = misbehaving
    behaviour.mode = "reordered"
    comp, _ = _component(port)
    ctx, error, values, valid = await _run(comp, ["k5", "k1", "k5", "k9"])
    assert error is None
    assert not ctx.failures
    assert valid.all()
    assert values.tolist() == [5.0, 1.0, 5.0, 9.0]


async def test_bad_cells_are_missing_rest_is_kept(misbehaving) -> None:
    behaviour, port = misbehaving
    behaviour.mode = "bad_cells"
    comp, _ = _component(port)
    _ctx, error, values, valid = await _run(comp, ["k1", "k2", "k3"])
    assert error is None
    assert valid.tolist() == [False, True, True]
    assert values[1:].tolist() == [2.0, 3.0]


async def test_one_failed_batch_keeps_the_others(misbehaving) -> None:
    behaviour, port = misbehaving
    behaviour.mode = "fail_k2"
    comp, metrics = _component(port, batch_size=1)
    ctx, error, values, valid = await _run(comp, ["k1", "k2", "k3", "k2"])
    assert error is None  # partial failure: recorded, not raised
    assert [(f.component, f.kind) for f in ctx.failures] == [("things", KIND_ERROR)]
    assert valid.tolist() == [True, False, True, False]
    assert values[[0, 2]].tolist() == [1.0, 3.0]
    assert metrics.value("onfs_errors", model_id="m", component="things", kind=KIND_ERROR) == 1
