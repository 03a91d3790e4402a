"""`inferflow validate` on the reference example (all plugins installed) and on broken variants."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples/reference"
MODEL = EXAMPLE / "inferflow/services/inferflow/model-config/config-map/ctr_pointwise_v1.json"


# the reference example is a production config: remote OnFS (validation needs a store configured)
ENV = {**os.environ, "EXTERNAL_SERVICE_ONFS_FS_HOST": "onfs.invalid"}


def _validate(path: Path, *flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferflow_core.cli", "validate", str(path), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV if env is None else env,
    )


def test_reference_example_is_valid() -> None:
    out = _validate(EXAMPLE)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok      ctr_pointwise_v1" in out.stdout


def _mutate(fn):  # type: ignore[no-untyped-def]
    cfg = json.loads(MODEL.read_text())
    fn(cfg)
    return cfg


def _cycle(c):  # type: ignore[no-untyped-def]
    c["dag_execution_config"]["component_dependency"]["user_features"] = ["final_score"]


def _unknown(c):  # type: ignore[no-untyped-def]
    c["dag_execution_config"]["component_dependency"]["ctr_model"].append("no_such_component")


def _unreachable(c):  # type: ignore[no-untyped-def]
    c["dag_execution_config"]["component_dependency"]["final_score"] = []


def _dup_column(c):  # type: ignore[no-untyped-def]
    c["component_config"]["numerix_components"][0]["score_col"] = "pctr"


def _perc90(c):  # type: ignore[no-untyped-def]
    c["component_config"]["predator_components"][0]["model_end_points"][1]["percentage"] = 0


def _mapping_no_at(c):  # type: ignore[no-untyped-def]
    c["component_config"]["numerix_components"][0]["score_mapping"] = {"pctr": "pctr"}


def _bad_dtype(c):  # type: ignore[no-untyped-def]
    group = c["component_config"]["feature_components"][0]["fs_request"]["featureGroups"][0]
    group["data_type"] = "DataTypeFP33"


CASES = {
    "cycle": (_cycle, "dag_execution_config.component_dependency", "cycle"),
    "unknown": (_unknown, "dag_execution_config.component_dependency", "no_such_component"),
    "unreachable": (_unreachable, "dag_execution_config.component_dependency", "not reachable"),
    "duplicate_column": (_dup_column, "component_config", "'pctr' is produced by both"),
    "percentages_90": (_perc90, "component_config.predator_components[0]", "100"),
    "score_mapping_without_at": (_mapping_no_at, "component_config.numerix_components[0]", "@"),
    "misspelled_dtype": (_bad_dtype, "component_config.feature_components[0]", "FP33"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_configs_are_rejected_precisely(case: str, tmp_path: Path) -> None:
    fn, path_prefix, needle = CASES[case]
    shutil.copytree(EXAMPLE, tmp_path / "cfg")  # the file is validated with its tree (numerix expressions)
    bad = tmp_path / "cfg" / MODEL.relative_to(EXAMPLE).with_name("broken_model.json")
    bad.write_text(json.dumps(_mutate(fn)))
    out = _validate(bad)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = [line.strip() for line in out.stdout.splitlines()]
    problems = [line for line in lines if line.startswith("model broken_model:")]
    assert problems, out.stdout
    assert any(path_prefix in p and needle in p for p in problems), problems


def _typo(c):  # type: ignore[no-untyped-def]
    c["component_config"]["predator_components"][0]["inputs"][0]["features"][3] = (
        "catalog:catalog_stats:prize"
    )


def _copy_with(tmp_path: Path, fn) -> Path:  # type: ignore[no-untyped-def]
    shutil.copytree(EXAMPLE, tmp_path / "cfg")
    (tmp_path / "cfg" / MODEL.relative_to(EXAMPLE)).write_text(json.dumps(_mutate(fn)))
    return tmp_path / "cfg"


def test_a_typo_in_a_predator_input_is_a_warning_with_did_you_mean(tmp_path: Path) -> None:
    """Issue 12: validate said ok and serving silently scored the typo as zeros."""
    cfg = _copy_with(tmp_path, _typo)
    out = _validate(cfg)
    assert out.returncode == 0, out.stdout + out.stderr
    warning = [line for line in out.stdout.splitlines() if "prize" in line]
    assert warning, out.stdout
    assert "warning: model ctr_pointwise_v1" in warning[0], out.stdout
    assert "predator_components[0].inputs[0].features[3]" in warning[0]
    assert "did you mean 'catalog:catalog_stats:price'?" in warning[0]


def test_strict_turns_warnings_into_errors(tmp_path: Path) -> None:
    out = _validate(_copy_with(tmp_path, _typo), "--strict")
    assert out.returncode == 1
    assert "INVALID ctr_pointwise_v1" in out.stdout
    assert "prize" in out.stdout


def test_json_output(tmp_path: Path) -> None:
    out = _validate(_copy_with(tmp_path, _typo), "--json")
    doc = json.loads(out.stdout)
    assert doc["valid"] is True
    assert doc["strict"] is False
    (model,) = doc["models"]
    assert model["model"] == "ctr_pointwise_v1"
    assert model["valid"]
    assert model["errors"] == []
    paths = [w["path"] for w in model["warnings"]]
    assert "component_config.predator_components[0].inputs[0].features[3]" in paths
    bad = _validate(_copy_with(tmp_path / "2", _cycle), "--json")
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    assert doc["valid"] is False
    assert any("cycle" in e["message"] for e in doc["models"][0]["errors"])


def test_the_examples_validate_clean_in_strict_mode() -> None:
    out = _validate(EXAMPLE, "--strict")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "warning" not in out.stdout
