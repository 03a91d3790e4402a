"""Check a predator model's signature against its component config: at load for an embedded
(``onnx://PATH``) model, and with ``inferflow validate --check-backends`` for a remote KServe model.

The file must exist at ``PATH/<model_name>/<model_version>/model.onnx``; every configured input must name
a model input of the same element type and per-row shape, every model input must be fed, and every
configured output must name a model output whose per-row size fits ``model_scores_dims``. Problems are
``(json path below the component entry, message)``. Model signatures are cached by (path, mtime).
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferflow_core.api import DataType, DataTypeError, codecs

from .config import InputSpec, OutputSpec

# ONNX Runtime's type strings -> our element types
_ORT_TYPES = {
    "tensor(float)": DataType.FP32,
    "tensor(double)": DataType.FP64,
    "tensor(float16)": DataType.FP16,
    "tensor(int8)": DataType.INT8,
    "tensor(int16)": DataType.INT16,
    "tensor(int32)": DataType.INT32,
    "tensor(int64)": DataType.INT64,
    "tensor(uint8)": DataType.UINT8,
    "tensor(uint16)": DataType.UINT16,
    "tensor(uint32)": DataType.UINT32,
    "tensor(uint64)": DataType.UINT64,
    "tensor(bool)": DataType.BOOL,
    "tensor(string)": DataType.STRING,
}


@dataclass(frozen=True)
class TensorSig:
    name: str
    type: str  # the backend's spelling, e.g. tensor(float) (ONNX Runtime) or FP32 (KServe)
    shape: tuple[int | None, ...]  # None = symbolic / unknown
    dtype: DataType | None = None  # our element type, when the spelling is known


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSig, ...]
    outputs: tuple[TensorSig, ...]


_cache: dict[tuple[str, float], Signature] = {}


def _dims(shape: Sequence[object]) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def signature(path: Path) -> Signature:
    """The model's input and output signature (loads the file with ONNX Runtime once per mtime)."""
    key = (str(path), path.stat().st_mtime)
    got = _cache.get(key)
    if got is None:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = Signature(
            tuple(
                TensorSig(i.name, i.type, _dims(i.shape), _ORT_TYPES.get(i.type)) for i in sess.get_inputs()
            ),
            tuple(
                TensorSig(o.name, o.type, _dims(o.shape), _ORT_TYPES.get(o.type)) for o in sess.get_outputs()
            ),
        )
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = got
    return got


def _hint(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_onnx(
    repository: str,
    model_name: str,
    version: str,
    inputs: Sequence[InputSpec],
    outputs: Sequence[OutputSpec],
    endpoint_path: str,
) -> list[tuple[str, str]]:
    path = Path(repository) / model_name / version / "model.onnx"
    if not path.is_file():
        why = "does not exist" if not os.path.exists(path) else "is not a file"
        return [(endpoint_path, f"embedded model file {path} {why} (onnx://{repository})")]
    try:
        sig = signature(path)
    except Exception as exc:
        return [(endpoint_path, f"cannot load {path}: {type(exc).__name__}: {exc}")]
    return check_signature(sig, model_name, inputs, outputs)


def check_signature(
    sig: Signature, model_name: str, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> list[tuple[str, str]]:
    """Config vs. a model signature (names, element types, per-row shapes, output sizes)."""
    problems: list[tuple[str, str]] = []
    by_name = {t.name: t for t in sig.inputs}
    fed = set()
    for i, spec in enumerate(inputs if sig.inputs else ()):  # a server may declare no inputs
        model_in = by_name.get(spec.name)
        if model_in is None:
            names = [t.name for t in sig.inputs]
            problems.append(
                (
                    f"inputs[{i}].name",
                    f"model {model_name!r} has no input {spec.name!r} (its inputs: "
                    f"{', '.join(map(repr, names))}){_hint(spec.name, names)}",
                )
            )
            continue
        fed.add(spec.name)
        want = model_in.dtype
        if want is not None and want is not spec.dtype:
            problems.append(
                (
                    f"inputs[{i}].data_type",
                    f"model input {spec.name!r} is {want.name} ({model_in.type}), "
                    f"config says {spec.dtype.name}",
                )
            )
        problems += _shape_problems(i, spec, model_in)
    for t in sig.inputs:
        if t.name not in fed and t.name not in {spec.name for spec in inputs}:
            problems.append(
                ("inputs", f"model input {t.name!r} of {model_name!r} is fed by no inputs[] entry")
            )
    out_by_name = {t.name: t for t in sig.outputs}
    for o, out in enumerate(outputs if sig.outputs else ()):
        model_out = out_by_name.get(out.name)
        if model_out is None:
            names = [t.name for t in sig.outputs]
            problems.append(
                (
                    f"outputs[{o}].name",
                    f"model {model_name!r} has no output {out.name!r} (its outputs: "
                    f"{', '.join(map(repr, names))}){_hint(out.name, names)}",
                )
            )
            continue
        per_row = model_out.shape[1:]
        sizes = [s.size for s in out.slices]
        if per_row and all(d is not None for d in per_row) and -1 not in sizes:
            have = math.prod(d for d in per_row if d is not None)
            if sum(sizes) != have:
                problems.append(
                    (
                        f"outputs[{o}].model_scores_dims",
                        f"model output {out.name!r} has {have} value(s) per row (shape "
                        f"{list(model_out.shape)}), model_scores_dims ask for {sum(sizes)}",
                    )
                )
    return problems


def _shape_problems(i: int, spec: InputSpec, model_in: TensorSig) -> list[tuple[str, str]]:
    per_row = model_in.shape[1:]
    config = spec.shape
    if not model_in.shape:
        return []
    if len(per_row) == 0 and config in ((1,), (-1,)):
        return []  # a [batch] input fed one value per row
    same_rank = len(per_row) == len(config)
    if same_rank and all(w is None or g == -1 or w == g for w, g in zip(per_row, config, strict=True)):
        return []
    shown = _show(per_row)
    return [
        (
            f"inputs[{i}].shape",
            f"model input {spec.name!r} has per-row shape {shown}, config says {list(config)}",
        )
    ]


def _show(dims: Sequence[int | None]) -> list[int | str]:
    return [d if d is not None else "?" for d in dims]


async def remote_signature(backend: object, model: str, version: str, timeout: float) -> Signature | None:
    """A KServe endpoint's ``ModelMetadata`` as a signature (None when the client cannot ask)."""
    from . import kserve

    stub = getattr(backend, "stub", None)
    pb = getattr(kserve, "service_pb2", None)
    if stub is None or pb is None:
        return None
    got = await stub.ModelMetadata(
        pb.ModelMetadataRequest(name=model, version=version),
        timeout=timeout,
        metadata=getattr(backend, "metadata", ()),
    )

    def one(t: Any) -> TensorSig:
        try:
            dtype: DataType | None = codecs.from_kserve(t.datatype)
        except DataTypeError:
            dtype = None
        return TensorSig(t.name, t.datatype, tuple(d if d > 0 else None for d in t.shape), dtype)

    return Signature(tuple(map(one, got.inputs)), tuple(map(one, got.outputs)))
