"""Client results: response columns decoded by the response schema (``cells_to_array``), and errors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from ..dtypes import DataType, cells_to_array
from ..errors import InferflowError

_FLOATS = {DataType.FP8E5M2, DataType.FP8E4M3, DataType.FP16, DataType.FP32, DataType.FP64}


class RPCError(InferflowError):
    """The call failed: the server answered with a non-OK gRPC status, or could not be reached."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.code = code
        self.details = details


class PredictionError(InferflowError):
    """The call succeeded but the response reports errors (``raise_errors=True``); ``.result`` has it."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class Table:
    """Decoded output columns: one row per target (pair, slate), typed by the response schema.

    ``values[name]`` is a numpy array (2-D for fixed-width vectors; object arrays of ``str`` / lists for
    strings), ``valid[name]`` is False where the server sent no value, ``errors[i]`` is row ``i``'s error
    (``""`` when none).
    """

    schema: list[tuple[str, DataType]]
    values: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]
    errors: list[str]

    @classmethod
    def decode(cls, schema: Sequence[Any], scores: Sequence[Any]) -> Table:
        """From ``*_output_schema`` and ``*_scores`` of a response message."""
        cols = [(f.name, DataType(f.data_type) or DataType.STRING) for f in schema]
        rows = [list(s.output_values) for s in scores]
        values: dict[str, np.ndarray] = {}
        valid: dict[str, np.ndarray] = {}
        for k, (name, dtype) in enumerate(cols):
            cells = [r[k] if k < len(r) else b"" for r in rows]
            values[name], valid[name] = cells_to_array(cells, dtype)
        return cls(cols, values, valid, [s.error for s in scores])

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.schema]

    @property
    def dtypes(self) -> dict[str, DataType]:
        return dict(self.schema)

    def __len__(self) -> int:
        return len(self.errors)

    def __getitem__(self, name: str) -> np.ndarray:
        """One column as :meth:`to_numpy` gives it."""
        return self._numpy(name, self.dtypes[name])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.to_dicts())

    def to_numpy(self) -> dict[str, np.ndarray]:
        """``{name: array}``; a missing cell is NaN in float columns and None in string / vector object
        columns; in integer and bool columns it reads 0 / False (see ``valid``)."""
        return {name: self._numpy(name, dtype) for name, dtype in self.schema}

    def _numpy(self, name: str, dtype: DataType) -> np.ndarray:
        arr, ok = self.values[name], self.valid[name]
        if ok.all():
            return arr
        if dtype in _FLOATS:
            arr = arr.astype(np.float64 if dtype is DataType.FP64 else np.float32)
            arr[~ok] = np.nan
        elif arr.dtype == object:
            arr = arr.copy()
            arr[~ok] = None
        return arr

    def to_dicts(self) -> list[dict[str, Any]]:
        """One ``{name: python value}`` per row (None where missing; vectors as lists)."""
        cols = {name: _python(self.values[name], dtype) for name, dtype in self.schema}
        return [
            {name: (cols[name][i] if self.valid[name][i] else None) for name in cols}
            for i in range(len(self))
        ]

    def to_pandas(self) -> Any:
        """A DataFrame, one row per target (pair, slate); nullable dtypes where cells are missing."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("to_pandas() needs pandas: pip install 'inferflow-core[pandas]'") from exc
        data: dict[str, Any] = {}
        for name, dtype in self.schema:
            arr, ok = self.values[name], self.valid[name]
            if arr.ndim == 2:
                data[name] = pd.Series(_python(arr, dtype), dtype=object).where(ok, None)
            elif arr.dtype.kind in "iub" and not ok.all():
                bits = arr.dtype.itemsize * 8
                kind = {"b": "boolean", "i": f"Int{bits}", "u": f"UInt{bits}"}[arr.dtype.kind]
                data[name] = pd.array(
                    [v if good else None for v, good in zip(arr.tolist(), ok, strict=True)], kind
                )
            else:
                data[name] = self._numpy(name, dtype)
                if dtype in (DataType.FP8E4M3, DataType.FP8E5M2, DataType.FP16):
                    data[name] = data[name].astype(np.float32)
        return pd.DataFrame(data)


def _python(arr: np.ndarray, dtype: DataType) -> list[Any]:
    """Python values; FP32/FP16/FP8 as their shortest float32 text (0.43200272, not 0.4320027232170105)."""
    if arr.dtype == object:
        return [list(v) if isinstance(v, list | np.ndarray) else v for v in arr]
    if dtype.scalar in (DataType.FP8E4M3, DataType.FP8E5M2, DataType.FP16, DataType.FP32):
        flat = [float(str(v)) for v in arr.astype(np.float32).ravel()]
        if arr.ndim == 2:
            width = arr.shape[1]
            return [flat[i * width : (i + 1) * width] for i in range(arr.shape[0])]
        return flat
    return arr.tolist()


@dataclass
class PointwiseResult(Table):
    """A PointWise response: one row per target, plus ``request_error``."""

    request_error: str = ""
    explain: dict[str, Any] | None = field(default=None, repr=False)  # EXPLAIN trailer (``explain=True``)

    @property
    def ok(self) -> bool:
        """No request error and no per-target error."""
        return not self.request_error and not any(self.errors)

    def raise_for_errors(self) -> PointwiseResult:
        _raise(self, [("target", self)])
        return self


@dataclass
class GroupedResult:
    """A PairWise / SlateWise response: ``groups`` (one row per pair or slate), ``targets`` (one row per
    target), ``request_error``. ``to_numpy/to_pandas/to_dicts`` read ``groups``."""

    groups: Table
    targets: Table
    request_error: str = ""
    kind: str = field(default="pair", repr=False)
    explain: dict[str, Any] | None = field(default=None, repr=False)  # EXPLAIN trailer (``explain=True``)

    @property
    def ok(self) -> bool:
        return not self.request_error and not any(self.groups.errors) and not any(self.targets.errors)

    def raise_for_errors(self) -> GroupedResult:
        _raise(self, [(self.kind, self.groups), ("target", self.targets)])
        return self

    def __len__(self) -> int:
        return len(self.groups)

    def to_numpy(self) -> dict[str, np.ndarray]:
        return self.groups.to_numpy()

    def to_dicts(self) -> list[dict[str, Any]]:
        return self.groups.to_dicts()

    def to_pandas(self) -> Any:
        return self.groups.to_pandas()


class PairwiseResult(GroupedResult):
    """A PairWise response; ``pairs`` is ``groups``."""

    @property
    def pairs(self) -> Table:
        return self.groups


class SlatewiseResult(GroupedResult):
    """A SlateWise response; ``slates`` is ``groups``."""

    @property
    def slates(self) -> Table:
        return self.groups


@dataclass
class RetrieveResult(Table):
    """A RetrieveModelScore response: text columns (the legacy API has no types), ``request_error``."""

    request_error: str = ""
    explain: dict[str, Any] | None = field(default=None, repr=False)  # EXPLAIN trailer (``explain=True``)

    @classmethod
    def from_rows(cls, rows: list[list[str]], error: str) -> RetrieveResult:
        header, body = (rows[0], rows[1:]) if rows else ([], [])
        values = {
            h: np.array([r[k] if k < len(r) else "" for r in body], dtype=object)
            for k, h in enumerate(header)
        }
        valid = {h: np.ones(len(body), dtype=bool) for h in header}
        return cls([(h, DataType.STRING) for h in header], values, valid, [""] * len(body), error)

    @property
    def ok(self) -> bool:
        return not self.request_error

    def raise_for_errors(self) -> RetrieveResult:
        _raise(self, [])
        return self


def _raise(result: Any, tables: list[tuple[str, Table]]) -> None:
    problems = [f"request_error: {result.request_error}"] if result.request_error else []
    for kind, table in tables:
        bad = [(i, e) for i, e in enumerate(table.errors) if e]
        if bad:
            i, first = bad[0]
            problems.append(f"{len(bad)} {kind}(s) with an error, first {kind} {i}: {first}")
    if problems:
        raise PredictionError("; ".join(problems), result)
