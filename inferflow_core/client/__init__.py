"""A Python client for Inferflow: call a model in one line, get typed columns back.

::

    from inferflow_core.client import InferflowClient

    with InferflowClient("127.0.0.1:8085") as client:
        result = client.pointwise("bench_ctr", targets=["954", "614"], context={"user_id": "42"})
        print(result.to_dicts())          # [{"catalog_id": "954", "pctr": 0.031, ...}, ...]
        df = result.to_pandas()           # needs pandas (pip install 'inferflow-core[pandas]')

Inputs are lists, numpy arrays, pandas Series or a DataFrame (one row per target). Each feature is sent
with a declared type: from its values (numpy dtype, ``str`` -> STRING, 2-D / list of lists -> vector) or
named in ``types={"price": "fp32"}``; values are encoded with the server's own codec
(:mod:`inferflow_core.dtypes`) as text (the default, what the Go clients send) or little-endian binary
(``encoding="binary"``, to match a server run with ``INFERFLOW_REQUEST_VALUE_ENCODING=binary``).
Results are decoded by the response's output schema. Per-item ``errors`` and ``request_error`` are on
the result (``result.ok``); ``raise_errors=True`` (per client or per call) raises
:class:`PredictionError` instead. A failed call (server down, unknown model, deadline) raises
:class:`RPCError` with the gRPC status ``code``.

:class:`AsyncInferflowClient` is the asyncio twin with the same methods.
"""

from __future__ import annotations

from ._base import TLS
from ._client import AsyncInferflowClient, InferflowClient
from ._result import (
    GroupedResult,
    PairwiseResult,
    PointwiseResult,
    PredictionError,
    RetrieveResult,
    RPCError,
    SlatewiseResult,
    Table,
)

__all__ = [
    "TLS",
    "AsyncInferflowClient",
    "GroupedResult",
    "InferflowClient",
    "PairwiseResult",
    "PointwiseResult",
    "PredictionError",
    "RPCError",
    "RetrieveResult",
    "SlatewiseResult",
    "Table",
]

for _name in __all__:  # tracebacks and docs show inferflow_core.client.X, not the private module
    globals()[_name].__module__ = __name__
