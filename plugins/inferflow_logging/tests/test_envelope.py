"""The hand-written envelope serializer produces exactly the generated classes' bytes."""

from __future__ import annotations

import pytest
from inferflow_logging.envelope import unwrap, wrap, wrap_with_messages

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
