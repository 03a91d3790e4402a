"""The JSON form of the four APIs (HTTP): a JSON body -> the API's protobuf request bytes, and the
response bytes -> decoded JSON. The bytes in between go through the same handler as gRPC.

Request (the shape ``inferflow predict --request`` reads; the model id is in the URL)::

    {"targets": ["954", "614"], "context": {"user_id": "42"}, "features": {"price": [3.5, 4.0]},
     "types": {"price": "fp32"}, "pairs": [[0, 1]], "pair_features": {...}, "tracking_id": "t-1"}

``features`` hold one value per target (pair, slate); a list value is a vector. A feature's type is
named in ``types`` (any spelling the core accepts) or follows its JSON values (number -> FP64 / INT64,
string -> STRING, true/false -> BOOL, list -> vector). Values are encoded with the core's codec
(``inferflow_core.dtypes``, through the client's encoders) in the server's
``INFERFLOW_REQUEST_VALUE_ENCODING``, so the server decodes them exactly as it decodes gRPC requests.
RetrieveModelScore: ``{"entities": {"catalog_id": ["7", "8"]}, "features": {"price": ["3", ""]}}``.

Response: output columns typed by the response schema, as the client's ``Table`` decodes them:
``{"model_id", "target_output_schema", "targets": [{column: value}], "target_errors", "request_error"}``
(+ ``pair_*`` / ``slate_*`` for the grouped APIs); non-finite floats are the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"`` (protobuf's JSON mapping). The text is ASCII (non-ASCII characters
escaped), so a string cell that is not valid UTF-8 still makes valid JSON. Malformed JSON or a value of
the wrong JSON type is INVALID_ARGUMENT (HTTP 400) naming the field.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .._proto import inferflow_pb2, predict_pb2
from ..client import _encode as enc
from ..client._result import Table, _python
from ..components.base import RunContext
from ..dtypes import DataType, cells_to_array, decode_array
from ..errors import RequestError, clip, sanitize
from ..wireformat import length_delimited
from .adapters import Decoded
from .budget import Budget
from .responses import Part, ResponsePlan, grouped_parts, pointwise_parts
from .wire import Fields, Joined

P = predict_pb2
COMMON = {"targets", "features", "context", "types", "tracking_id", "tenant_id"}
KEYS = {
    "pointwise": COMMON,
    "pairwise": COMMON | {"pairs", "pair_features"},
    "slatewise": COMMON | {"slates", "slate_features"},
    "retrieve_model_score": {"entities", "features", "tracking_id"},
}
_SCALARS = (str, int, float, bool, type(None))


def load(body: bytes, api: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RequestError(f"request: not valid JSON ({sanitize(str(exc), 200)})") from None
    if not isinstance(doc, dict):
        raise RequestError(f"request: a JSON object is required, not {type(doc).__name__}")
    unknown = sorted(set(doc) - KEYS[api])
    if unknown:
        raise RequestError(f"request: unknown field(s) {clip(unknown)}; known: {sorted(KEYS[api])}")
    return doc


def _text(doc: dict, key: str) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise RequestError(f"{key}: a string is required")
    return value


def _mapping(doc: dict, key: str, budget: Budget, limit: str) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"{key}: an object of name -> values is required")
    budget.check(key, len(value), limit)
    return value


def _cell(value: Any, where: str, vector_ok: bool = True) -> None:
    if isinstance(value, _SCALARS):
        return
    if vector_ok and isinstance(value, list):
        for i, item in enumerate(value):
            _cell(item, f"{where}[{i}]", vector_ok=False)
        return
    raise RequestError(f"{where}: a number, string, boolean, null or a list of them is required")


def _columns(doc: dict, key: str, rows: int, budget: Budget) -> dict[str, Any] | None:
    cols = _mapping(doc, key, budget, "max_features_per_target")
    for name, values in cols.items():
        if not isinstance(values, list):
            raise RequestError(f"{key}.{clip(name)}: a list of one value per row is required")
        if len(values) != rows:
            raise RequestError(f"{key}.{clip(name)} has {len(values)} values for {rows} rows")
        budget.charge(f"{key}.{clip(name)}", len(values))
        for i, value in enumerate(values):
            _cell(value, f"{key}.{clip(name)}[{i}]")
    return cols or None


def _ids(doc: dict, budget: Budget) -> list[str]:
    ids = doc.get("targets", [])
    if not isinstance(ids, list):
        raise RequestError("targets: a list of target ids is required")
    budget.check("targets", len(ids), "max_targets")
    if all(type(v) is str for v in ids):
        return ids
    out = []
    for i, value in enumerate(ids):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RequestError(f"targets[{i}]: a target id is a string or an integer")
        out.append(str(value))
    return out


def _targets(field: int, ids: list[str], rows: list[list[bytes]]) -> bytes:
    """The repeated ``Target`` field written directly (a message object per target costs ~1 us each)."""
    if not any(rows):
        return b"".join([length_delimited(field, length_delimited(1, i.encode())) for i in ids])
    return b"".join(
        length_delimited(
            field, length_delimited(1, i.encode()) + b"".join([length_delimited(2, v) for v in row])
        )
        for i, row in zip(ids, rows, strict=True)
    )


def _context(context: dict[str, Any], types: dict[str, DataType], encoding: str) -> list[Any]:
    out = []
    for name, value in context.items():
        _cell(value, f"context.{clip(name)}")
        if isinstance(value, str) and types.get(name, DataType.STRING) is DataType.STRING:
            cells = [(name, DataType.STRING, value.encode("utf-8", "surrogateescape"))]  # STRING is UTF-8
        else:
            cells = _encode(f"context.{clip(name)}", enc.encode_context, {name: value}, types, encoding)
        out += [P.ContextFeature(name=n, value=v, data_type=d.wire_name) for n, d, v in cells]
    return out


def _groups(doc: dict, key: str, budget: Budget, limit: str, size: int | None) -> list[list[int]]:
    groups = doc.get(key, [])
    if not isinstance(groups, list):
        raise RequestError(f"{key}: a list of lists of target indices is required")
    budget.check(key, len(groups), limit)
    for i, group in enumerate(groups):
        ok = isinstance(group, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31 for v in group
        )
        if not ok or (size is not None and len(group) != size):
            what = "[first, second]" if size == 2 else "a list of"
            raise RequestError(f"{key}[{i}]: {what} target indices (32-bit integers) is required")
    return groups


def _encode(what: str, fn: Any, *args: Any) -> Any:
    """The client's encoders raise ValueError / TypeError for values that do not fit: 400, never 500."""
    try:
        return fn(*args)
    except (ValueError, TypeError, OverflowError) as exc:
        raise RequestError(f"{what}: {sanitize(str(exc), 300)}") from None


def _schema(schema: list[tuple[str, DataType]]) -> list[Any]:
    return [P.FeatureSchema(name=n, data_type=d.wire_name) for n, d in schema]


def predict_request(api: str, model_id: str, doc: dict, encoding: str, budget: Budget) -> bytes:
    """A Predict request's protobuf bytes from its JSON form (checked field by field)."""
    ids = _ids(doc, budget)
    types = _encode("types", enc.check_types, _mapping(doc, "types", budget, "max_features_per_target"))
    context = _context(_mapping(doc, "context", budget, "max_context_features"), types, encoding)
    features = _columns(doc, "features", len(ids), budget)
    schema, rows = _encode("features", enc.encode_features, features, len(ids), types, encoding)
    body: dict[str, Any] = {
        "model_config_id": model_id,
        "tracking_id": _text(doc, "tracking_id"),
        "tenant_id": _text(doc, "tenant_id"),
        "context_features": context,
        "target_input_schema": _schema(schema),
    }
    if api == "pointwise":
        return P.PointWiseRequest(**body).SerializeToString() + _targets(5, ids, rows)
    kind = "pair" if api == "pairwise" else "slate"
    groups = _groups(doc, f"{kind}s", budget, f"max_{kind}s", 2 if kind == "pair" else None)
    group_features = _columns(doc, f"{kind}_features", len(groups), budget)
    gschema, grows = _encode(
        f"{kind}_features", enc.encode_features, group_features, len(groups), types, encoding
    )
    body[f"{kind}_input_schema"] = _schema(gschema)
    if kind == "pair":
        body["pairs"] = [
            P.TargetPair(first_target_index=a, second_target_index=b, feature_values=r)
            for (a, b), r in zip(groups, grows, strict=True)
        ]
        return P.PairWiseRequest(**body).SerializeToString() + _targets(7, ids, rows)
    body["slates"] = [
        P.TargetSlate(target_indices=s, feature_values=r) for s, r in zip(groups, grows, strict=True)
    ]
    return P.SlateWiseRequest(**body).SerializeToString() + _targets(7, ids, rows)


def _texts(value: Any, where: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise RequestError(f"{where}[{i}]: a string or a number is required")
    return [str(v) for v in values]


def retrieve_request(model_id: str, doc: dict, budget: Budget) -> bytes:
    entity = inferflow_pb2.InferflowRequestProto.Entity
    entities = _mapping(doc, "entities", budget, "max_context_features")
    features = _mapping(doc, "features", budget, "max_features_per_target")
    feats = [
        entity.Feature(name=name, ids_feature_value=_texts(values, f"features.{clip(name)}"))
        for name, values in features.items()
    ]
    out = [
        entity(entity=name, ids=_texts(ids, f"entities.{clip(name)}"), features=feats if k == 0 else [])
        for k, (name, ids) in enumerate(entities.items())
    ]
    req = inferflow_pb2.InferflowRequestProto(
        model_config_id=model_id, entities=out, tracking_id=_text(doc, "tracking_id")
    )
    return req.SerializeToString()


def request_bytes(api: str, model_id: str, body: bytes, encoding: str, budget: Budget) -> bytes:
    """The protobuf request of ``api`` from a JSON body (RequestError when it is not a valid request)."""
    doc = load(body, api)
    try:
        if api == "retrieve_model_score":
            return retrieve_request(model_id, doc, budget)
        return predict_request(api, model_id, doc, encoding, budget)
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a lone surrogate in a string field
        raise RequestError(f"request: {sanitize(str(exc), 300)}") from None


# -- responses ----------------------------------------------------------------------------------------
_quote = json.encoder.encode_basestring_ascii  # C: "..." with \uXXXX escapes


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _tokens(values: np.ndarray, valid: np.ndarray, dtype: DataType) -> list[str]:
    """One column's cells as JSON text (the values the client's ``to_dicts`` gives, null = missing)."""
    if dtype is DataType.STRING:
        out = list(map(_quote, values.tolist()))
    else:
        py = _python(values, dtype)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            out = [json.dumps(_finite(v)) for v in py]
        elif values.ndim == 2 or values.dtype == object:
            out = [json.dumps(v, separators=(",", ":")) for v in py]
        elif values.dtype.kind == "b":
            out = ["true" if v else "false" for v in py]
        else:  # ints and finite floats: Python's repr is their JSON text
            out = list(map(repr, py))
    if not valid.all():
        out = [t if ok else "null" for t, ok in zip(out, valid.tolist(), strict=True)]
    return out


def _rows(table: Table) -> str:
    """The rows as a JSON array of objects, written column by column (no dict per row)."""
    if not table.schema:
        return "[" + ",".join(["{}"] * len(table.errors)) + "]"
    cols = [_tokens(table.values[n], table.valid[n], d) for n, d in table.schema]
    template = "{" + ",".join(_quote(n).replace("%", "%%") + ":%s" for n in table.names) + "}"
    return "[" + ",".join([template % row for row in zip(*cols, strict=True)]) + "]"


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _emit(out: list[str], kind: str, table: Table) -> None:
    schema = [{"name": n, "data_type": (d or DataType.STRING).wire_name} for n, d in table.schema]
    out.append(f'"{kind}_output_schema":{_dump(schema)}')
    out.append(f'"{kind}s":{_rows(table)}')
    out.append(f'"{kind}_errors":{_dump(table.errors)}')


def _table(part: Part) -> Table:
    """A response part as the client decodes its wire bytes, read from the cells the bytes are made of."""
    values: dict[str, np.ndarray] = {}
    valid: dict[str, np.ndarray] = {}
    for (name, dtype), cells in zip(part.schema, part.cols, strict=True):
        if isinstance(cells, np.ndarray):  # a fixed-width block: every cell present
            dim = cells.shape[1] // dtype.itemsize if dtype.is_vector else None
            values[name] = decode_array(cells.tobytes(), dtype, dim)
            valid[name] = np.ones(part.rows, dtype=bool)
        else:
            plain = cells.cells() if isinstance(cells, Fields | Joined) else cells
            values[name], valid[name] = cells_to_array(plain, dtype)
    errors = [part.errors.get(r, "") for r in range(part.rows)] if part.errors else [""] * part.rows
    return Table(part.schema, values, valid, errors)


def predict_json(
    api: str, model_id: str, plan: ResponsePlan, ctx: RunContext, decoded: Decoded, grouped: bool
) -> bytes:
    """The JSON answer of a Predict API from the same parts its wire bytes are built from (cheaper than
    building the bytes and decoding them again; the tests check both give the same)."""
    parts, error = (grouped_parts if grouped else pointwise_parts)(plan, ctx, decoded)
    out = [f'"model_id":{_dump(model_id)}']
    kinds = [api[:-4], "target"] if grouped else ["target"]
    for k, kind in enumerate(kinds):
        _emit(out, kind, _table(parts[k]) if k < len(parts) else Table([], {}, {}, []))
    out.append(f'"request_error":{_dump(error)}')
    return ("{" + ",".join(out) + "}").encode()


def retrieve_json(model_id: str, raw: bytes) -> bytes:
    """The decoded JSON of a RetrieveModelScore response's bytes (text columns)."""
    legacy = inferflow_pb2.InferflowResponseProto.FromString(raw)
    rows = [list(r.data) for r in legacy.component_data]
    columns = rows[0] if rows else []
    doc = {
        "model_id": model_id,
        "columns": columns,
        "rows": [dict(zip(columns, r, strict=False)) for r in rows[1:]],
        "request_error": legacy.error.message,
    }
    return json.dumps(doc, separators=(",", ":")).encode()
