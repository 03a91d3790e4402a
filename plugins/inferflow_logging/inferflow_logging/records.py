"""One served request -> the Kafka message values to write (off the event loop).

Two halves: :func:`extract_request` reads the matrices (column blocks, ids) and needs the request;
:func:`encode_extracted` formats and wraps and needs only that extract, so it can run in the
encoder process (:mod:`.procworker`). :func:`encode_request` runs both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from inferflow_core.api import ComponentMatrix, Metrics, ServedRequest

from .api import LogMessage
from .envelope import EVENT_NAME, SLATE_EVENT_NAME, frame_entities, frame_features, parent_entity, wrap_framed
from .sampling import RETRIEVE_MODEL_SCORE
from .schema import LogSchema, metadata_byte
from .table import LogTable, build_table, slate_entities

# Encoders hand the sink what they have encoded once it reaches this size, so the kernel copies the values
# into the page cache (or the producer into its queue) while they are still in the CPU cache: a whole batch
# of 64 parquet requests is ~22 MB.
WRITE_BYTES = 1 << 20


def message_bytes(messages: list[LogMessage]) -> int:
    return sum(len(m.value) for m in messages)


@dataclass
class Encoded:
    messages: list[LogMessage]
    entities: int = 0
    bad_rows: int = 0


def _target_ids(matrix: ComponentMatrix, id_column: str) -> list[str] | None:
    if not id_column or not matrix.has(id_column):
        return None
    return matrix.texts(id_column)


@dataclass
class Extracted:
    """What encoding needs of one request, taken from its matrices on the server: plain data (numpy
    blocks, Arrow arrays, strings) that the process encoder pickles to its worker process."""

    fmt_name: str
    batch: int
    common: dict[str, Any]
    tables: list[tuple[str, LogTable, np.ndarray]]  # (event name, table, bad-row mask)


def encode_request(
    served: ServedRequest, schema: LogSchema, fmt: Any, metrics: Metrics, log_slates: bool = True
) -> Encoded:
    """Build, encode and wrap the target log (and the slate log of pair/slate requests).

    Bad rows are dropped one by one and counted (``logging.error{error_type=bad_row}``); a missing id
    column logs nothing for the request (``id_column_not_found``), as in Go Inferflow.
    """
    extracted = extract_request(served, schema, fmt.name, metrics, log_slates)
    if extracted is None:
        return Encoded([])
    return encode_extracted(extracted, schema, fmt, metrics)


def extract_request(
    served: ServedRequest, schema: LogSchema, fmt_name: str, metrics: Metrics, log_slates: bool = True
) -> Extracted | None:
    """The matrix side of :func:`encode_request` (None, counted, when the id column is missing)."""
    ctx, model = served.ctx, served.model
    request = ctx.request
    ids = _target_ids(ctx.matrix, schema.id_column)
    if ids is None:
        metrics.count("logging.error", model_id=model.model_id, error_type="id_column_not_found")
        metrics.count("logging.encode_errors", model_id=model.model_id, error_type="id_column_not_found")
        return None
    common = {
        "user_id": request.user_id if request.api == RETRIEVE_MODEL_SCORE else "",
        "tracking_id": request.tracking_id,
        "model_id": model.model_id,
        "metadata": metadata_byte(bool(served.service.compression_enabled), schema.cache_version, fmt_name),
        "parents": parent_entity(request.metadata or {}),
        "created_at": int(served.received_at or time.time()),
    }
    batch = model.config.response_config.effective_log_batch_size
    table, bad = build_table(ctx.matrix, schema.entries, ids)
    out = Extracted(fmt_name, batch, common, [(EVENT_NAME, table, bad)])
    slate_matrix = ctx.slate_matrix
    if log_slates and slate_matrix is not None and schema.slate_entries and slate_matrix.rows:
        slate_ids = slate_entities(ids, slate_matrix.target_indices)
        table, bad = build_table(slate_matrix, schema.slate_entries, slate_ids)
        out.tables.append((SLATE_EVENT_NAME, table, bad))
    return out


def encode_extracted(extracted: Extracted, schema: LogSchema, fmt: Any, metrics: Metrics) -> Encoded:
    """The encoding side of :func:`encode_request`: formats, envelopes (no matrix needed)."""
    out = Encoded([])
    for event_name, table, bad in extracted.tables:
        _encode_table(out, table, bad, fmt, extracted.batch, extracted.common, event_name, schema, metrics)
    return out


def _encode_table(
    out: Encoded,
    table: LogTable,
    bad: np.ndarray,
    fmt: Any,
    batch: int,
    common: dict[str, Any],
    event_name: str,
    schema: LogSchema,
    metrics: Metrics,
) -> None:
    model_id = common["model_id"]
    bad = bad | fmt.bad_rows(table)
    if bad.any():
        count = int(np.count_nonzero(bad))
        out.bad_rows += count
        metrics.count("logging.error", count, model_id=model_id, error_type="bad_row")
        metrics.count("logging.encode_errors", count, model_id=model_id, error_type="bad_row")
        table = table.filter(~bad)
    slate = event_name == SLATE_EVENT_NAME
    key = model_id + ("#slate" if slate else "")
    described = schema.to_json(slate=slate)
    chunks = fmt.encode(table, batch)
    for chunk in chunks:
        rows = len(chunk.entities)
        framed = getattr(chunk, "framed", None)
        value = wrap_framed(
            entities=frame_entities(chunk.entities),
            features=framed if framed is not None else frame_features(chunk.features),
            event_name=event_name,
            **common,
        )
        out.messages.append(LogMessage(value, model_id, key, described))
        out.entities += rows


_log = logging.getLogger("inferflow.logging")


def encode_counted(model_id: str, metrics: Any, encode: Callable[[], Encoded]) -> list[LogMessage]:
    """Run ``encode`` and do the accounting both encoders share: an exception is an ``encoding_error``
    (counted and logged with the model id, the request is skipped); entities are counted. Never raises."""
    try:
        encoded = encode()
    except Exception as exc:
        metrics.count("logging.error", model_id=model_id, error_type="encoding_error")
        metrics.count("logging.encode_errors", model_id=model_id, error_type="encoding_error")
        _log.warning("inference logging: model %s: encoding failed: %s", model_id, exc)
        return []
    if encoded.entities:
        metrics.count("logging.entities", encoded.entities, model_id=model_id)
    return encoded.messages
