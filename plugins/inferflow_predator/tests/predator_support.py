"""What the predator tests share besides fixtures: paths and the one-model config (see conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_REPO = ROOT / "inferflow_core" / "example" / "models"
N_FEATURES = 8


def model_json(components: list[dict[str, Any]], features: list[str] | None = None) -> str:
    dag = {c["component"]: ["feature_initializer"] for c in components}
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": dag},
            "component_config": {"predator_components": components},
            "response_config": {"features": features or ["id"]},
        }
    )
