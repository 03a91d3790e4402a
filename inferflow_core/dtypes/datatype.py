"""The DataType enum (the 31 wire values), its per-member tables and the one type-name normaliser."""

from __future__ import annotations

import enum
from typing import NoReturn

import ml_dtypes
import numpy as np

__all__ = ["DataType", "DataTypeError", "from_kserve", "parse_dtype"]


class DataTypeError(ValueError):
    """A type spelling, value, text or byte cell does not fit the requested data type."""


class DataType(enum.IntEnum):
    UNKNOWN = 0
    FP8E5M2 = 1
    FP8E4M3 = 2
    FP16 = 3
    FP32 = 4
    FP64 = 5
    INT8 = 6
    INT16 = 7
    INT32 = 8
    INT64 = 9
    UINT8 = 10
    UINT16 = 11
    UINT32 = 12
    UINT64 = 13
    STRING = 14
    BOOL = 15
    FP8E5M2_VECTOR = 16
    FP8E4M3_VECTOR = 17
    FP16_VECTOR = 18
    FP32_VECTOR = 19
    FP64_VECTOR = 20
    INT8_VECTOR = 21
    INT16_VECTOR = 22
    INT32_VECTOR = 23
    INT64_VECTOR = 24
    UINT8_VECTOR = 25
    UINT16_VECTOR = 26
    UINT32_VECTOR = 27
    UINT64_VECTOR = 28
    STRING_VECTOR = 29
    BOOL_VECTOR = 30

    # Properties read precomputed per-member tables (filled below the class): they sit on the hot path
    # (every matrix read/write asks them), so none of them computes anything per call.
    @property
    def wire_name(self) -> str:
        """The proto enum value name, e.g. ``DataTypeFP32Vector``."""
        return _T_WIRE_NAME[self]

    @property
    def is_vector(self) -> bool:
        return self >= 16

    @property
    def scalar(self) -> DataType:
        return _T_SCALAR[self]

    @property
    def vector(self) -> DataType:
        if self is DataType.UNKNOWN:
            raise DataTypeError("DataTypeUnknown has no vector form")
        return _T_VECTOR[self]

    @property
    def is_fixed_width(self) -> bool:
        return _T_FIXED[self]

    @property
    def itemsize(self) -> int:
        size = _T_ITEMSIZE[self]
        return size if size else _no(self, "a fixed element size")

    @property
    def numpy_dtype(self) -> np.dtype:
        dtype = _T_NUMPY[self]
        return dtype if dtype is not None else _no(self, "a numpy dtype")

    @property
    def kserve_name(self) -> str:
        name = _KSERVE.get(_T_SCALAR[self])
        return name if name is not None else _no(self, "a KServe v2 datatype")


def _no(dt: DataType, what: str) -> NoReturn:
    raise DataTypeError(f"{dt.wire_name} does not have {what}")


_S = DataType
_WIRE_NAMES = ["Unknown", "FP8E5M2", "FP8E4M3", "FP16", "FP32", "FP64", "Int8", "Int16", "Int32", "Int64",
               "Uint8", "Uint16", "Uint32", "Uint64", "String", "Bool"]  # fmt: skip
_WIRE: dict[DataType, str] = dict(zip(list(DataType)[:16], _WIRE_NAMES, strict=True))
_NUMPY: dict[DataType, np.dtype] = {
    _S.FP8E5M2: np.dtype(ml_dtypes.float8_e5m2), _S.FP8E4M3: np.dtype(ml_dtypes.float8_e4m3fn),
    _S.FP16: np.dtype("<f2"), _S.FP32: np.dtype("<f4"), _S.FP64: np.dtype("<f8"), _S.INT8: np.dtype("i1"),
    _S.INT16: np.dtype("<i2"), _S.INT32: np.dtype("<i4"), _S.INT64: np.dtype("<i8"), _S.UINT8: np.dtype("u1"),
    _S.UINT16: np.dtype("<u2"), _S.UINT32: np.dtype("<u4"), _S.UINT64: np.dtype("<u8"),
    _S.BOOL: np.dtype(np.bool_), _S.STRING: np.dtype(object),
}  # fmt: skip
_KSERVE: dict[DataType, str] = {
    dt: _WIRE[dt].upper() for dt in _NUMPY if dt not in (_S.FP8E5M2, _S.FP8E4M3, _S.STRING)
}
_KSERVE[_S.STRING] = "BYTES"
_T_SCALAR: tuple[DataType, ...] = tuple(DataType(v - 15 if v >= 16 else v) for v in range(31))
_T_VECTOR: tuple[DataType, ...] = tuple(DataType(v if v >= 16 else v + 15) for v in range(31))
_T_WIRE_NAME: tuple[str, ...] = tuple(
    "DataType" + _WIRE[_T_SCALAR[v]] + ("Vector" if v >= 16 else "") for v in range(31)
)
_T_FIXED: tuple[bool, ...] = tuple(_T_SCALAR[v] not in (_S.STRING, _S.UNKNOWN) for v in range(31))
_T_NUMPY: tuple[np.dtype | None, ...] = tuple(_NUMPY.get(_T_SCALAR[v]) for v in range(31))
_T_ITEMSIZE: tuple[int, ...] = tuple(
    int(_T_NUMPY[v].itemsize) if _T_FIXED[v] else 0  # type: ignore[union-attr]
    for v in range(31)
)
_FLOATS = (_S.FP8E5M2, _S.FP8E4M3, _S.FP16, _S.FP32, _S.FP64)
_INT_RANGE = {
    dt: (int(np.iinfo(_NUMPY[dt]).min), int(np.iinfo(_NUMPY[dt]).max)) for dt in _S if 6 <= dt <= 13
}

_ALIASES: dict[str, DataType] = {_WIRE[dt].lower(): dt for dt in _WIRE} | {
    "float16": _S.FP16, "float32": _S.FP32, "float64": _S.FP64, "bytes": _S.STRING, "str": _S.STRING,
    "float8e4m3": _S.FP8E4M3, "float8_e4m3fn": _S.FP8E4M3,
    "float8e5m2": _S.FP8E5M2, "float8_e5m2": _S.FP8E5M2,
}  # fmt: skip
_ACCEPTED = (
    "FP8E5M2, FP8E4M3, FP16, FP32, FP64, INT8..INT64, UINT8..UINT64, STRING, BOOL, UNKNOWN "
    "(case-insensitive, optional 'DataType' prefix, optional 'Vector'/'_vector' suffix; "
    "aliases float16/float32/float64, float8e4m3/float8e5m2, bytes/str = STRING)"
)


def parse_dtype(spelling: str) -> DataType:
    """The one type-name normaliser: ``fp32``, ``DataTypeFP32Vector``, ``fp32_vector``, ``bytes`` ..."""
    core = spelling.strip().lower()
    core = core.removeprefix("datatype")
    vector = core.endswith("vector")
    if vector:
        core = core.removesuffix("vector").removesuffix("_")
    dt = _ALIASES.get(core)
    if dt is None or (vector and dt is DataType.UNKNOWN):
        raise DataTypeError(f"unknown data type {spelling!r}; accepted: {_ACCEPTED}")
    return dt.vector if vector else dt


def from_kserve(name: str, vector: bool = False) -> DataType:
    """KServe v2 datatype (``FP32``, ``BYTES`` ...) -> DataType; BF16 and unknown names are rejected."""
    for dt, kname in _KSERVE.items():
        if kname == name.strip().upper():
            return dt.vector if vector else dt
    raise DataTypeError(f"unsupported KServe datatype {name!r}; supported: {', '.join(_KSERVE.values())}")
