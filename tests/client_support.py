"""Shared by the client and CLI tests: one model echoing a feature of every data type, a slate model and
a model with a failing component, served by a runtime with the probe component."""

from __future__ import annotations

from typing import Any

from inferflow_core.api import DataType
from inferflow_core.config.settings import ServiceSettings
from inferflow_core.runtime import Runtime
from inferflow_core.testing import make_runtime
from tests.helpers import ProbePlugin
from tests.serving_support import PREFIX, _model

# one input feature per data type, echoed back by the response (its type is the request's)
SAMPLES: dict[DataType, Any] = {
    DataType.FP8E5M2: [0.5, -2.0],
    DataType.FP8E4M3: [0.5, 1.5],
    DataType.FP16: [1.5, -0.25],
    DataType.FP32: [0.1, 2.5],
    DataType.FP64: [0.1, 1e300],
    DataType.INT8: [1, -2],
    DataType.INT16: [300, -2],
    DataType.INT32: [70000, -2],
    DataType.INT64: [2**40, -2],
    DataType.UINT8: [1, 200],
    DataType.UINT16: [1, 60000],
    DataType.UINT32: [1, 2**31],
    DataType.UINT64: [1, 2**63],
    DataType.STRING: ["a b", "é:,x"],
    DataType.BOOL: [True, False],
    DataType.STRING_VECTOR: [["a", "b c"], ["d", "e"]],
    DataType.BOOL_VECTOR: [[True, False], [False, True]],
}
for _dt in list(SAMPLES):
    if _dt.is_fixed_width and not _dt.is_vector and _dt is not DataType.BOOL:
        SAMPLES[_dt.vector] = [[v, v] for v in SAMPLES[_dt]]
assert len(SAMPLES) == 30  # every type but UNKNOWN
ECHO = [f"f_{dt.name.lower()}" for dt in SAMPLES]


TREE = {
    PREFIX + "echo": _model(
        {"scorer": ["feature_initializer"]},
        [{"component": "scorer", "outputs": [{"name": "score"}], "value": 0.5}],
        ["catalog_id", "score", "user_id", *ECHO],
    ),
    PREFIX + "slate": _model(
        {"scorer": ["feature_initializer"], "slater": ["scorer"]},
        [
            {"component": "scorer", "outputs": [{"name": "score"}], "value": 0.5},
            {"component": "slater", "slate_outputs": [{"name": "slate_score"}], "value": 1.0},
        ],
        ["catalog_id", "score", "slate_score"],
    ),
    PREFIX + "broken": _model(
        {"ok": ["feature_initializer"], "broken": ["feature_initializer"]},
        [
            {"component": "ok", "outputs": [{"name": "score"}]},
            {"component": "broken", "outputs": [{"name": "bad"}], "fail": True},
        ],
        ["catalog_id", "score", "bad"],
    ),
}


def _runtime(encoding: str = "text") -> Runtime:
    settings = ServiceSettings(request_value_encoding=encoding)  # type: ignore[arg-type]
    return make_runtime(settings=settings, probe=ProbePlugin())
