"""Model-config validation at load: every problem names the model, the JSON path and what is wrong."""

from __future__ import annotations

import json

import pytest

from inferflow_core.errors import ConfigError
from tests.helpers import model_json, probe_runtime


def _compile(raw: str, model_id: str = "m"):
    rt = probe_runtime()
    return rt.compiler.compile(model_id, raw, {})


def _problems(raw: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        _compile(raw)
    assert info.value.model_id == "m"
    assert "model 'm'" in str(info.value)
    return info.value.problems


P = [{"component": "a", "outputs": [{"name": "x"}]}, {"component": "b", "outputs": [{"name": "y"}]}]


def test_valid_model_compiles_with_columns() -> None:
    compiled = _compile(model_json({"a": ["feature_initializer"], "b": ["a"]}, P))
    assert compiled.graph.order == ("feature_initializer", "a", "b")
    assert [c.name for c in compiled.target_columns] == ["x", "y"]


def test_cycle_is_rejected() -> None:
    probs = _problems(model_json({"a": ["feature_initializer", "b"], "b": ["a"]}, P))
    assert any("cycle" in m and "'a'" in m and "'b'" in m for _, m in probs), probs
    assert probs[0][0] == "dag_execution_config.component_dependency"


def test_unknown_component_is_rejected() -> None:
    probs = _problems(model_json({"a": ["feature_initializer"], "b": ["a"], "zzz": ["a"]}, P))
    assert any("'zzz' is not a configured component" in m for _, m in probs), probs


def test_unreachable_node_is_rejected() -> None:
    probs = _problems(model_json({"a": ["feature_initializer"], "b": []}, P))
    assert any("'b' is not reachable" in m for _, m in probs), probs


def test_no_root_is_rejected_instead_of_hanging() -> None:
    probs = _problems(model_json({"a": [], "b": ["a"]}, P))
    assert any("no root" in m for _, m in probs), probs


def test_duplicate_output_column_is_rejected() -> None:
    dup = [{"component": "a", "outputs": [{"name": "x"}]}, {"component": "b", "outputs": [{"name": "x"}]}]
    probs = _problems(model_json({"a": ["feature_initializer"], "b": ["a"]}, dup))
    assert any("'x' is produced by both 'a' and 'b'" in m for _, m in probs), probs


def test_duplicate_component_name_is_rejected() -> None:
    dup = [{"component": "a", "outputs": [{"name": "x"}]}, {"component": "a", "outputs": [{"name": "y"}]}]
    probs = _problems(model_json({"a": ["feature_initializer"]}, dup))
    assert ("component_config.probe_components[1].component", "component name 'a' is used twice") in probs


def test_misspelled_data_type_names_the_path() -> None:
    bad = [{"component": "a", "outputs": [{"name": "x", "data_type": "DataTypeFP33"}]}]
    probs = _problems(model_json({"a": ["feature_initializer"]}, bad))
    path, msg = probs[0]
    assert path == "component_config.probe_components[0].outputs[0].data_type"
    assert "FP33" in msg


def test_unknown_key_in_component_section_is_rejected() -> None:
    bad = [{"component": "a", "outputz": []}]
    probs = _problems(model_json({"a": ["feature_initializer"]}, bad))
    assert probs[0][0] == "component_config.probe_components[0].outputz"


def test_section_without_plugin_is_rejected() -> None:
    raw = json.loads(model_json({"a": ["feature_initializer"]}, P[:1]))
    raw["component_config"]["predator_components"] = [{"component": "p"}]
    probs = _problems(json.dumps(raw))
    assert probs[0][0] == "component_config.predator_components"
    assert "no installed plugin" in probs[0][1]


def test_not_json_and_wrong_types() -> None:
    assert _problems("{not json")[0][0] == "$"
    probs = _problems(json.dumps({"dag_execution_config": {"component_dependency": {}}}))
    assert probs[0][0] == "dag_execution_config.component_dependency"
    probs = _problems(
        json.dumps(
            {
                "dag_execution_config": {"component_dependency": {"a": ["feature_initializer"]}},
                "response_config": {"logging_perc": 101},
            }
        )
    )
    assert probs[0][0] == "response_config.logging_perc"


def test_horizon_extra_keys_are_accepted() -> None:
    raw = json.loads(model_json({"a": ["feature_initializer"]}, P[:1]))
    raw["route_config"] = [{"model_name": "x", "model_endpoint": "h", "routing_percentage": 100.0}]
    raw["logging_ttl"] = 30
    raw["component_config"]["seen_score_components"] = []
    raw["component_config"]["real_time_pricing_feature_components"] = [{"whatever": 1}]
    assert _compile(json.dumps(raw)).model_id == "m"


def test_snapshot_keeps_last_good_version_and_deletes_exactly() -> None:
    rt = probe_runtime()
    pre = rt.settings.config_map_prefix
    good = model_json({"a": ["feature_initializer"]}, P[:1])
    snap1 = rt.apply_tree({pre + "abc": good, pre + "abc_v2": good})
    assert set(snap1.models) == {"abc", "abc_v2"}
    snap2 = rt.apply_tree({pre + "abc": "{broken", pre + "abc_v2": good})
    assert snap2.models["abc"] is snap1.models["abc"]  # last good keeps serving
    assert "abc" in snap2.errors
    snap3 = rt.apply_tree({pre + "abc_v2": good})  # delete abc only
    assert set(snap3.models) == {"abc_v2"}
    assert not snap3.errors
    assert snap1.models.keys() == {"abc", "abc_v2"}  # old snapshots are immutable


def test_identical_constant_columns_from_two_components_are_allowed() -> None:
    from inferflow_core.api import ColumnSpec, DataType
    from inferflow_core.engine.compile import ModelCompiler

    class C:
        def __init__(self, name: str, const: str) -> None:
            self.name = name
            self.const = const

        def outputs(self) -> list[ColumnSpec]:
            return [ColumnSpec("inferflow_config_id", DataType.STRING, constant=self.const)]

        def required_columns(self) -> list[ColumnSpec]:
            return []

    from inferflow_core.config.model import ModelConfig

    model = ModelConfig.model_validate({"dag_execution_config": {"component_dependency": {"a": []}}})
    problems: list[tuple[str, str]] = []
    cols, _ = ModelCompiler._columns(model, {"a": C("a", "m"), "b": C("b", "m")}, problems)  # type: ignore[dict-item]
    assert not problems
    assert [c.name for c in cols] == ["inferflow_config_id"]
    ModelCompiler._columns(model, {"a": C("a", "m"), "b": C("b", "other")}, problems)  # type: ignore[dict-item]
    assert problems
