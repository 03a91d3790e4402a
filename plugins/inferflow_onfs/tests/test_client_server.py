"""The OnFS client against ``inferflow-onfs serve`` (a real subprocess, real gRPC on loopback)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from inferflow_onfs.backends import LocalBackend
from inferflow_onfs.client import KIND_ERROR, KIND_TIMEOUT, OnfsClient
from inferflow_onfs.settings import OnfsSettings
from inferflow_onfs.store import LocalStore
from onfs_support import (
    SCALARS,
    VECTOR_TYPES,
    all_types_component,
    fetch_request,
    onfs_server,
    pair_component,
)

from inferflow_core.api import codecs

pytestmark = pytest.mark.integration


def _client(port: int, **over: object) -> OnfsClient:
    base = {
        "fs_host": "127.0.0.1", "fs_port": port, "fs_plaintext": True, "caller_id": "inferflow",
        "caller_token": "secret", "deadline_ms": 2000, "batch_size": 7,
    }  # fmt: skip
    return OnfsClient(OnfsSettings(**{**base, **over}))


def _check_against_truth(frame, request, truth: dict, ids: list[str]) -> None:
    rows = [truth["ids"].index(i) if i in truth["ids"] else -1 for i in ids]
    known = np.array([r >= 0 for r in rows])
    for j, spec in enumerate(request.specs):
        values, valid = frame.column(j)
        assert (valid == known).all(), spec.name
        want = truth[f"{spec.group}:{spec.name}"]
        for out_row, src in enumerate(rows):
            if src < 0:
                continue
            got = values[out_row]
            exp = want[src]
            if spec.name == "svec":
                assert list(got) == exp
            elif spec.name == "name":
                assert got == exp
            else:
                assert np.array_equal(np.asarray(got), np.asarray(exp), equal_nan=True), spec.name


async def test_every_type_two_groups_missing_entities_and_batching(server_port, store_dir) -> None:
    _, truth = store_dir
    request = fetch_request(all_types_component())
    assert [s.name for s in request.specs] == SCALARS + list(VECTOR_TYPES)
    ids = [f"u{i}" for i in range(30)] + ["nobody", "u39"]
    client = _client(server_port)
    outcome = await client.fetch(request, [(i,) for i in ids], None)
    assert not outcome.failures
    assert outcome.calls == 5  # 32 keys in batches of 7, sent in parallel
    _check_against_truth(outcome.frame, request, truth, ids)
    # the embedded backend returns the same values without bytes
    local = await LocalBackend(LocalStore(str(store_dir[0]))).fetch(request, [(i,) for i in ids], None)
    _check_against_truth(local.per_key(), request, truth, ids)
    await client.close()


async def test_composite_keys(server_port, store_dir) -> None:
    _, truth = store_dir
    request = fetch_request(pair_component())
    keys = [("u1", "c2"), ("u0", "c1"), ("u9", "c1"), ("u2", "c2")]
    outcome = await _client(server_port).fetch(request, keys, None)
    values, valid = outcome.frame.column(0)
    assert valid.tolist() == [True, True, False, True]
    assert values[0] == truth["pair"][("u1", "c2")]
    assert values[3] == truth["pair"][("u2", "c2")]


async def test_auth_metadata_is_checked_by_the_server(server_port) -> None:
    request = fetch_request(pair_component())
    outcome = await _client(server_port, caller_token="wrong").fetch(request, [("u0", "c1")], None)
    assert outcome.failed_all
    assert outcome.failures[0][0] == KIND_ERROR
    assert "UNAUTHENTICATED" in outcome.failures[0][1]
    outcome = await _client(server_port, caller_id="someone-else").fetch(request, [("u0", "c1")], None)
    assert outcome.failed_all
    assert "PERMISSION_DENIED" in outcome.failures[0][1]


async def test_deadline_expiry_against_a_sleeping_store(store_dir) -> None:
    request = fetch_request(pair_component())
    with onfs_server(store_dir[0], env={"INFERFLOW_ONFS_SERVE_TEST_SLEEP_MS": "1500"}) as port:
        client = _client(port, deadline_ms=100, caller_id="", caller_token="")
        t0 = time.monotonic()
        outcome = await client.fetch(request, [("u0", "c1")], None)
        assert time.monotonic() - t0 < 1.0
        assert outcome.failed_all
        assert outcome.failures[0][0] == KIND_TIMEOUT
        # the request's remaining budget bounds the call too (deadline setting is generous here)
        client = _client(port, deadline_ms=5000, caller_id="", caller_token="")
        t0 = time.monotonic()
        outcome = await client.fetch(request, [("u0", "c1")], 0.1)
        assert time.monotonic() - t0 < 1.0
        assert outcome.failures[0][0] == KIND_TIMEOUT


async def test_decoded_rpc_matches_text_form(server_port, store_dir) -> None:
    import grpc
    from inferflow_onfs._proto import retrieve_pb2 as pb

    request = fetch_request(all_types_component())
    query = pb.Query(
        entity_label="user",
        keys_schema=["user_id"],
        feature_groups=[pb.FeatureGroup(label=g, feature_labels=f) for g, f in request.groups],
        keys=[pb.Keys(cols=["u3"]), pb.Keys(cols=["ghost"])],
    )
    meta = (("online-feature-store-caller-id", "inferflow"), ("online-feature-store-auth-token", "secret"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server_port}") as channel:
        call = channel.unary_unary(
            "/retrieve.FeatureService/RetrieveDecodedResult",
            request_serializer=pb.Query.SerializeToString,
            response_deserializer=pb.DecodedResult.FromString,
        )
        result = await asyncio.wait_for(call(query, metadata=meta, timeout=5), 10)
    local = await LocalBackend(LocalStore(str(store_dir[0]))).fetch(request, [("u3",)], None)
    expected = [
        codecs.format_column(*local.per_key().column(j), s.dtype)[0] for j, s in enumerate(request.specs)
    ]
    assert list(result.rows[0].columns) == expected
    assert list(result.rows[0].keys) == ["u3"]
    assert all(c == "" for c in result.rows[1].columns)
    assert result.feature_schemas[0].features[0].label == "fp16@DataTypeFP16"


MEESHO_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import grpc_feature_client.client as gfc
    # grpc-feature-client 1.0.1 sends upper-case metadata keys, which grpcio rejects client-side
    # ("Illegal header key"); HTTP/2 requires lower case, which is what the Go SDK puts on the wire.
    if "--lowercase" in sys.argv:
        gfc.HEADER_CALLER_ID = gfc.HEADER_CALLER_ID.lower()
        gfc.HEADER_CALLER_TOKEN = gfc.HEADER_CALLER_TOKEN.lower()
    client = gfc.GRPCFeatureClient(gfc.GRPCClientConfig(
        server_address=sys.argv[1], job_id="inferflow", job_token="secret", timeout_seconds=5))
    res = client.retrieve_features(
        entity_label="user",
        feature_groups=[{"label": "scalars", "feature_labels": ["fp32", "i64", "name"]},
                        {"label": "vectors", "feature_labels": ["emb"]}],
        keys_schema=["user_id"], entity_keys=[["u5"], ["u6"]])
    out = {"success": res.get("success"), "error": res.get("error"),
           "rows": [{"keys": r["keys"], "columns": [c.hex() for c in r["columns"]]}
                    for r in res.get("rows", [])]}
    print(json.dumps(out))
    """
)


def test_meesho_grpc_feature_client_reads_our_server(server_port, store_dir) -> None:
    if importlib.util.find_spec("grpc_feature_client") is None:  # never import it here (see MEESHO_SCRIPT)
        pytest.skip("grpc-feature-client (test extra) not installed")
    target = f"127.0.0.1:{server_port}"

    def run(*flags: str) -> dict:
        # its bharatml_commons stubs register retrieve.proto in the default pool: run it in its own process
        proc = subprocess.run(
            [sys.executable, "-c", MEESHO_SCRIPT, target, *flags], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    as_published = run()
    assert not as_published["success"]  # the upstream bug described above; our server never sees the call
    got = run("--lowercase")
    assert got["success"], got
    request = fetch_request(all_types_component())
    local = asyncio.run(LocalBackend(LocalStore(str(store_dir[0]))).fetch(request, [("u5",), ("u6",)], None))
    names = [s.name for s in request.specs]
    for row_i, row in enumerate(got["rows"]):
        assert row["keys"] == [f"u{5 + row_i}"]
        for col_hex, name in zip(row["columns"], ["fp32", "i64", "name", "emb"], strict=True):
            values, _ = local.per_key().column(names.index(name))
            cell = values[row_i]
            want = cell.encode() if isinstance(cell, str) else np.asarray(cell).tobytes()
            assert bytes.fromhex(col_hex) == want, name
