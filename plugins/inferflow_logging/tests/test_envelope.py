"""The hand-written envelope serializer produces exactly the generated classes' bytes."""

from __future__ import annotations

import pytest
from inferflow_logging._proto import inferflow_logging_pb2 as log_pb2
from inferflow_logging.envelope import frame_entities, unwrap, wrap, wrap_with_messages

CASES = [
    {
        "user_id": "u1",
        "tracking_id": "trk-é",
        "model_id": "m1",
        "entities": ["c1", "", "c3"],
        "features": [b"\x01abc", b"", b"\x00" * 300],
        "metadata": b"\x80",
        "parents": ["p9"],
        "created_at": 1_700_000_000,
    },
    {
        "user_id": "",
        "tracking_id": "t",
        "model_id": "m" * 200,
        "entities": [],
        "features": [b"x" * 70_000],
        "metadata": b"",
        "parents": [],
        "created_at": 0,
        "event_name": "inferflow_inference_slate_logs",
    },
    {
        "user_id": "u",
        "tracking_id": "",
        "model_id": "",
        "entities": ["a,b"],
        "features": [b"\x00"],
        "metadata": b"\x00",
        "parents": [""],
        "created_at": -5,
    },
]


@pytest.mark.parametrize("case", CASES)
def test_hand_written_envelope_matches_generated_classes(case: dict) -> None:
    got = wrap(**case)
    assert got == wrap_with_messages(**case)
    value, log = unwrap(got)
    assert value.event_id == case["tracking_id"]
    assert value.created_at == case["created_at"]
    assert [f.encoded_features for f in log.features] == case["features"]
    assert list(log.entities) == case["entities"]
    assert log.model_config_id == case["model_id"]


@pytest.mark.parametrize(
    "ids",
    [
        [],
        ["", "1", "123456"],
        ["x" * 127, "y"],  # the longest id with a one-byte length
        ["x" * 128, "y"],  # a two-byte length
        ["c1", "é", "c3"],  # not ASCII: UTF-8 bytes, longer than the text
        ["\x7f\x00", "a" * 100],
        ["ü" * 64, "a"],  # 64 characters, 128 bytes
    ],
)
def test_framed_entities_are_the_generated_classes_bytes(ids: list[str]) -> None:
    assert frame_entities(ids) == log_pb2.InferflowLog(entities=ids).SerializeToString()
