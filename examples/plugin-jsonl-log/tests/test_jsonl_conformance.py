"""The example format and sink pass the conformance bases of inferflow_logging.testing."""

from __future__ import annotations

import io
import json
from typing import Any

from inferflow_jsonl_log import JsonLinesFormat, StdoutSink
from inferflow_jsonl_log.sink import StdoutWriter
from inferflow_logging.api import LogMessage, wrap
from inferflow_logging.testing import FormatConformance, SinkConformance, every_dtype_table

from inferflow_core.api import Metrics


class TestJsonLinesFormat(FormatConformance):
    def make_format(self) -> Any:
        return JsonLinesFormat()


class TestStdoutSink(SinkConformance):
    def make_sink(self) -> Any:
        return StdoutSink()


def test_each_row_is_one_json_object_of_feature_texts() -> None:
    table = every_dtype_table(rows=2)
    (chunk,) = JsonLinesFormat().encode(table, 10)
    rows = [json.loads(blob) for blob in chunk.features]
    assert chunk.entities == ["e0", "e1"]
    assert rows[1]["f_datatypefp32"] == "-2"
    assert rows[0]["f_datatypefp32"] is None
    assert rows[1]["f_datatypeint64vector"] == ["3", "4"]
    assert rows[1]["f_datatypestringvector"] == ['r1, "q" 0', 'r1, "q" 1']
    assert rows[0]["f_datatypebool"] == "true"
    assert [e.name for e in table.entries] == list(rows[0])


def test_the_stdout_writer_embeds_json_blobs_and_base64_for_others() -> None:
    out = io.BytesIO()
    writer = StdoutWriter(Metrics(), out)
    value = wrap(
        user_id="",
        tracking_id="t1",
        model_id="m",
        entities=["a", "b"],
        features=[b'{"x":"1"}', b"\xff\x00"],
        metadata=b"\xc0jsonl",
        parents=[],
        created_at=7,
    )
    writer.write([LogMessage(value, "m", "m", [["x", "DataTypeFP32"]])])
    line = json.loads(out.getvalue())
    assert line["inference_log"] == "m"
    assert line["tracking_id"] == "t1"
    assert line["format"] == "jsonl"
    assert line["entities"] == ["a", "b"]
    assert line["features"] == [{"x": "1"}, {"base64": "/wA="}]
