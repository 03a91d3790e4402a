"""The rule filter installed as a real distribution (entry point), run in a DAG by the core's runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rule_filter_support import MODEL

from inferflow_core.api import DataType, InitialData, RequestInfo, Runtime


def _runtime(model: dict) -> Runtime:
    rt = Runtime()  # loads entry points: the plugin must be installed, not registered by hand
    assert "rule_filter_components" in rt.registry.components, "entry point rule_filter not loaded"
    rt.apply_tree({rt.settings.config_map_prefix + "m": json.dumps(model)})
    return rt


async def test_filters_targets_in_a_dag() -> None:
    rt = _runtime(MODEL)
    assert not rt.store.current.errors, rt.store.current.errors
    initial = InitialData(
        rows=4,
        texts={
            "catalog_id": ["a", "b", "c", "d"],
            "price": ["100", "900", "", "500"],
            "stock": ["3", "3", "3", "0"],
            "final_score": ["0.5", "0.25", "0.75", "0.125"],
        },
    )
    ctx = await rt.execute("m", initial, RequestInfo(api="pointwise"))
    assert not ctx.failures, ctx.failures
    keep, valid = ctx.matrix.read("keep", DataType.BOOL)
    assert valid.all()
    # a: cheap + in stock; b: too expensive; c: price missing -> dropped; d: out of stock
    assert keep.tolist() == [True, False, False, False]
    scores, svalid = ctx.matrix.read("filtered_score", DataType.FP32)
    assert svalid.tolist() == [True, False, False, False]
    assert scores[0] == pytest.approx(0.5)


async def test_keep_missing_keeps_targets_without_the_input() -> None:
    model = json.loads(json.dumps(MODEL))
    model["component_config"]["rule_filter_components"][0]["keep_missing"] = True
    rt = _runtime(model)
    initial = InitialData(
        rows=2,
        texts={"catalog_id": ["a", "b"], "price": ["", "600"], "stock": ["1", "1"], "final_score": "1"},
    )
    ctx = await rt.execute("m", initial, RequestInfo(api="pointwise"))
    keep, _ = ctx.matrix.read("keep", DataType.BOOL)
    assert keep.tolist() == [True, False]
    assert np.array_equal(ctx.matrix.read("filtered_score")[1], [True, False])


def test_bad_config_is_rejected_with_its_path() -> None:
    model = json.loads(json.dumps(MODEL))
    model["component_config"]["rule_filter_components"][0]["rules"][0]["op"] = "~"
    model["component_config"]["rule_filter_components"][0]["output_column"] = None
    rt = _runtime(model)
    errors = rt.store.current.errors
    assert "m" in errors, errors
    text = str(errors["m"])
    assert "rules" in text
    assert "op" in text
