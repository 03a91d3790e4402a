"""The example model shared by the rule-filter tests."""

from __future__ import annotations

MODEL = {
    "dag_execution_config": {"component_dependency": {"price_filter": ["feature_initializer"]}},
    "component_config": {
        "rule_filter_components": [
            {
                "component": "price_filter",
                "rules": [
                    {"column": "price", "op": "<=", "value": 500},
                    {"column": "stock", "op": ">", "value": 0},
                ],
                "keep_column": "keep",
                "score_column": "final_score",
                "output_column": "filtered_score",
            }
        ]
    },
    "response_config": {"features": ["catalog_id", "keep", "filtered_score"]},
}
