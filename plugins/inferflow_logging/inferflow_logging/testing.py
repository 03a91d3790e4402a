"""Conformance bases for log format and log sink authors: subclass in your tests, pytest collects them.

::

    from inferflow_logging.testing import FormatConformance, SinkConformance

    class TestMyFormat(FormatConformance):
        def make_format(self):
            return MyFormat()

    class TestMySink(SinkConformance):
        def make_sink(self):
            return MySink()

They check what the inference logger and ``inferflow logs read`` rely on: a format round-trips a table
with a column of every data type (missing cells included) through the Kafka envelope, encodes an empty
table to no chunks, chunks by ``batch_size`` in order, has a name the registration accepts and survives
pickling (the encoder process); a sink's writer writes, polls, flushes to 0 pending, closes, and a
writer that cannot write says so (raises or counts ``logging.sink_errors``) instead of losing logs
silently. Plain synchronous tests: no pytest plugin or setting is needed.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from inferflow_core.api import DataType, Metrics, codecs

from .api import FORMAT_CODES, LogFormat, LoggingSettings, LogMessage, LogSink, LogTable, SchemaEntry
from .envelope import read_message, wrap
from .registration import check_format, check_sink
from .schema import metadata_byte, unpack_metadata

__all__ = ["FormatConformance", "SinkConformance", "every_dtype_table", "sample_cell"]

_VALUES: dict[str, list[float]] = {"fp": [1.5, -2.0, 3.0, 0.0], "int": [1, 2, 3, 0], "uint": [1, 2, 3, 0]}


def sample_cell(dtype: DataType, row: int) -> bytes:
    """A wire cell (go-compatibility §4.4) of ``dtype`` that differs by ``row``; vectors of 1-3 items."""
    scalar = dtype.scalar
    n = 1 + row % 3 if dtype.is_vector else 1
    if scalar is DataType.STRING:
        items = [f'r{row}, "q" {i}' for i in range(n)]
        return codecs.encode_string_vector(items) if dtype.is_vector else items[0].encode("utf-8")
    if scalar is DataType.BOOL:
        values: np.ndarray = np.array([(row + i) % 2 == 0 for i in range(n)])
    else:
        kind = scalar.numpy_dtype.kind
        base = _VALUES["fp" if kind == "f" else "int" if kind == "i" else "uint"]
        values = np.array([base[(row + i) % 4] + (row if kind != "f" else 0) for i in range(n)])
        values = values.astype(scalar.numpy_dtype)
    return codecs.encode_array(values, dtype)


def every_dtype_table(rows: int = 7, dtypes: tuple[DataType, ...] | None = None) -> LogTable:
    """A table with one column per data type (all but ``UNKNOWN`` by default); a cell is missing where
    ``(row + column) % 4 == 3`` and every row's entity id is ``e<row>``."""
    chosen = dtypes or tuple(d for d in DataType if d is not DataType.UNKNOWN)
    entries = tuple(SchemaEntry(f"f_{d.wire_name.lower()}", d) for d in chosen)
    cells = [
        [None if (i + j) % 4 == 3 else sample_cell(e.dtype, i) for j, e in enumerate(entries)]
        for i in range(rows)
    ]
    return LogTable.from_rows(entries, [f"e{i}" for i in range(rows)], cells)


class FormatConformance:
    """Subclass and implement :meth:`make_format`. Override :attr:`dtypes` to narrow the data types the
    format supports, :meth:`missing_values` when the format writes a default for a missing cell."""

    dtypes: tuple[DataType, ...] | None = None  # None = every data type

    def make_format(self) -> LogFormat:
        raise NotImplementedError("return the format under test")

    def missing_values(self, entry: SchemaEntry) -> tuple[bytes | None, ...]:
        """What a missing cell may decode to (``None``; a format with defaults widens this)."""
        return (None,)

    # -- helpers --------------------------------------------------------------------------------
    def _round_trip(self, fmt: LogFormat, table: LogTable, batch: int) -> list[tuple[str, list[Any]]]:
        """Encode, wrap each chunk in the Kafka envelope, read it back and decode: (entity, cells)."""
        out = []
        meta = metadata_byte(False, 3, fmt.name)
        for chunk in fmt.encode(table, batch):
            value = wrap(
                user_id="u",
                tracking_id="t",
                model_id="m",
                entities=chunk.entities,
                features=chunk.features,
                metadata=meta,
                parents=[],
                created_at=1,
            )
            got = read_message(value)
            assert got.format == fmt.name, f"metadata names {got.format!r}, not {fmt.name!r}"
            rows = fmt.decode(got.features, table.entries)
            assert len(rows) == len(got.entities), (
                f"{len(rows)} decoded rows for {len(got.entities)} entities"
            )
            out += list(zip(got.entities, rows, strict=True))
        return out

    # -- tests ----------------------------------------------------------------------------------
    def test_name_registers_and_names_itself_in_the_metadata(self) -> None:
        fmt = self.make_format()
        check_format(fmt, {})  # raises PluginError when the registration would refuse it
        assert isinstance(fmt, LogFormat)
        assert unpack_metadata(metadata_byte(True, 5, fmt.name)) == (True, 5, fmt.name)
        if fmt.name not in FORMAT_CODES:
            assert metadata_byte(False, 0, fmt.name)[0] >> 6 not in FORMAT_CODES.values()

    def test_round_trip_of_every_dtype_with_missing_cells(self) -> None:
        fmt = self.make_format()
        table = every_dtype_table(dtypes=self.dtypes)
        expected = table.cells()
        assert not fmt.bad_rows(table).any(), "a row of supported cells is reported bad"
        got = self._round_trip(fmt, table, batch=3)
        assert [e for e, _ in got] == table.entities
        for (entity, cells), want in zip(got, expected, strict=True):
            assert len(cells) == len(table.entries), (entity, len(cells))
            for entry, cell, expect in zip(table.entries, cells, want, strict=True):
                if expect is None:
                    assert cell in self.missing_values(entry), (entity, entry.name, cell)
                else:
                    assert cell == expect, (entity, entry.name, cell, expect)

    def test_empty_table_encodes_to_no_chunks(self) -> None:
        fmt = self.make_format()
        empty = every_dtype_table(rows=0, dtypes=self.dtypes)
        assert len(fmt.bad_rows(empty)) == 0
        assert fmt.encode(empty, 10) == []

    def test_chunks_hold_at_most_batch_size_rows_in_order(self) -> None:
        fmt = self.make_format()
        table = every_dtype_table(rows=7, dtypes=self.dtypes)
        chunks = fmt.encode(table, 3)
        assert [len(c.entities) for c in chunks] == [3, 3, 1]
        assert [e for c in chunks for e in c.entities] == table.entities
        assert [len(c.entities) for c in fmt.encode(table, 100)] == [7]

    def test_bad_rows_is_a_row_mask(self) -> None:
        fmt = self.make_format()
        table = every_dtype_table(rows=5, dtypes=self.dtypes)
        bad = np.asarray(fmt.bad_rows(table))
        assert bad.dtype == bool
        assert bad.shape == (5,)

    def test_survives_pickling_for_the_encoder_process(self) -> None:
        fmt = self.make_format()
        copy = pickle.loads(pickle.dumps(fmt))
        table = every_dtype_table(rows=2, dtypes=self.dtypes)
        assert self._round_trip(copy, table, 10) == self._round_trip(fmt, table, 10)


def _messages(count: int) -> list[LogMessage]:
    out = []
    for i in range(count):
        value = wrap(
            user_id="u",
            tracking_id=f"t{i}",
            model_id="m",
            entities=[f"e{i}"],
            features=[b"\x01"],
            metadata=metadata_byte(False, 0, "proto"),
            parents=[],
            created_at=1,
        )
        out.append(LogMessage(value, "m", "m", [["f", "DataTypeUint8"]]))
    return out


class SinkConformance:
    """Subclass and implement :meth:`make_sink`; override :meth:`settings` to point the sink at a test
    destination, :meth:`read_back` to return what it wrote (checked against what was written) and
    :meth:`failing_settings` to make its writer fail (checked to be reported)."""

    def make_sink(self) -> LogSink:
        raise NotImplementedError("return the sink under test")

    def settings(self, tmp_path: Path) -> LoggingSettings:
        return LoggingSettings(sink=self.make_sink().name, log_dir=str(tmp_path / "logs"))

    def read_back(self, tmp_path: Path, writer: Any) -> list[bytes] | None:
        """The message values the writer delivered, in order (None: the sink cannot be read back)."""
        return None

    def failing_settings(self, tmp_path: Path) -> LoggingSettings | None:
        """Settings under which the writer cannot write (None: no such case)."""
        return None

    def test_name_registers(self) -> None:
        sink = self.make_sink()
        check_sink(sink, {})
        assert isinstance(sink, LogSink)

    def test_write_poll_flush_close(self, tmp_path: Path) -> None:
        metrics = Metrics()
        writer = self.make_sink().create(self.settings(tmp_path), metrics)
        sent = _messages(5)
        writer.write(sent[:2])
        writer.poll()
        writer.write(sent[2:])
        writer.write([])
        pending = writer.flush(10.0)
        assert isinstance(pending, int), f"flush returned {pending!r}, not a count of pending messages"
        assert pending == 0, f"{pending} messages pending after flush"
        assert metrics.value("logging.sink_errors") == 0
        got = self.read_back(tmp_path, writer)
        close = getattr(writer, "close", None)
        if close is not None:
            close()
            close()  # closing twice is harmless
        if got is not None:
            assert got == [m.value for m in sent]

    def test_a_failing_writer_is_reported_not_swallowed(self, tmp_path: Path) -> None:
        settings = self.failing_settings(tmp_path)
        if settings is None:
            import pytest

            pytest.skip("the sink defines no failing case (failing_settings)")
        metrics = Metrics()
        try:
            writer = self.make_sink().create(settings, metrics)
            writer.write(_messages(2))
            writer.flush(2.0)
        except Exception:
            return  # raised: the logger counts it as a sink error and logs it
        assert metrics.value("logging.sink_errors") > 0, "the write failed silently"

    def test_survives_pickling_for_the_encoder_process(self) -> None:
        sink = self.make_sink()
        assert pickle.loads(pickle.dumps(sink)).name == sink.name
