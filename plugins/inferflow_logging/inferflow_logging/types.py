"""The types a log format or sink deals in (re-exported by :mod:`inferflow_logging.api`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from inferflow_core.api import Metrics

    from .schema import SchemaEntry
    from .settings import LoggingSettings
    from .table import LogTable


class Chunk:
    """One message's rows: entity ids and their feature blobs (one per entity for proto, one per chunk
    for arrow / parquet).

    The proto and parquet formats hand over ``framed`` instead: the chunk's ``InferflowLog.features``
    field already in protobuf wire form (every ``PerEntityFeatures`` with its tag and lengths), a slice
    of one buffer for the whole request or a list of wire pieces, so the envelope copies it once;
    ``features`` is then derived on demand.
    """

    def __init__(
        self,
        entities: list[str],
        features: list[bytes] | None = None,
        framed: memoryview | list[Any] | None = None,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,  # (blob starts, blob ends) within framed
    ) -> None:
        self.entities = entities
        self._features = features
        self.framed = framed
        self._bounds = bounds

    @property
    def features(self) -> list[bytes]:
        if self._features is None:
            assert self.framed is not None
            assert self._bounds is not None
            data = b"".join(self.framed) if isinstance(self.framed, list) else bytes(self.framed)
            self._features = [
                data[a:b] for a, b in zip(self._bounds[0].tolist(), self._bounds[1].tolist(), strict=True)
            ]
        return self._features


@dataclass
class LogMessage:
    """One Kafka message value (a serialized ``KafkaRequest``, go-compatibility §7.5) plus what a
    sink needs to make it decodable offline: the model id and the schema (``[[name, wire type], ...]``)
    under ``schema_key`` (the model id, or ``"<model id>#slate"`` for slate logs)."""

    value: bytes
    model_id: str
    schema_key: str
    schema: list[list[str]] = field(default_factory=list)


@runtime_checkable
class LogFormat(Protocol):
    """An inference-log format, registered through ``register_log_formats`` and selected by
    service-config ``v2-logging-type`` = ``name``.

    ``code`` is only for Go Inferflow's formats (``FORMAT_CODES``); any other format leaves it out and
    is written with the extension code and its name in the metadata (see ``metadata_byte``).
    """

    name: str

    def bad_rows(self, table: LogTable) -> np.ndarray:
        """(rows,) bool: rows this format cannot encode (dropped alone and counted); all False if none."""
        ...

    def encode(self, table: LogTable, batch_size: int) -> list[Chunk]:
        """The table in chunks of at most ``batch_size`` rows (one message each); ``[]`` for no rows."""
        ...

    def decode(self, features: list[bytes], entries: tuple[SchemaEntry, ...]) -> list[list[bytes | None]]:
        """The rows (one cell per entry, None = missing) of one message's ``features`` blobs."""
        ...


@runtime_checkable
class SinkWriter(Protocol):
    """What a sink's ``create`` returns; owned by one logging worker thread (or the encoder process).

    ``write`` hands messages over without blocking on the network and raises when it cannot (counted as
    a sink error); ``poll`` serves callbacks when idle; ``flush(timeout)`` at shutdown returns the number
    of messages still not delivered; ``close`` (optional) releases it after the last flush.
    """

    def write(self, messages: list[LogMessage]) -> None: ...

    def poll(self) -> None: ...

    def flush(self, timeout: float) -> int: ...


@runtime_checkable
class LogSink(Protocol):
    """An inference-log sink, registered through ``register_log_sinks`` and selected by
    ``INFERFLOW_LOG_SINK`` = ``name``. In the process encoder (the default) the sink object is pickled
    to the encoder process, which calls ``create`` there: keep it a plain object."""

    name: str

    def create(self, settings: LoggingSettings, metrics: Metrics) -> SinkWriter: ...


RegisterLogFormat = Callable[[LogFormat], None]
RegisterLogSink = Callable[[LogSink], None]
