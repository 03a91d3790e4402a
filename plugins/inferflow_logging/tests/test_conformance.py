"""The built-in formats and sinks pass the conformance bases shipped for format and sink authors."""

from __future__ import annotations

import errno
import itertools
from pathlib import Path
from typing import Any

import pytest
from iflog_support import Broker, consume
from inferflow_logging.api import LoggingSettings, LogMessage, SchemaEntry
from inferflow_logging.formats import FORMATS
from inferflow_logging.sinks import PREALLOCATE_BYTES, SINKS, FileWriter, read_delimited, varint
from inferflow_logging.testing import FormatConformance, SinkConformance

from inferflow_core.api import DataType, Metrics


class TestProtoFormat(FormatConformance):
    def make_format(self) -> Any:
        return FORMATS["proto"]

    def missing_values(self, entry: SchemaEntry) -> tuple[bytes | None, ...]:
        if entry.dtype is DataType.STRING:
            return (b"0.0",)  # go-compatibility §4.5
        if entry.is_var:
            return (None,)
        return (b"\0" * entry.itemsize,)  # a missing fixed scalar is zeros


class TestArrowFormat(FormatConformance):
    def make_format(self) -> Any:
        return FORMATS["arrow"]


class TestParquetFormat(FormatConformance):
    def make_format(self) -> Any:
        return FORMATS["parquet"]


class TestFileSink(SinkConformance):
    def make_sink(self) -> Any:
        return SINKS["file"]

    def read_back(self, tmp_path: Path, writer: Any) -> list[bytes] | None:
        files = sorted((tmp_path / "logs").glob("*.binpb"))
        return list(itertools.chain.from_iterable(read_delimited(f) for f in files))

    def failing_settings(self, tmp_path: Path) -> LoggingSettings | None:
        (tmp_path / "a-file").write_text("not a directory")
        return LoggingSettings(sink="file", log_dir=str(tmp_path / "a-file" / "logs"))


def _message(size: int, k: int) -> LogMessage:
    return LogMessage(bytes([k % 256]) * size, "m", "m", [["f", "FP32"]])


def test_file_sink_reserves_space_ahead_and_releases_it_at_close(tmp_path: Path) -> None:
    """The file's size is what was written; the disk blocks reserved past it are released at close."""
    writer = FileWriter(LoggingSettings(sink="file", log_dir=str(tmp_path)), Metrics())
    messages = [_message(300_000, k) for k in range(3)]
    writer.write(messages)
    (path,) = writer.paths
    if writer._reserved <= 0:
        pytest.skip(f"no fallocate on the file system of {tmp_path}")
    written = path.stat().st_size
    assert written == sum(len(varint(len(m.value))) + len(m.value) for m in messages)
    assert path.stat().st_blocks * 512 >= PREALLOCATE_BYTES  # reserved ahead ...
    assert list(read_delimited(path)) == [m.value for m in messages]  # ... but never read
    writer.close()
    assert path.stat().st_size == written
    assert path.stat().st_blocks * 512 < written + (1 << 20)  # released


def test_file_sink_without_fallocate_writes_plainly(tmp_path: Path) -> None:
    """A file system that refuses ``fallocate`` is written without reservation, as before."""
    writer = FileWriter(LoggingSettings(sink="file", log_dir=str(tmp_path)), Metrics())
    calls = []

    def refuse(fd: int, offset: int, length: int) -> None:
        calls.append(offset)
        raise OSError(errno.EOPNOTSUPP, "not supported")

    writer._fallocate = refuse  # type: ignore[assignment]
    messages = [_message(1000, k) for k in range(5)]
    writer.write(messages[:2])
    writer.write(messages[2:])
    writer.close()
    assert calls == [0]  # tried once, then never again
    assert writer._fallocate is None
    assert list(read_delimited(writer.paths[0])) == [m.value for m in messages]


_topics = itertools.count()


@pytest.mark.integration
class TestKafkaSink(SinkConformance):
    @pytest.fixture(autouse=True)
    def _topic(self, broker: Broker) -> None:
        self.broker = broker
        self.topic = f"conformance_{next(_topics)}"
        broker.create_topic(self.topic)

    def make_sink(self) -> Any:
        return SINKS["kafka"]

    def settings(self, tmp_path: Path) -> LoggingSettings:
        return LoggingSettings(sink="kafka", kafka_bootstrap_servers=self.broker.bootstrap, topic=self.topic)

    def read_back(self, tmp_path: Path, writer: Any) -> list[bytes] | None:
        return consume(self.broker.bootstrap, self.topic, 5, timeout=30)


class _LossyFormat:
    """Arrow, but decoding drops the last column's values: the round trip must catch it."""

    name = "lossy"

    def bad_rows(self, table: Any) -> Any:
        return FORMATS["arrow"].bad_rows(table)

    def encode(self, table: Any, batch_size: int) -> Any:
        return FORMATS["arrow"].encode(table, batch_size)

    def decode(self, features: list[bytes], entries: tuple[SchemaEntry, ...]) -> list[list[bytes | None]]:
        return [[*row[:-1], None] for row in FORMATS["arrow"].decode(features, entries)]


class _SilentWriter:
    def write(self, messages: Any) -> None:
        pass  # loses everything, says nothing

    def poll(self) -> None:
        pass

    def flush(self, timeout: float) -> int:
        return 0


class _SilentSink:
    name = "silent"

    def create(self, settings: Any, metrics: Any) -> _SilentWriter:
        return _SilentWriter()


def test_the_format_base_fails_a_format_that_loses_cells() -> None:
    class Case(FormatConformance):
        def make_format(self) -> Any:
            return _LossyFormat()

    with pytest.raises(AssertionError):
        Case().test_round_trip_of_every_dtype_with_missing_cells()


def test_the_format_base_fails_a_go_format_name_without_its_code() -> None:
    class Impostor(_LossyFormat):
        name = "arrow"

    class Case(FormatConformance):
        def make_format(self) -> Any:
            return Impostor()

    with pytest.raises(Exception, match="must come with its code 1"):
        Case().test_name_registers_and_names_itself_in_the_metadata()


def test_the_sink_base_fails_a_sink_that_swallows_failures(tmp_path: Path) -> None:
    class Case(SinkConformance):
        def make_sink(self) -> Any:
            return _SilentSink()

        def failing_settings(self, tmp_path: Path) -> LoggingSettings | None:
            return LoggingSettings(sink="silent")

        def read_back(self, tmp_path: Path, writer: Any) -> list[bytes] | None:
            return []  # it delivered nothing

    with pytest.raises(AssertionError, match="failed silently"):
        Case().test_a_failing_writer_is_reported_not_swallowed(tmp_path)
    with pytest.raises(AssertionError):
        Case().test_write_poll_flush_close(tmp_path)
