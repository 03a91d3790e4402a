"""S1 remote mode: start the three backends, and the "direct" client that calls them itself.

The direct baseline (benchmarks/README.md) makes the same backend calls as Inferflow's remote mode — OnFS
``user`` (1 key) and ``catalog`` (200 keys, one batch) in parallel, then one KServe v2 ``ModelInfer`` over
[200, 96] + [200, 32], then one Numerix ``Compute`` over 200 rows — with no DAG and no matrix: requests are
written from templates, cells are read with one ``np.frombuffer`` per reply. ``direct_server.py --mode
remote`` serves it behind the same ``InferPointWise`` method the load generator calls, so the ratio
Inferflow p50 / direct p50 is the cost of Inferflow's generic path, not of the backends or of loopback.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
USER_DIM, CATALOG_DIM, EMB_DIM = 32, 64, 32
MODEL = "s1_mlp"
ONFS_METHOD = "/retrieve.FeatureService/RetrieveFeatures"
KSERVE_METHOD = "/inference.GRPCInferenceService/ModelInfer"
NUMERIX_METHOD = "/numerix.Numerix/Compute"


def backend_commands(data: Path, ports: dict[str, int], config_dir: Path) -> dict[str, list[str]]:
    """Commands of the remote backends: ``inferflow-onfs serve``, the KServe v2 ONNX server and
    ``inferflow-numerix serve``."""
    return {
        "onfs": [
            str(BIN / "inferflow-onfs"), "serve", "--data", str(data / "features"),
            "--port", str(ports["onfs"]), "--host", "127.0.0.1",
        ],
        "kserve": [
            sys.executable, str(HERE / "kserve_onnx_server.py"), "--repo", str(data / "models"),
            "--port", str(ports["kserve"]),
        ],
        "numerix": [
            str(BIN / "inferflow-numerix"), "serve", "--config-dir", str(config_dir),
            "--port", str(ports["numerix"]), "--host", "127.0.0.1",
        ],
    }  # fmt: skip


def start_backends(tmp: Path, data: Path | None = None) -> tuple[dict[str, int], list, Path]:
    """Start the three backend processes on free loopback ports; returns (ports, processes, data dir)."""
    import os

    from inferflow_core.testing import example, pick_free_port

    if data is None:
        data = example.ensure_data(demo=False, progress=None)
    ports = {k: pick_free_port() for k in ("onfs", "kserve", "numerix")}
    procs = [
        example.ServerProcess(name, cmd, dict(os.environ), tmp / f"{name}.log")
        for name, cmd in backend_commands(data, ports, example.CONFIG_DIR).items()
    ]
    try:
        for proc in procs:
            proc.start()
        for proc, port in zip(procs, ports.values(), strict=True):
            proc.wait_port(port, 60)
    except BaseException:
        for proc in procs:
            proc.stop()
        raise
    return ports, procs, data


@dataclass
class CatalogFeatures:
    dense: np.ndarray  # [n, 64] FP32
    price: np.ndarray  # [n] FP32
    emb: np.ndarray  # [n, 32] FP32


def _ld(tag: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (tag byte, varint length, payload)."""
    n, out = len(payload), bytearray((tag,))
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def _varint(buf: bytes, p: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[p]
        p += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, p
        shift += 7


def _row_spans(raw: bytes) -> list[tuple[int, int]]:
    """(start, end) of each ``Row``'s cells (after its key) in a serialized ``Result``."""
    p, n, out = 0, len(raw), []
    while p < n:
        tag = raw[p]
        if tag & 7 != 2:
            raise ValueError(f"unexpected wire type in Result at byte {p}")
        size, q = _varint(raw, p + 1)
        if tag == 0x22:
            start, end = q, q + size
            while start < end and raw[start] == 0x0A:  # Row.keys: skip
                klen, k = _varint(raw, start + 1)
                start = k + klen
            out.append((start, end))
        p = q + size
    return out


def _layout(cells: bytes, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Header offsets, header bytes and value offsets of a complete row's ``columns`` fields."""
    head: list[int] = []
    values: list[int] = []
    p = 0
    while p < len(cells):
        if cells[p] != 0x12:
            raise ValueError("unexpected field in Row")
        size, q = _varint(cells, p + 1)
        head += range(p, q)
        values += range(q, q + size)
        p = q + size
    if len(values) != width:
        raise ValueError(f"a complete row holds {len(values)} value bytes, expected {width}")
    raw = np.frombuffer(cells, np.uint8)
    return np.array(head), raw[head].copy(), np.array(values)


class RemoteWire:
    """Request templates and reply decoders of the three protocols (pure functions of bytes)."""

    def __init__(self, data: Path | None = None) -> None:
        from inferflow_onfs._proto import retrieve_pb2 as rpb

        self.rpb = rpb
        user = rpb.Query(
            entity_label="user",
            feature_groups=[
                rpb.FeatureGroup(label="A", feature_labels=[f"u{i:02d}" for i in range(USER_DIM)])
            ],
            keys_schema=["user_id"],
        )
        cat = rpb.Query(
            entity_label="catalog",
            feature_groups=[
                rpb.FeatureGroup(
                    label="A", feature_labels=[f"c{i:02d}" for i in range(CATALOG_DIM)] + ["price"]
                ),
                rpb.FeatureGroup(label="B", feature_labels=["emb"]),
            ],
            keys_schema=["catalog_id"],
        )
        self.user_head, self.cat_head = user.SerializeToString(), cat.SerializeToString()
        self.cat_width = 4 * (CATALOG_DIM + 1) + 4 * EMB_DIM  # bytes of one complete catalog row's cells
        self._layouts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # -- OnFS --------------------------------------------------------------------------------------
    def _query(self, head: bytes, ids: list[str]) -> bytes:
        return head + b"".join(_ld(0x22, _ld(0x0A, i.encode())) for i in ids)

    def user_query(self, ids: list[str]) -> bytes:
        return self._query(self.user_head, ids)

    def catalog_query(self, ids: list[str]) -> bytes:
        return self._query(self.cat_head, ids)

    def _cells(self, raw: bytes, n: int, width: int) -> np.ndarray:
        """Cells of ``n`` rows of FP32 / FP32-vector features, read straight from the ``Result`` wire bytes.

        Top-level fields are walked in Python (one step per row); inside a row, the cells after the key
        sit at the same offsets for every complete row, so all values are gathered with one numpy index
        (headers checked against the first complete row's). Rows that do not match (an unknown entity's
        empty cells) stay zero, as the server answers in query order.
        """
        spans = _row_spans(raw)
        out = np.zeros((n, width // 4), np.float32)
        if not spans:
            return out
        starts = np.fromiter((s for s, _ in spans[:n]), np.int64, count=min(n, len(spans)))
        ends = np.fromiter((e for _, e in spans[:n]), np.int64, count=len(starts))
        layout = self._layouts.get(width)
        cells = ends - starts
        if layout is None:
            full = np.flatnonzero(cells == cells.max())
            if not full.size:
                return out
            layout = self._layouts[width] = _layout(raw[starts[full[0]] : ends[full[0]]], width)
        buf = np.frombuffer(raw, np.uint8)
        head_offs, head_bytes, value_offs = layout
        ok = (cells == layout[1].size + value_offs.size) & (
            buf[starts[:, None] + head_offs] == head_bytes
        ).all(1)
        if ok.all():
            out[: len(starts)] = buf[starts[:, None] + value_offs].view("<f4")
        elif ok.any():
            good = np.flatnonzero(ok)
            out[good] = buf[starts[good, None] + value_offs].view("<f4")
        return out

    def decode_user(self, raw: bytes) -> np.ndarray:
        return self._cells(raw, 1, 4 * USER_DIM)[0]

    def decode_catalog(self, raw: bytes, ids: list[str]) -> CatalogFeatures:
        m = self._cells(raw, len(ids), self.cat_width)
        return CatalogFeatures(m[:, :CATALOG_DIM], m[:, CATALOG_DIM], m[:, CATALOG_DIM + 1 :])

    # -- KServe v2 ---------------------------------------------------------------------------------
    def model_request(self, user: np.ndarray, feats: CatalogFeatures) -> bytes:
        from inferflow_predator._proto import grpc_predict_v2_pb2 as kpb

        n = len(feats.price)
        dense = np.empty((n, USER_DIM + CATALOG_DIM), np.float32)
        dense[:, :USER_DIM] = user
        dense[:, USER_DIM:] = feats.dense
        req = kpb.ModelInferRequest(model_name=MODEL, model_version="1")
        req.inputs.add(name="dense", datatype="FP32", shape=dense.shape)
        req.inputs.add(name="emb", datatype="FP32", shape=feats.emb.shape)
        req.outputs.add(name="prob")
        req.raw_input_contents.extend([dense.tobytes(), np.ascontiguousarray(feats.emb).tobytes()])
        return req.SerializeToString()

    def decode_model(self, raw: bytes) -> np.ndarray:
        from inferflow_predator._proto import grpc_predict_v2_pb2 as kpb

        reply = kpb.ModelInferResponse.FromString(raw)
        return np.frombuffer(reply.raw_output_contents[0], "<f4")

    # -- Numerix -----------------------------------------------------------------------------------
    def numerix_request(self, ids: list[str], pctr: np.ndarray, price: np.ndarray) -> bytes:
        from inferflow_numerix.wire import encode_request_bytes

        from inferflow_core.api import DataType

        return encode_request_bytes("1", ["catalog_id", "pctr", "price"], ids, [pctr, price], DataType.FP32)

    def decode_numerix(self, raw: bytes, n: int) -> np.ndarray:
        from inferflow_numerix._proto import numerix_pb2 as npb

        scores = npb.NumerixResponseProto.FromString(raw).computation_score_data.computation_scores
        buf = b"".join([s.byte_data.values[1] for s in scores])
        if len(buf) != 4 * n:
            raise RuntimeError(f"numerix answered {len(buf)} bytes for {n} rows")
        return np.frombuffer(buf, "<f4")


class RemoteDirect:
    """The direct client's request path over grpc.aio channels (one per backend, made on this loop)."""

    def __init__(self, onfs: str, kserve: str, numerix: str) -> None:
        import grpc

        self.wire = RemoteWire()
        opts = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
        self.channels = [grpc.aio.insecure_channel(t, options=opts) for t in (onfs, kserve, numerix)]
        self.onfs = self.channels[0].unary_unary(ONFS_METHOD)
        self.kserve = self.channels[1].unary_unary(KSERVE_METHOD)
        self.numerix = self.channels[2].unary_unary(NUMERIX_METHOD)

    async def score(self, user_id: str, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(pctr, final_score) of every target, in request order."""
        w = self.wire
        user_raw, cat_raw = await asyncio.gather(
            self.onfs(w.user_query([user_id]), timeout=5), self.onfs(w.catalog_query(ids), timeout=5)
        )
        user = w.decode_user(user_raw) if user_id else np.zeros(USER_DIM, np.float32)
        feats = w.decode_catalog(cat_raw, ids)
        pctr = w.decode_model(await self.kserve(w.model_request(user, feats), timeout=5))
        raw = await self.numerix(w.numerix_request(ids, pctr, feats.price), timeout=5)
        return pctr, w.decode_numerix(raw, len(ids))
