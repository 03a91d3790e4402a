"""The OpenAPI 3.1 document of the HTTP API (``GET /openapi.json`` on the HTTP side port)."""

from __future__ import annotations

from typing import Any

from ..dtypes import DataType

_REF = "#/components/schemas/"
_VALUE = {"description": "a number, string, boolean or null; a list of them is a vector"}
_COLUMNS = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": _VALUE},
    "description": "feature name -> one value per row",
}
_INDICES = {"type": "array", "items": {"type": "integer", "format": "int32"}}


def _request(extra: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {
        "targets": {"type": "array", "items": {"type": ["string", "integer"]}, "description": "target ids"},
        "features": {**_COLUMNS, "description": "target features: name -> one value per target"},
        "context": {"type": "object", "additionalProperties": _VALUE, "description": "one value each"},
        "types": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "feature name -> data type (fp32, int64, fp32_vector, DataTypeFP32 ...); "
            "without it a feature's type follows its JSON values",
        },
        "tracking_id": {"type": "string"},
        "tenant_id": {"type": "string"},
        **extra,
    }
    return {"type": "object", "additionalProperties": False, "required": ["targets"], "properties": props}


def _scores(kind: str) -> dict[str, Any]:
    return {
        f"{kind}_output_schema": {"type": "array", "items": {"$ref": _REF + "FeatureSchema"}},
        f"{kind}s": {
            "type": "array",
            "items": {"type": "object", "description": "column -> typed value (null = missing)"},
        },
        f"{kind}_errors": {"type": "array", "items": {"type": "string"}, "description": "'' = none"},
    }


def _response(*kinds: str) -> dict[str, Any]:
    props: dict[str, Any] = {"model_id": {"type": "string"}}
    for kind in kinds:
        props.update(_scores(kind))
    props["request_error"] = {"type": "string"}
    return {"type": "object", "properties": props}


_SCHEMAS: dict[str, Any] = {
    "FeatureSchema": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "data_type": {"type": "string", "enum": [d.wire_name for d in DataType]},
        },
    },
    "Error": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "the gRPC status name (INVALID_ARGUMENT ...)"},
            "message": {"type": "string"},
        },
    },
    "PointWiseRequest": _request({}),
    "PairWiseRequest": _request(
        {
            "pairs": {"type": "array", "items": {**_INDICES, "minItems": 2, "maxItems": 2}},
            "pair_features": {**_COLUMNS, "description": "name -> one value per pair"},
        }
    ),
    "SlateWiseRequest": _request(
        {
            "slates": {"type": "array", "items": _INDICES},
            "slate_features": {**_COLUMNS, "description": "name -> one value per slate"},
        }
    ),
    "RetrieveRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "entities": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": "entity -> ids (the first entity's ids are the rows; one id broadcasts)",
            },
            "features": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": "feature -> one text value per row",
            },
            "tracking_id": {"type": "string"},
        },
    },
    "PointWiseResponse": _response("target"),
    "PairWiseResponse": _response("pair", "target"),
    "SlateWiseResponse": _response("slate", "target"),
    "RetrieveResponse": {
        "type": "object",
        "properties": {
            "model_id": {"type": "string"},
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "object"}, "description": "column -> text"},
            "request_error": {"type": "string"},
        },
    },
}

_APIS = (
    ("pointwise", "PointWise", "Predict/InferPointWise"),
    ("pairwise", "PairWise", "Predict/InferPairWise"),
    ("slatewise", "SlateWise", "Predict/InferSlateWise"),
    ("retrieve", "Retrieve", "Inferflow/RetrieveModelScore"),
)
_HEADERS = [
    {
        "name": "X-Request-Timeout-Ms",
        "in": "header",
        "schema": {"type": "number"},
        "description": "deadline in ms (default INFERFLOW_DEFAULT_DEADLINE_MS)",
    },
    {
        "name": "grpc-timeout",
        "in": "header",
        "schema": {"type": "string"},
        "description": "the deadline in gRPC's format (250m, 2S ...)",
    },
    {"name": "user-id", "in": "header", "schema": {"type": "string"}, "description": "the caller's user"},
]
_ERRORS = {
    str(status): {"description": text, "content": {"application/json": {"schema": {"$ref": _REF + "Error"}}}}
    for status, text in (
        (400, "INVALID_ARGUMENT: malformed request, unknown model, over a budget"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (413, "body over INFERFLOW_MAX_MESSAGE_BYTES"),
        (415, "Content-Type is neither application/json nor application/x-protobuf"),
        (429, "RESOURCE_EXHAUSTED: overloaded"),
        (503, "UNAVAILABLE: no slot in time"),
        (504, "DEADLINE_EXCEEDED"),
    )
}


def _operation(kind: str, name: str, grpc_method: str) -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    request_name, response_name = f"{name}Request", f"{name}Response"
    return {
        "post": {
            "operationId": kind,
            "summary": f"{grpc_method} over HTTP",
            "description": f"application/x-protobuf: the bytes of gRPC {grpc_method} (answered with the same "
            "bytes); application/json: the JSON form (answered with decoded JSON).",
            "parameters": [
                {"name": "model_config_id", "in": "path", "required": True, "schema": {"type": "string"}},
                *_HEADERS,
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": _REF + request_name}},
                    "application/x-protobuf": binary,
                },
            },
            "responses": {
                "200": {
                    "description": "scored",
                    "content": {
                        "application/json": {"schema": {"$ref": _REF + response_name}},
                        "application/x-protobuf": binary,
                    },
                },
                **_ERRORS,
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    paths = {
        f"/v1/models/{{model_config_id}}/{kind}": _operation(kind, name, method)
        for kind, name, method in _APIS
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Inferflow HTTP API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
