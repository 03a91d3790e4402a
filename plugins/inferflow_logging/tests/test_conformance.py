"""The built-in formats and sinks pass the conformance bases shipped for format and sink authors."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from iflog_support import Broker, consume
from inferflow_logging.api import LoggingSettings, SchemaEntry
from inferflow_logging.formats import FORMATS
from inferflow_logging.sinks import SINKS, read_delimited
from inferflow_logging.testing import FormatConformance, SinkConformance

from inferflow_core.api import DataType


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
