"""Response wire bytes: the numpy writer of score messages (``wire._packed``) against the generated
protobuf classes, over random column mixes (fixed-width blocks, variable cells, empty cells, long
messages that need the per-row writer)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from inferflow_core._proto import predict_pb2
from inferflow_core.matrix import ComponentMatrix
from inferflow_core.serving import adapters, responses, wire


def _case(rng: random.Random) -> tuple[int, list[wire.Cells]]:
    rows = rng.choice([1, 2, 7, 50])
    cols: list[wire.Cells] = []
    for _ in range(rng.randint(0, 5)):
        if rng.random() < 0.5:
            width = rng.choice([0, 1, 4, 8, 40, 130])
            cols.append(np.frombuffer(rng.randbytes(rows * width), np.uint8).reshape(rows, width))
        else:
            longest = rng.choice([0, 3, 10, 60, 140])
            cells = [rng.randbytes(rng.randint(0, longest)) for _ in range(rows)]
            kind = rng.random()
            if kind < 0.3:  # the same cells as one buffer
                sizes = np.array([len(c) for c in cells], dtype=np.int64)
                cols.append(wire.Joined(np.frombuffer(b"".join(cells), np.uint8), sizes))
            elif kind < 0.5 and longest < 128:  # as request fields: tag, length, cell (tag rewritten)
                data = b"".join(bytes([0x0A, len(c)]) + c for c in cells)
                sizes = np.array([len(c) for c in cells], dtype=np.int64)
                cols.append(wire.Fields(np.frombuffer(data, np.uint8), sizes))
            else:
                cols.append(cells)
    return rows, cols


def _expected(cols: list[wire.Cells], rows: int) -> bytes:
    plain = [c.cells() if isinstance(c, wire.Fields | wire.Joined) else c for c in cols]
    cells = [[bytes(c[r]) if isinstance(c, np.ndarray) else c[r] for c in plain] for r in range(rows)]
    msg = predict_pb2.PointWiseResponse(
        target_scores=[predict_pb2.TargetScore(output_values=row) for row in cells]
    )
    return msg.SerializeToString()


@pytest.mark.parametrize("seed", range(8))
def test_score_messages_match_protobuf(seed: int) -> None:
    rng = random.Random(seed)
    packed = 0
    for _ in range(60):
        rows, cols = _case(rng)
        got = wire.score_messages(2, cols, {}, rows)
        assert got == _expected(cols, rows)
        packed += wire._packed(2, cols, rows) is not None
    assert packed  # the numpy writer took part


def test_score_messages_with_errors_take_the_row_writer() -> None:
    cols: list[wire.Cells] = [[b"a", b"bc"], np.zeros((2, 4), np.uint8)]
    got = predict_pb2.PointWiseResponse.FromString(wire.score_messages(2, cols, {1: "bad"}, 2))
    assert [s.error for s in got.target_scores] == ["", "bad"]
    assert [list(s.output_values) for s in got.target_scores] == [[b"a", bytes(4)], [b"bc", bytes(4)]]


def test_request_fields_write_the_same_bytes_as_their_cells() -> None:
    ids = ["a", "ünï", "x" * 120, "12345"]
    raw = predict_pb2.PointWiseRequest(targets=[predict_pb2.Target(id=i) for i in ids]).SerializeToString()
    got = adapters._ids_only(raw)
    assert got is not None
    texts, fields = got
    assert texts == ids
    assert fields.cells() == [i.encode() for i in ids]
    block = np.arange(4 * len(ids), dtype=np.uint8).reshape(len(ids), 4)
    want = _expected([fields.cells(), block], len(ids))
    assert wire.score_messages(2, [fields, block], {}, len(ids)) == want
    assert wire.score_messages(2, [fields, block], {0: "e"}, len(ids)) != want  # the per-row writer
    with_error = predict_pb2.PointWiseResponse.FromString(wire.score_messages(2, [fields], {0: "e"}, 4))
    assert [s.output_values[0].decode() for s in with_error.target_scores] == ids


@pytest.mark.parametrize("seed", range(6))
def test_ids_then_fixed_columns_match_protobuf(seed: int) -> None:
    """The usual layout (the request's ids, then fixed-width columns) has its own numpy writer; it must
    write what protobuf writes, and hand over to the general writers when a message is 128 bytes or more."""
    rng = random.Random(seed)
    for _ in range(40):
        rows = rng.choice([1, 2, 9, 200])
        ids = [
            "".join(rng.choice("ab7é\n") for _ in range(rng.choice([0, 1, 5, 20, 60]))) for _ in range(rows)
        ]
        raw = predict_pb2.PointWiseRequest(
            targets=[predict_pb2.Target(id=i) for i in ids]
        ).SerializeToString()
        got = adapters._ids_only(raw)
        if got is None:  # an id too long for the fast decode
            continue
        fields = got[1]
        widths = [rng.choice([0, 4, 8, 12, 48]) for _ in range(rng.randint(1, 3))]
        blocks = [np.frombuffer(rng.randbytes(rows * w), np.uint8).reshape(rows, w) for w in widths]
        cols: list[wire.Cells] = [fields, *blocks]
        want = _expected(cols, rows)
        assert wire.score_messages(2, cols, {}, rows) == want
        fits = max(len(i.encode()) for i in ids) + 2 + sum(w + 2 for w in widths) < 128
        assert (wire._ids_then_fixed(0x12, fields, blocks, rows) is not None) == fits


def test_string_cells_echo_request_fields_only_while_the_column_holds_the_request_ids() -> None:
    ids = ["7", "8"]
    raw = predict_pb2.PointWiseRequest(targets=[predict_pb2.Target(id=i) for i in ids]).SerializeToString()
    got = adapters._ids_only(raw)
    assert got is not None
    matrix = ComponentMatrix(2)
    matrix.set_text("id", got[0])
    known = ("id", got[0], got[1])
    assert responses._string_cells(matrix, "id", known) is got[1]
    matrix.set_text("id", ["7", "9"])  # rewritten: the cells come from the column
    cells = responses._string_cells(matrix, "id", known)
    assert isinstance(cells, wire.Joined)  # ASCII text: one buffer, no bytes object per cell
    assert cells.cells() == [b"7", b"9"]
    matrix.set_text("id", ["7", "ü"])
    assert responses._string_cells(matrix, "id", known) == [b"7", "ü".encode()]


@pytest.mark.parametrize(
    "ids",
    [
        ["abcdefgh", "1", "ünï", "x" * 127],  # a length byte of 10 ("\n") is a header, not an id's
        ["a\nb", "c", "\n"],  # ids holding "\n": decoded one by one
    ],
)
def test_ids_only_decodes_every_id(ids: list[str]) -> None:
    raw = predict_pb2.PointWiseRequest(targets=[predict_pb2.Target(id=i) for i in ids]).SerializeToString()
    got = adapters._ids_only(raw)
    assert got is not None
    assert got[0] == ids


@pytest.mark.parametrize(
    ("probe", "empty"),
    [
        ({"fail": True}, True),  # nothing written: the column's cells are missing
        ({"fail_after_write": True, "text": ""}, True),  # written, every cell empty (one joined buffer)
        ({"fail_after_write": True, "text": "x"}, False),  # written: no cell is missing
    ],
)
async def test_a_failed_text_output_names_its_component_on_each_empty_target(
    probe: dict, empty: bool
) -> None:
    """Each target whose cell of a failed component's text output is empty gets an error naming the
    component and the output; a target with a value does not."""
    from inferflow_core.testing.inprocess import InProcessService
    from tests.helpers import model_json, probe_runtime

    rt = probe_runtime()
    text_out = {"name": "label", "data_type": "DataTypeString"}
    probes = [
        {"component": "ok", "outputs": [{"name": "score"}]},
        {"component": "broken", "outputs": [text_out], **probe},
    ]
    dag = {"ok": ["feature_initializer"], "broken": ["feature_initializer"]}
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json(dag, probes, ["catalog_id", "label"])})
    assert not rt.store.current.errors, rt.store.current.errors
    request = predict_pb2.PointWiseRequest(
        model_config_id="m", targets=[predict_pb2.Target(id=str(i)) for i in range(3)]
    )
    raw = await InProcessService(rt).call("pointwise", request.SerializeToString())
    resp = predict_pb2.PointWiseResponse.FromString(raw)
    cell = b"" if empty else b"x"
    assert [list(s.output_values) for s in resp.target_scores] == [[str(i).encode(), cell] for i in range(3)]
    assert "broken" in resp.request_error
    for score in resp.target_scores:
        if empty:
            assert "broken" in score.error
            assert "output 'label' missing" in score.error
        else:
            assert score.error == ""
