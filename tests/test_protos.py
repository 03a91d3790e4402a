"""Wire-contract tests for the generated protobuf / gRPC stubs.

The expected tables below are transcribed from docs/go-compatibility.md (§1.2-1.5, §5.2,
§5.4). They pin method paths, field numbers, types and labels, so an accidental edit of a
.proto file (or a stale stub) fails here rather than against a production client.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from google.protobuf import any_pb2
from google.protobuf.descriptor import FieldDescriptor

_ROOT = Path(__file__).resolve().parents[1]
# The plugin packages are not installed in the test environment: make them importable.
for _plugin in ("inferflow_onfs", "inferflow_numerix", "inferflow_logging"):
    _p = str(_ROOT / "plugins" / _plugin)
    if _p not in sys.path:
        sys.path.insert(0, _p)

from inferflow_logging._proto import inferflow_logging_pb2, kafka_request_pb2  # noqa: E402
from inferflow_numerix._proto import numerix_pb2, numerix_pb2_grpc  # noqa: E402
from inferflow_onfs._proto import retrieve_pb2, retrieve_pb2_grpc  # noqa: E402

from inferflow_core._proto import (  # noqa: E402
    inferflow_pb2,
    inferflow_pb2_grpc,
    predict_pb2,
    predict_pb2_grpc,
)

# ---------------------------------------------------------------------------------------
# helpers

_SCALAR_TYPES = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
}


def _type_of(fd: FieldDescriptor) -> str:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return "message:" + fd.message_type.full_name
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return "enum:" + fd.enum_type.full_name
    return _SCALAR_TYPES.get(fd.type, f"type#{fd.type}")


def _label_of(fd: FieldDescriptor) -> str:
    repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == FieldDescriptor.LABEL_REPEATED
    if repeated:
        return "repeated"
    oneof = fd.containing_oneof
    if oneof is not None:
        # proto3 `optional` is a synthetic one-field oneof named "_<field>".
        if oneof.name == "_" + fd.name and len(oneof.fields) == 1:
            return "optional"
        return "oneof:" + oneof.name
    return "singular"


def _fields(desc) -> dict[str, tuple[int, str, str]]:
    return {fd.name: (fd.number, _type_of(fd), _label_of(fd)) for fd in desc.fields}


S, B, I32, I64 = "string", "bytes", "int32", "int64"
ONE, REP, OPT = "singular", "repeated", "optional"


def M(name: str) -> str:
    return "message:" + name


# ---------------------------------------------------------------------------------------
# expected tables: message full name -> {field: (number, type, label)}

PREDICT = {
    "FeatureSchema": {
        "name": (1, S, ONE),
        "data_type": (2, "enum:DataType", ONE),
        "vector_dim": (3, I32, ONE),
    },
    "ContextFeature": {
        "name": (1, S, ONE),
        "value": (2, B, ONE),
        "data_type": (3, "enum:DataType", ONE),
        "vector_dim": (4, I32, ONE),
    },
    "Target": {"id": (1, S, ONE), "feature_values": (2, B, REP)},
    "TargetScore": {"error": (1, S, ONE), "output_values": (2, B, REP)},
    "PointWiseRequest": {
        "model_config_id": (1, S, ONE),
        "tracking_id": (2, S, ONE),
        "context_features": (3, M("ContextFeature"), REP),
        "target_input_schema": (4, M("FeatureSchema"), REP),
        "targets": (5, M("Target"), REP),
        "tenant_id": (6, S, ONE),
    },
    "PointWiseResponse": {
        "target_output_schema": (1, M("FeatureSchema"), REP),
        "target_scores": (2, M("TargetScore"), REP),
        "request_error": (3, S, ONE),
    },
    "TargetPair": {
        "first_target_index": (1, I32, ONE),
        "second_target_index": (2, I32, ONE),
        "feature_values": (3, B, REP),
    },
    "PairWiseRequest": {
        "model_config_id": (1, S, ONE),
        "tracking_id": (2, S, ONE),
        "context_features": (3, M("ContextFeature"), REP),
        "target_input_schema": (4, M("FeatureSchema"), REP),
        "pair_input_schema": (5, M("FeatureSchema"), REP),
        "pairs": (6, M("TargetPair"), REP),
        "targets": (7, M("Target"), REP),
        "tenant_id": (8, S, ONE),
    },
    "PairScore": {"error": (1, S, ONE), "output_values": (2, B, REP)},
    "PairWiseResponse": {
        "pair_scores": (1, M("PairScore"), REP),
        "target_scores": (2, M("TargetScore"), REP),
        "target_output_schema": (3, M("FeatureSchema"), REP),
        "pair_output_schema": (4, M("FeatureSchema"), REP),
        "request_error": (5, S, ONE),
    },
    "TargetSlate": {"target_indices": (1, I32, REP), "feature_values": (2, B, REP)},
    "SlateWiseRequest": {
        "model_config_id": (1, S, ONE),
        "tracking_id": (2, S, ONE),
        "context_features": (3, M("ContextFeature"), REP),
        "target_input_schema": (4, M("FeatureSchema"), REP),
        "slate_input_schema": (5, M("FeatureSchema"), REP),
        "slates": (6, M("TargetSlate"), REP),
        "targets": (7, M("Target"), REP),
        "tenant_id": (8, S, ONE),
    },
    "SlateScore": {"error": (1, S, ONE), "output_values": (2, B, REP)},
    "SlateWiseResponse": {
        "slate_scores": (1, M("SlateScore"), REP),
        "target_scores": (2, M("TargetScore"), REP),
        "target_output_schema": (3, M("FeatureSchema"), REP),
        "slate_output_schema": (4, M("FeatureSchema"), REP),
        "request_error": (5, S, ONE),
    },
}

INFERFLOW = {
    "InferflowRequestProto": {
        "entities": (1, M("InferflowRequestProto.Entity"), REP),
        "model_config_id": (2, S, ONE),
        "tracking_id": (3, S, ONE),
    },
    "InferflowRequestProto.Entity": {
        "entity": (1, S, ONE),
        "ids": (2, S, REP),
        "features": (3, M("InferflowRequestProto.Entity.Feature"), REP),
    },
    "InferflowRequestProto.Entity.Feature": {"name": (1, S, ONE), "ids_feature_value": (2, S, REP)},
    "InferflowResponseProto": {
        "component_data": (1, M("InferflowResponseProto.ComponentData"), REP),
        "error": (2, M("InferflowResponseProto.Error"), ONE),
    },
    "InferflowResponseProto.ComponentData": {"data": (1, S, REP)},
    "InferflowResponseProto.Error": {"message": (1, S, ONE)},
}

LOGGING = {
    "InferflowLog": {
        "user_id": (1, S, ONE),
        "tracking_id": (2, S, ONE),
        "model_config_id": (3, S, ONE),
        "entities": (4, S, REP),
        "features": (5, M("PerEntityFeatures"), REP),
        "metadata": (6, B, ONE),
        "parent_entity": (7, S, REP),
    },
    "PerEntityFeatures": {"encoded_features": (1, B, ONE)},
}

KAFKA = {
    "KafkaRequest": {
        "value": (1, M("KafkaEventValue"), ONE),
        "headers": (2, M("google.protobuf.Any"), ONE),
    },
    "KafkaEventValue": {
        "event_name": (1, S, ONE),
        "event_id": (2, S, ONE),
        "created_at": (3, I64, ONE),
        "properties": (4, M("google.protobuf.Any"), ONE),
        "user_id": (5, S, ONE),
    },
}

RETRIEVE = {
    "retrieve.Keys": {"cols": (1, S, REP)},
    "retrieve.FeatureGroup": {"label": (1, S, ONE), "feature_labels": (2, S, REP)},
    "retrieve.Query": {
        "entity_label": (1, S, ONE),
        "feature_groups": (2, M("retrieve.FeatureGroup"), REP),
        "keys_schema": (3, S, REP),
        "keys": (4, M("retrieve.Keys"), REP),
    },
    "retrieve.Feature": {"label": (1, S, ONE), "column_idx": (2, I32, ONE)},
    "retrieve.FeatureSchema": {
        "feature_group_label": (1, S, ONE),
        "features": (2, M("retrieve.Feature"), REP),
    },
    "retrieve.Row": {"keys": (1, S, REP), "columns": (2, B, REP)},
    "retrieve.Result": {
        "entity_label": (1, S, ONE),
        "keys_schema": (2, S, REP),
        "feature_schemas": (3, M("retrieve.FeatureSchema"), REP),
        "rows": (4, M("retrieve.Row"), REP),
    },
    # Not described in go-compatibility (RetrieveDecodedResult is unused by Inferflow); our own choice,
    # documented in proto/onfs/retrieve.proto. Pinned here so it does not drift silently.
    "retrieve.DecodedRow": {"keys": (1, S, REP), "columns": (2, S, REP)},
    "retrieve.DecodedResult": {
        "keys_schema": (1, S, REP),
        "feature_schemas": (2, M("retrieve.FeatureSchema"), REP),
        "rows": (3, M("retrieve.DecodedRow"), REP),
    },
}

NUMERIX = {
    "numerix.NumerixRequestProto": {"entity_score_data": (1, M("numerix.EntityScoreData"), ONE)},
    "numerix.EntityScoreData": {
        "schema": (1, S, REP),
        "entity_scores": (2, M("numerix.Score"), REP),
        "compute_id": (3, S, ONE),
        "data_type": (4, S, OPT),
    },
    "numerix.Score": {
        "string_data": (1, M("numerix.StringList"), "oneof:matrix_format"),
        "byte_data": (2, M("numerix.ByteList"), "oneof:matrix_format"),
    },
    "numerix.StringList": {"values": (1, S, REP)},
    "numerix.ByteList": {"values": (1, B, REP)},
    "numerix.NumerixResponseProto": {
        "computation_score_data": (1, M("numerix.ComputationScoreData"), "oneof:response"),
        "error": (2, M("numerix.Error"), "oneof:response"),
    },
    "numerix.ComputationScoreData": {
        "schema": (1, S, REP),
        "computation_scores": (2, M("numerix.Score"), REP),
    },
    "numerix.Error": {"message": (1, S, ONE)},
}

_TABLES = [
    (predict_pb2, PREDICT),
    (inferflow_pb2, INFERFLOW),
    (inferflow_logging_pb2, LOGGING),
    (kafka_request_pb2, KAFKA),
    (retrieve_pb2, RETRIEVE),
    (numerix_pb2, NUMERIX),
]


def _all_messages(file_desc):
    def walk(desc):
        yield desc
        for nested in desc.nested_types:
            yield from walk(nested)

    for top in file_desc.message_types_by_name.values():
        yield from walk(top)


def _find_message(module, full_name: str):
    for desc in _all_messages(module.DESCRIPTOR):
        if desc.full_name == full_name:
            return desc
    raise AssertionError(f"message {full_name} not in {module.DESCRIPTOR.name}")


_CASES = [(module, name, expected) for module, table in _TABLES for name, expected in table.items()]


# ---------------------------------------------------------------------------------------
# (a) method paths


def _method_paths(module) -> set[str]:
    return {
        f"/{svc.full_name}/{m.name}"
        for svc in module.DESCRIPTOR.services_by_name.values()
        for m in svc.methods
    }


def test_method_paths_exact():
    assert _method_paths(predict_pb2) == {
        "/Predict/InferPointWise",
        "/Predict/InferPairWise",
        "/Predict/InferSlateWise",
        "/PredictService/InferPointWise",
        "/PredictService/InferPairWise",
        "/PredictService/InferSlateWise",
    }
    assert _method_paths(inferflow_pb2) == {"/Inferflow/RetrieveModelScore"}
    assert _method_paths(retrieve_pb2) == {
        "/retrieve.FeatureService/RetrieveFeatures",
        "/retrieve.FeatureService/RetrieveDecodedResult",
    }
    assert _method_paths(numerix_pb2) == {"/numerix.Numerix/Compute"}
    assert _method_paths(inferflow_logging_pb2) == set()
    assert _method_paths(kafka_request_pb2) == set()


def test_method_io_types():
    svc = predict_pb2.DESCRIPTOR.services_by_name["Predict"]
    io = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in svc.methods}
    assert io == {
        "InferPointWise": ("PointWiseRequest", "PointWiseResponse"),
        "InferPairWise": ("PairWiseRequest", "PairWiseResponse"),
        "InferSlateWise": ("SlateWiseRequest", "SlateWiseResponse"),
    }
    alias = predict_pb2.DESCRIPTOR.services_by_name["PredictService"]
    assert {m.name: (m.input_type.full_name, m.output_type.full_name) for m in alias.methods} == io
    m = inferflow_pb2.DESCRIPTOR.services_by_name["Inferflow"].methods_by_name["RetrieveModelScore"]
    assert (m.input_type.full_name, m.output_type.full_name) == (
        "InferflowRequestProto",
        "InferflowResponseProto",
    )
    fs = retrieve_pb2.DESCRIPTOR.services_by_name["FeatureService"]
    assert fs.methods_by_name["RetrieveFeatures"].input_type.full_name == "retrieve.Query"
    assert fs.methods_by_name["RetrieveFeatures"].output_type.full_name == "retrieve.Result"
    assert fs.methods_by_name["RetrieveDecodedResult"].output_type.full_name == "retrieve.DecodedResult"
    nx = numerix_pb2.DESCRIPTOR.services_by_name["Numerix"].methods_by_name["Compute"]
    assert (nx.input_type.full_name, nx.output_type.full_name) == (
        "numerix.NumerixRequestProto",
        "numerix.NumerixResponseProto",
    )


def test_grpc_modules_use_the_same_paths():
    """The _grpc modules hard-code the paths; check them against the descriptors."""
    sources = {
        predict_pb2_grpc: _method_paths(predict_pb2),
        inferflow_pb2_grpc: _method_paths(inferflow_pb2),
        retrieve_pb2_grpc: _method_paths(retrieve_pb2),
        numerix_pb2_grpc: _method_paths(numerix_pb2),
    }
    for module, paths in sources.items():
        text = Path(module.__file__).read_text()
        for path in paths:
            assert f"'{path}'" in text, (module.__name__, path)
    for name in ("PredictStub", "PredictServicer", "add_PredictServicer_to_server", "PredictServiceStub"):
        assert hasattr(predict_pb2_grpc, name)
    assert hasattr(inferflow_pb2_grpc, "InferflowStub")
    assert hasattr(retrieve_pb2_grpc, "FeatureServiceStub")
    assert hasattr(numerix_pb2_grpc, "NumerixStub")


def test_package_less_files():
    for module in (predict_pb2, inferflow_pb2, inferflow_logging_pb2, kafka_request_pb2):
        assert module.DESCRIPTOR.package == ""
    assert retrieve_pb2.DESCRIPTOR.package == "retrieve"
    assert numerix_pb2.DESCRIPTOR.package == "numerix"


# ---------------------------------------------------------------------------------------
# (b) field tables


@pytest.mark.parametrize(
    ("module", "message", "expected"),
    _CASES,
    ids=[f"{m.DESCRIPTOR.name}:{n}" for m, n, _ in _CASES],
)
def test_message_fields(module, message, expected):
    assert _fields(_find_message(module, message)) == expected


@pytest.mark.parametrize(("module", "table"), _TABLES, ids=[m.DESCRIPTOR.name for m, _ in _TABLES])
def test_no_unlisted_messages(module, table):
    assert {d.full_name for d in _all_messages(module.DESCRIPTOR)} == set(table)


def test_field_counts_from_reference():
    counts = {name: len(fields) for name, fields in PREDICT.items()}
    assert counts == {
        "PointWiseRequest": 6,
        "PointWiseResponse": 3,
        "PairWiseRequest": 8,
        "PairWiseResponse": 5,
        "SlateWiseRequest": 8,
        "SlateWiseResponse": 5,
        "FeatureSchema": 3,
        "ContextFeature": 4,
        "Target": 2,
        "TargetPair": 3,
        "TargetSlate": 2,
        "TargetScore": 2,
        "PairScore": 2,
        "SlateScore": 2,
    }


def test_target_indices_packed():
    fd = predict_pb2.TargetSlate.DESCRIPTOR.fields_by_name["target_indices"]
    assert predict_pb2.TargetSlate(target_indices=[1, 300]).SerializeToString() == b"\n\x03\x01\xac\x02"
    if hasattr(fd, "is_packed"):
        assert fd.is_packed


# ---------------------------------------------------------------------------------------
# (c) DataType enum

DATA_TYPES = [
    "DataTypeUnknown",
    "DataTypeFP8E5M2",
    "DataTypeFP8E4M3",
    "DataTypeFP16",
    "DataTypeFP32",
    "DataTypeFP64",
    "DataTypeInt8",
    "DataTypeInt16",
    "DataTypeInt32",
    "DataTypeInt64",
    "DataTypeUint8",
    "DataTypeUint16",
    "DataTypeUint32",
    "DataTypeUint64",
    "DataTypeString",
    "DataTypeBool",
    "DataTypeFP8E5M2Vector",
    "DataTypeFP8E4M3Vector",
    "DataTypeFP16Vector",
    "DataTypeFP32Vector",
    "DataTypeFP64Vector",
    "DataTypeInt8Vector",
    "DataTypeInt16Vector",
    "DataTypeInt32Vector",
    "DataTypeInt64Vector",
    "DataTypeUint8Vector",
    "DataTypeUint16Vector",
    "DataTypeUint32Vector",
    "DataTypeUint64Vector",
    "DataTypeStringVector",
    "DataTypeBoolVector",
]


def test_data_type_enum():
    enum = predict_pb2.DESCRIPTOR.enum_types_by_name["DataType"]
    assert enum.full_name == "DataType"
    assert len(enum.values) == 31
    assert [(v.name, v.number) for v in enum.values] == [(n, i) for i, n in enumerate(DATA_TYPES)]
    assert predict_pb2.DataType.Name(4) == "DataTypeFP32"
    assert predict_pb2.DataType.Value("DataTypeBoolVector") == 30
    # Values are exported at module level too (package-less enum).
    assert predict_pb2.DataTypeStringVector == 29


# ---------------------------------------------------------------------------------------
# (d) Any packing of the inference log


def test_any_type_url_of_inferflow_log():
    log = inferflow_logging_pb2.InferflowLog(
        tracking_id="t-1",
        model_config_id="m",
        entities=["111", "222"],
        features=[inferflow_logging_pb2.PerEntityFeatures(encoded_features=b"\x01\x02")],
        metadata=b"\x40",
    )
    envelope = kafka_request_pb2.KafkaRequest(
        value=kafka_request_pb2.KafkaEventValue(
            event_name="inferflow_inference_logs", event_id="t-1", created_at=1_700_000_000
        )
    )
    envelope.value.properties.Pack(log)
    assert envelope.value.properties.type_url == "type.googleapis.com/InferflowLog"
    assert not envelope.HasField("headers")

    decoded = kafka_request_pb2.KafkaRequest.FromString(envelope.SerializeToString())
    assert decoded.value.properties.Is(inferflow_logging_pb2.InferflowLog.DESCRIPTOR)
    out = inferflow_logging_pb2.InferflowLog()
    assert decoded.value.properties.Unpack(out)
    assert out == log

    standalone = any_pb2.Any()
    standalone.Pack(log)
    assert standalone.type_url == "type.googleapis.com/InferflowLog"


# ---------------------------------------------------------------------------------------
# (e) hand-encoded wire bytes

# PointWiseRequest written byte by byte from the field numbers (tag = number << 3 | wire type).
POINTWISE_WIRE = (
    b"\x0a\x02m1"  # 1 model_config_id = "m1"
    b"\x12\x01t"  # 2 tracking_id = "t"
    # 3 context_features: ContextFeature{1 name "u", 2 value b"\x01\x02", 3 data_type = 4 (FP32)}
    b"\x1a\x09"
    b"\x0a\x01u"
    b"\x12\x02\x01\x02"
    b"\x18\x04"
    # 4 target_input_schema: FeatureSchema{1 name "f", 2 data_type = 14 (String), 3 vector_dim = 3}
    b"\x22\x07"
    b"\x0a\x01f"
    b"\x10\x0e"
    b"\x18\x03"
    # 5 targets: Target{1 id "abc", 2 feature_values ["x", ""]}
    b"\x2a\x0a"
    b"\x0a\x03abc"
    b"\x12\x01x"
    b"\x12\x00"
    # 5 targets: Target{1 id "d"}
    b"\x2a\x03"
    b"\x0a\x01d"
    b"\x32\x02tn"  # 6 tenant_id = "tn"
)


def test_hand_encoded_pointwise_request():
    req = predict_pb2.PointWiseRequest.FromString(POINTWISE_WIRE)
    assert req.model_config_id == "m1"
    assert req.tracking_id == "t"
    assert req.tenant_id == "tn"
    assert len(req.context_features) == 1
    cf = req.context_features[0]
    assert (cf.name, cf.value, cf.data_type, cf.vector_dim) == ("u", b"\x01\x02", predict_pb2.DataTypeFP32, 0)
    assert [(s.name, s.data_type, s.vector_dim) for s in req.target_input_schema] == [
        ("f", predict_pb2.DataTypeString, 3)
    ]
    assert [(t.id, list(t.feature_values)) for t in req.targets] == [("abc", [b"x", b""]), ("d", [])]
    # proto serialisers write fields in number order: the encoding round-trips byte for byte.
    assert req.SerializeToString() == POINTWISE_WIRE


def test_hand_encoded_pointwise_response():
    wire = (
        b"\x0a\x09"
        b"\x0a\x05score"
        b"\x10\x04"  # 1 target_output_schema: {name "score", FP32}
        b"\x12\x06"
        b"\x12\x04\x00\x00\x80\x3f"  # 2 target_scores: {2 output_values [1.0f LE]}
    )
    resp = predict_pb2.PointWiseResponse.FromString(wire)
    assert resp.target_output_schema[0].name == "score"
    assert resp.target_output_schema[0].data_type == predict_pb2.DataTypeFP32
    assert list(resp.target_scores[0].output_values) == [b"\x00\x00\x80\x3f"]
    assert resp.request_error == ""
    assert resp.SerializeToString() == wire


def test_unpacked_slate_indices_are_accepted():
    # Older/other encoders may send repeated int32 unpacked; parsers must accept both.
    slate = predict_pb2.TargetSlate.FromString(b"\x08\x01\x08\xac\x02\x12\x01z")
    assert list(slate.target_indices) == [1, 300]
    assert list(slate.feature_values) == [b"z"]


def test_hand_encoded_legacy_request():
    wire = (
        # 1 entities: Entity{1 entity "catalog_id", 2 ids ["111"], 3 features [{1 name "p", 2 ["9"]}]}
        b"\x0a\x19"
        b"\x0a\x0acatalog_id"
        b"\x12\x03111"
        b"\x1a\x06"
        b"\x0a\x01p"
        b"\x12\x019"
        b"\x12\x01m"  # 2 model_config_id
        b"\x1a\x02tr"  # 3 tracking_id
    )
    req = inferflow_pb2.InferflowRequestProto.FromString(wire)
    assert req.model_config_id == "m"
    assert req.tracking_id == "tr"
    ent = req.entities[0]
    assert (ent.entity, list(ent.ids)) == ("catalog_id", ["111"])
    assert (ent.features[0].name, list(ent.features[0].ids_feature_value)) == ("p", ["9"])
    assert req.SerializeToString() == wire


def test_numerix_optional_and_oneof():
    data = numerix_pb2.EntityScoreData(compute_id="c")
    assert not data.HasField("data_type")
    data.data_type = "fp32"
    assert data.HasField("data_type")
    score = numerix_pb2.Score(byte_data=numerix_pb2.ByteList(values=[b"id", b"\x00\x00\x80\x3f"]))
    assert score.WhichOneof("matrix_format") == "byte_data"
    # Score{2 byte_data: ByteList{1 values ["a"]}}
    assert score.FromString(b"\x12\x03\x0a\x01a").byte_data.values == [b"a"]
    resp = numerix_pb2.NumerixResponseProto(error=numerix_pb2.Error(message="boom"))
    assert resp.WhichOneof("response") == "error"


def test_retrieve_query_wire():
    q = retrieve_pb2.Query(
        entity_label="catalog",
        feature_groups=[retrieve_pb2.FeatureGroup(label="g", feature_labels=["f@fp16"])],
        keys_schema=["catalog_id"],
        keys=[retrieve_pb2.Keys(cols=["7"])],
    )
    expected = b"\x0a\x07catalog\x12\x0b\x0a\x01g\x12\x06f@fp16\x1a\x0acatalog_id\x22\x03\x0a\x017"
    assert q.SerializeToString() == expected
