"""NumerixComponent end to end in a DAG through inferflow_core.runtime.Runtime (entry points loaded)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from inferflow_core.api import DataType, InitialData, RequestInfo, Runtime, TypedValues

EXPR_KEY = "numerix/expression-config/"


def model_json(
    *,
    slate: bool = False,
    mapping: dict | None = None,
    data_type: str = "DataTypeFP64",
    compute_id: str = "7",
) -> str:
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": {"final": ["feature_initializer"]}},
            "component_config": {
                "numerix_components": [
                    {
                        "component": "final",
                        "component_id": "catalog_id",
                        "score_col": "final_score",
                        "data_type": data_type,
                        "score_mapping": mapping
                        or {"pctr@DataTypeFP32": "pctr", "price@DataTypeFP32": "price"},
                        "compute_id": compute_id,
                        "slate_component": slate,
                    }
                ]
            },
            "response_config": {"features": ["catalog_id", "final_score"]},
        }
    )


def runtime(expression: str, **kw) -> Runtime:
    rt = Runtime()
    rt.apply_tree(
        {
            rt.settings.config_map_prefix + "m": model_json(**kw),
            EXPR_KEY + "7": json.dumps({"expression": expression}),
        }
    )
    assert not rt.store.current.errors, rt.store.current.errors
    return rt


def initial(rows: int = 3) -> InitialData:
    # pctr as request text (third row missing -> 0); price as a typed INT64 request feature
    return InitialData(
        rows=rows,
        texts={"catalog_id": [f"c{i}" for i in range(rows)], "pctr": (["0.5", "0.2", ""] * rows)[:rows]},
        typed={
            "price": TypedValues(
                DataType.INT64, np.arange(1, rows + 1, dtype=np.int64) * 2, np.ones(rows, bool)
            )
        },
    )


async def run(rt: Runtime, rows: int = 3, slates=None):
    return await rt.execute("m", initial(rows), RequestInfo(api="pointwise"), slates=slates)


def test_plugin_is_found_through_entry_points() -> None:
    rt = Runtime()
    assert "numerix_components" in rt.registry.components
    assert "numerix/expression-config/" in rt.prefixes


async def test_final_step_in_a_dag() -> None:
    ctx = await run(runtime("pctr price 2 + log /"))
    assert not ctx.failures
    values, valid = ctx.matrix.read("final_score")
    assert ctx.matrix.column("final_score").dtype is DataType.FP64
    assert valid.all()
    pctr = np.float32([0.5, 0.2, 0.0])
    price = np.float32([2, 4, 6])
    np.testing.assert_allclose(values, pctr / np.log(price + np.float32(2)), rtol=1e-6)


async def test_result_cast_to_configured_type() -> None:
    ctx = await run(runtime("price 10 *", data_type="DataTypeInt32"))
    values, valid = ctx.matrix.read("final_score")
    assert values.dtype == np.int32
    assert values.tolist() == [20, 40, 60]
    assert valid.all()


async def test_expression_hot_reload_without_model_change() -> None:
    rt = runtime("price 1 +")
    assert (await run(rt)).matrix.read("final_score")[0].tolist() == [3, 5, 7]
    tree = dict(rt.store.current.tree)
    tree[EXPR_KEY + "7"] = json.dumps({"expression": "price 2 *"})
    rt.apply_tree(tree)
    assert (await run(rt)).matrix.read("final_score")[0].tolist() == [4, 8, 12]


async def test_failing_call_is_contained() -> None:
    ctx = await run(runtime("pctr price 0 * /"))
    assert [(f.component, f.kind) for f in ctx.failures] == [("final", "expression-error")]
    assert "'/'" in ctx.failures[0].message
    assert "division by zero" in ctx.failures[0].message
    assert not ctx.matrix.read("final_score")[1].any()


def test_missing_expression_rejects_the_model_naming_compute_id() -> None:
    """Embedded mode: a compute_id without an expression is known at load, not per request."""
    rt = Runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json()})
    assert "m" not in rt.store.current.models
    problems = rt.store.current.errors["m"].problems
    assert any(
        p == "component_config.numerix_components[0].compute_id" and "compute_id '7'" in m
        for p, m in problems
    ), problems


def test_expression_variable_not_in_score_mapping_is_rejected() -> None:
    rt = Runtime()
    rt.apply_tree(
        {
            rt.settings.config_map_prefix + "m": model_json(),
            EXPR_KEY + "7": json.dumps({"expression": "pctr prcie +"}),
        }
    )
    err = str(rt.store.current.errors["m"])
    assert "score_mapping" in err, err
    assert "'prcie'" in err, err


def test_bad_score_mapping_rejected_at_load() -> None:
    rt = Runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json(mapping={"pctr": "pctr", "x@Nope": "x"})})
    err = str(rt.store.current.errors["m"])
    assert "component_config.numerix_components[0].score_mapping.pctr" in err
    assert "'@<DataType>'" in err
    assert "score_mapping.x@Nope" in err
    assert "m" not in rt.store.current.models


async def test_slate_mode_evaluates_each_slate() -> None:
    # norm_min_max depends on the rows of the call: each slate is its own call
    rt = runtime("price norm_min_max pctr +", slate=True)
    slates = [np.array([1, 0]), np.array([2]), np.array([], dtype=np.intp), np.array([0, 2, 1])]
    ctx = await run(rt, slates=slates)
    assert not ctx.failures
    values, valid = ctx.slate_matrix.read("final_score")
    assert valid.tolist() == [True, True, False, True]
    # slate 0 rows (1, 0): price (4, 2) -> norm (1, 0); first row = 1 + pctr[1]=0.2
    np.testing.assert_allclose(values[[0, 1, 3]], [1.2, 0.0, 0.5], rtol=1e-6)
    assert not ctx.matrix.has("final_score")


async def test_slate_mode_reads_pair_slate_request_features() -> None:
    """Issue 12: a slate component mapping a pair/slate request feature used to get 0.0 silently."""
    rt = runtime(
        "boost pctr +", slate=True, mapping={"pctr@DataTypeFP32": "pctr", "boost@DataTypeFP32": "boost"}
    )
    initial_data = initial()
    initial_data.slate_texts = {"boost": ["10", "20"]}
    slates = [np.array([0, 1]), np.array([1])]
    ctx = await rt.execute("m", initial_data, RequestInfo(api="slatewise"), slates=slates)
    assert not ctx.failures, (ctx.failures, ctx.notes)
    assert not ctx.notes, (ctx.failures, ctx.notes)
    values, valid = ctx.slate_matrix.read("final_score")
    assert valid.tolist() == [True, True]
    np.testing.assert_allclose(values, [10.5, 20.2], rtol=1e-6)  # boost of the slate + pctr of its 1st row


async def test_slate_mode_failure_is_contained() -> None:
    rt = runtime("pctr log", slate=True)  # row 2 has pctr 0
    ctx = await run(rt, slates=[np.array([0]), np.array([2])])
    assert [f.component for f in ctx.failures] == ["final"]
    assert "slate 1" in ctx.failures[0].message
    values, valid = ctx.slate_matrix.read("final_score")
    assert valid.tolist() == [True, False]
    assert values[0] == pytest.approx(math.log(0.5))


async def test_slate_component_in_pointwise_does_nothing() -> None:
    ctx = await run(runtime("pctr", slate=True))
    assert not ctx.failures
    assert not ctx.matrix.has("final_score")


# ----------------------------------------------------------------------------- remote mode (real server)
REMOTE_EXPRESSIONS = {
    "7": "pctr price 2 + log /",
    "norm": "price norm_min_max pctr +",
    "bad": "pctr 0 /",
    "row2": "pctr price 6 - /",  # zero divisor only in row 2
}


@pytest.fixture(scope="module")
def numerix_port(start_numerix_server, tmp_path_factory) -> int:
    from inferflow_core.testing import write_config_dir

    root = tmp_path_factory.mktemp("remote_cfg")
    write_config_dir(
        root, {EXPR_KEY + k: json.dumps({"expression": v}) for k, v in REMOTE_EXPRESSIONS.items()}
    )
    return start_numerix_server(root)


@pytest.fixture(scope="module")
def secured_port(start_numerix_server, tmp_path_factory) -> int:
    from inferflow_core.testing import write_config_dir

    root = tmp_path_factory.mktemp("secured_cfg")
    write_config_dir(root, {EXPR_KEY + "7": json.dumps({"expression": REMOTE_EXPRESSIONS["7"]})})
    return start_numerix_server(root, auth_token="s3cret")


def remote_runtime(monkeypatch, port: int, compute_id: str = "7", token: str = "", **kw) -> Runtime:
    monkeypatch.setenv("NUMERIX_CLIENT_V1_HOST", "127.0.0.1")
    monkeypatch.setenv("NUMERIX_CLIENT_V1_PORT", str(port))
    monkeypatch.setenv("NUMERIX_CLIENT_V1_PLAINTEXT", "true")
    monkeypatch.setenv("NUMERIX_CLIENT_V1_BATCHSIZE", "2")
    monkeypatch.setenv("NUMERIX_CLIENT_V1_AUTHTOKEN", token)
    rt = Runtime()  # no expression in this tree: the remote server owns the expressions
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json(compute_id=compute_id, **kw)})
    assert not rt.store.current.errors, rt.store.current.errors
    return rt


@pytest.mark.integration
async def test_remote_batches_match_embedded(monkeypatch, numerix_port: int) -> None:
    embedded = await run(runtime(REMOTE_EXPRESSIONS["7"]), rows=5)
    remote = await run(remote_runtime(monkeypatch, numerix_port), rows=5)  # 3 parallel batches of <= 2
    assert not remote.failures, remote.failures
    got, valid = remote.matrix.read("final_score")
    assert valid.all()
    np.testing.assert_array_equal(got, embedded.matrix.read("final_score")[0])


@pytest.mark.integration
async def test_remote_slates_match_embedded(monkeypatch, numerix_port: int) -> None:
    slates = [np.array([1, 0]), np.array([2]), np.array([0, 2, 1])]
    embedded = await run(runtime(REMOTE_EXPRESSIONS["norm"], slate=True), slates=slates)
    remote = await run(remote_runtime(monkeypatch, numerix_port, "norm", slate=True), slates=slates)
    assert not remote.failures, remote.failures
    np.testing.assert_array_equal(
        remote.slate_matrix.read("final_score")[0], embedded.slate_matrix.read("final_score")[0]
    )


@pytest.mark.integration
async def test_remote_error_response_is_contained(monkeypatch, numerix_port: int) -> None:
    ctx = await run(remote_runtime(monkeypatch, numerix_port, "bad"))
    assert [(f.component, f.kind) for f in ctx.failures] == [("final", "numerix-error")]
    assert "division by zero" in ctx.failures[0].message
    assert not ctx.matrix.read("final_score")[1].any()


@pytest.mark.integration
async def test_remote_failed_batch_leaves_only_its_rows_missing(monkeypatch, numerix_port: int) -> None:
    ctx = await run(remote_runtime(monkeypatch, numerix_port, "row2"), rows=5)
    assert ctx.failures
    assert "rows 2-3" in ctx.failures[0].message
    values, valid = ctx.matrix.read("final_score")
    assert valid.tolist() == [True, True, False, False, True]
    np.testing.assert_allclose(values[[0, 1, 4]], np.float32([0.5, 0.2, 0.2]) / np.float32([-4, -2, 4]))


@pytest.mark.integration
async def test_remote_sends_auth_token(monkeypatch, secured_port: int) -> None:
    ok = await run(remote_runtime(monkeypatch, secured_port, token="s3cret"))
    assert not ok.failures
    assert ok.matrix.read("final_score")[1].all()
    denied = await run(remote_runtime(monkeypatch, secured_port, token="wrong"))
    assert [(f.kind, "UNAUTHENTICATED" in f.message) for f in denied.failures] == [
        ("numerix-api-error", True)
    ]


@pytest.mark.integration
async def test_check_backends_asks_the_remote_service_for_the_compute_id(
    monkeypatch, numerix_port: int
) -> None:
    good = remote_runtime(monkeypatch, numerix_port, compute_id="7").store.current.models["m"]
    assert await good.components["final"].check_backend() == []
    bad = remote_runtime(monkeypatch, numerix_port, compute_id="nope").store.current.models["m"]
    problems = await bad.components["final"].check_backend()
    assert problems, problems
    assert problems[0][0] == "compute_id", problems
    assert "'nope'" in problems[0][1], problems


async def test_metrics_embedded_and_remote(monkeypatch, numerix_port: int) -> None:
    """Numerix calls show up under the core's external-call names (and so the Go StatsD names)."""
    rt = runtime("pctr 2 * price +")
    await run(rt, rows=3)
    m = rt.metrics
    assert m.value("external_requests", service="numerix", endpoint="embedded") == 1
    remote = remote_runtime(monkeypatch, numerix_port, "bad")
    await run(remote)
    assert remote.metrics.value("external_requests", service="numerix", endpoint="compute") == 1
    assert remote.metrics.value("external_errors", service="numerix", endpoint="compute") == 1
