"""Matrix columns <-> model tensors, with numpy (go-compatibility §4.4, 4.5 and the payload rules of 5.3).

Inputs: each feature column is read once as the input's element type (vector columns as the vector type,
runs of scalar columns with one ``read_filled_many``), missing cells take the 4.5 defaults, the parts are
joined side by side and reshaped to ``[rows] + shape``
(one ``-1`` is resolved from the per-row element count). BYTES inputs are object arrays of text, sent as
uint32-LE length-prefixed elements. Outputs: raw bytes are read with ``np.frombuffer`` for every KServe
datatype and cut into the configured per-row slices.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from inferflow_core.api import ComponentError, ComponentMatrix, DataType, codecs

from .config import InputSpec, OutputSpec

BYTES_DEFAULT = "0.0"  # go-compatibility §4.5: a missing BYTES input cell is the 3-byte text 0.0


@dataclass(frozen=True)
class Tensor:
    """One named tensor: ``array`` is shaped ``[batch, ...]``; object dtype (str/bytes) for BYTES."""

    name: str
    datatype: str  # KServe v2 datatype
    array: np.ndarray


# ------------------------------------------------------------------------------------------- inputs
def _feature_part(matrix: ComponentMatrix, feature: str, spec: InputSpec) -> np.ndarray | None:
    """One feature column as ``(rows, k)`` of the input element type; None when the column is absent."""
    if not matrix.has(feature):
        return None
    rows = matrix.rows
    if spec.dtype is DataType.STRING:
        values, valid = matrix.read(feature, DataType.STRING)
        out = values.copy() if not valid.all() else values
        out[~valid] = BYTES_DEFAULT
        return out.reshape(rows, -1)
    col = matrix.column(feature)
    as_vector = col.dtype.is_vector or (
        col.dtype is DataType.STRING and len(spec.features) == 1 and spec.known_elements > 1
    )
    values = matrix.read_filled(feature, spec.dtype.vector if as_vector else spec.dtype)
    if values.ndim == 2 and values.shape[1] == 0:  # a vector column with no cell at all
        return None
    return values if values.ndim == 1 else values.reshape(rows, -1)


def _default_part(rows: int, spec: InputSpec) -> np.ndarray:
    width = spec.known_elements if len(spec.features) == 1 else 1
    if spec.dtype is DataType.STRING:
        return np.full((rows, width), BYTES_DEFAULT, dtype=object)
    return np.zeros((rows, width) if width > 1 else rows, dtype=spec.dtype.numpy_dtype)


def _ready_values(matrix: ComponentMatrix, feature: str, spec: InputSpec) -> np.ndarray | None:
    """Fast path: the column already holds every cell in the input's element type — use it as is."""
    if not matrix.has(feature):
        return None
    col = matrix.column(feature)
    values = col.values
    if values is None or (col.dtype is not spec.dtype and col.dtype is not spec.vector):
        return None
    return values if np.count_nonzero(col.valid) == matrix.rows else None


def assemble_input(matrix: ComponentMatrix, spec: InputSpec) -> Tensor:
    """The whole matrix's tensor for ``spec``: shape ``[rows] + shape`` with ``-1`` resolved.

    When every feature is a column of a block the matrix holds (written together, e.g. by feature
    components), the blocks' views are read at once (``read_blocks``). Otherwise each run of consecutive
    scalar feature columns is read with one ``read_filled_many`` (the same views when the run's columns
    are block columns); vector features are read one by one; the parts are joined with one
    ``np.concatenate``.
    """
    rows = matrix.rows
    if spec.dtype is DataType.STRING or len(spec.features) == 1:
        return _assemble_per_feature(matrix, spec)
    blocks = matrix.read_blocks(spec.features, spec.dtype, filled=True)
    if blocks is not None:
        flat = np.ascontiguousarray(blocks[0])
        return Tensor(spec.name, spec.kserve, flat.reshape((rows, *_fix_shape(spec, flat.shape[1]))))
    parts: list[np.ndarray] = []
    run: list[str] = []
    for feature in spec.features:
        col = matrix.column(feature) if matrix.has(feature) else None
        if col is not None and not col.dtype.is_vector:
            run.append(feature)
            continue
        if run:
            parts.append(matrix.read_filled_many(run, spec.dtype))
            run = []
        part = _feature_part(matrix, feature, spec) if col is not None else None
        if part is None:
            part = _default_part(rows, spec)
        parts.append(part if part.ndim == 2 else part[:, None])
    if run:
        parts.append(matrix.read_filled_many(run, spec.dtype))
    flat = np.ascontiguousarray(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1))
    shape = _fix_shape(spec, flat.shape[1])
    return Tensor(spec.name, spec.kserve, flat.reshape((rows, *shape)))


def _assemble_per_feature(matrix: ComponentMatrix, spec: InputSpec) -> Tensor:
    """BYTES inputs and single-feature inputs: one part per feature (a STRING column may hold vectors)."""
    rows = matrix.rows
    parts: list[np.ndarray] = []
    for feature in spec.features:
        part = None if spec.dtype is DataType.STRING else _ready_values(matrix, feature, spec)
        if part is None:
            part = _feature_part(matrix, feature, spec)
        parts.append(part if part is not None else _default_part(rows, spec))
    if len(parts) == 1:
        flat = parts[0] if parts[0].ndim == 2 else parts[0][:, None]
    else:
        flat = np.concatenate([p.reshape(rows, -1) for p in parts], axis=1)
    shape = _fix_shape(spec, flat.shape[1])
    return Tensor(spec.name, spec.kserve, flat.reshape((rows, *shape)))


def _fix_shape(spec: InputSpec, per_row: int) -> tuple[int, ...]:
    known = spec.known_elements
    if -1 in spec.shape:
        if per_row % known:
            raise ComponentError(
                f"input {spec.name!r}: {per_row} values per row do not fit shape {list(spec.shape)}"
            )
        return tuple(per_row // known if d == -1 else d for d in spec.shape)
    if per_row != known:
        raise ComponentError(
            f"input {spec.name!r}: features {list(spec.features)} give {per_row} values per row, "
            f"shape {list(spec.shape)} needs {known}"
        )
    return spec.shape


def to_raw(tensor: Tensor) -> bytes:
    """KServe ``raw_input_contents``: little-endian elements, BYTES as uint32-LE length + bytes."""
    if tensor.datatype != "BYTES":
        return np.ascontiguousarray(tensor.array).tobytes()
    encoded = [
        v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogateescape") for v in tensor.array.ravel()
    ]
    lengths = np.fromiter(map(len, encoded), dtype="<u4", count=len(encoded)).tobytes()
    prefixes = [lengths[i : i + 4] for i in range(0, len(lengths), 4)]
    return b"".join(b for pair in zip(prefixes, encoded, strict=True) for b in pair)


# ------------------------------------------------------------------------------------------- outputs
def decode_bytes_elements(raw: bytes) -> np.ndarray:
    """uint32-LE length-prefixed elements -> 1-D object array of str."""
    out: list[str] = []
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise ComponentError("BYTES output is truncated inside a length prefix")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > end:
            raise ComponentError("BYTES output element overruns the buffer")
        out.append(raw[pos : pos + n].decode("utf-8", "surrogateescape"))
        pos += n
    arr = np.empty(len(out), dtype=object)
    arr[:] = out
    return arr


def from_raw(datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    """One ``raw_output_contents`` entry as an array (BOOL as bool, BYTES as object str)."""
    if datatype == "BYTES":
        arr = decode_bytes_elements(raw)
    elif datatype == "BOOL":
        arr = np.frombuffer(raw, dtype=np.uint8) != 0
    else:
        try:
            dt = codecs.from_kserve(datatype)
        except ValueError as exc:
            raise ComponentError(str(exc), "predator-unsupported-datatype") from None
        if len(raw) % dt.itemsize:
            raise ComponentError(f"{len(raw)} bytes is not a whole number of {datatype} elements")
        arr = np.frombuffer(raw, dtype=dt.numpy_dtype)
    if shape and all(d >= 0 for d in shape) and int(np.prod(shape)) == arr.size:
        return arr.reshape(shape)
    return arr


_KSERVE_OF: dict[np.dtype, str] = {}  # numpy dtype -> its KServe datatype, filled by datatype_of


def datatype_of(arr: np.ndarray) -> str:
    """KServe datatype of a numpy array (ONNX Runtime outputs)."""
    known = _KSERVE_OF.get(arr.dtype)
    if known is None:
        known = _KSERVE_OF[arr.dtype] = _datatype_of(arr)
    return known


def _datatype_of(arr: np.ndarray) -> str:
    if arr.dtype == object or arr.dtype.kind in "US":
        return "BYTES"
    if arr.dtype == np.bool_:
        return "BOOL"
    for name in (
        "FP16",
        "FP32",
        "FP64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
    ):
        if codecs.from_kserve(name).numpy_dtype == arr.dtype.newbyteorder("<"):
            return name
    raise ComponentError(f"model returned an unsupported element type {arr.dtype}")


_SOURCE: dict[str, DataType] = {}  # KServe datatype of an output -> its element type, filled by split_output


def split_output(spec: OutputSpec, tensor: Tensor, rows: int) -> list[np.ndarray]:
    """Per configured score slice, the values of ``rows`` rows converted to the column type."""
    arr = tensor.array
    if rows == 0 or arr.size % rows:
        raise ComponentError(f"output {spec.name!r}: {arr.size} elements cannot be split over {rows} rows")
    per_row = arr.size // rows
    flat = arr.reshape(rows, per_row)
    sizes = spec.sizes
    if -1 in sizes:
        rest = per_row - sum(s for s in sizes if s > 0)
        sizes = tuple(rest if s == -1 else s for s in sizes)
    if sum(sizes) != per_row or min(sizes) <= 0:
        raise ComponentError(
            f"output {spec.name!r}: model returned {per_row} values per row, "
            f"model_scores_dims need {sum(s for s in sizes if s > 0)}"
        )
    src = _SOURCE.get(tensor.datatype)
    if src is None:
        src = DataType.STRING if tensor.datatype == "BYTES" else codecs.from_kserve(tensor.datatype)
        _SOURCE[tensor.datatype] = src
    out, start = [], 0
    for sl, size in zip(spec.slices, sizes, strict=True):
        part = flat[:, start : start + size]
        start += size
        out.append(_convert(part if sl.dtype.is_vector else part[:, 0], src, sl.dtype))
    return out


def _convert(values: np.ndarray, src: DataType, dst: DataType) -> np.ndarray:
    if src is DataType.STRING:
        if dst is DataType.STRING:
            return values
        if dst is DataType.STRING_VECTOR:
            rows = np.empty(len(values), dtype=object)
            rows[:] = [list(r) for r in values]
            return rows
        if dst.is_vector:
            parsed, ok = codecs.parse_text_column(list(values.ravel()), dst.scalar)
            if not ok.all():
                raise ComponentError(f"BYTES output is not valid {dst.scalar.wire_name} text")
            return parsed.reshape(values.shape)
        parsed, ok = codecs.parse_text_column(list(values), dst)
        if not ok.all():
            raise ComponentError(f"BYTES output is not valid {dst.wire_name} text")
        return parsed
    if dst.scalar is DataType.STRING:
        return codecs.cast_array(values, src.vector if values.ndim == 2 else src, dst)
    return codecs.cast_array(values, src.vector if values.ndim == 2 else src, dst)
