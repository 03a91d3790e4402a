"""Any registered format or sink is selectable; an unknown one is refused naming the installed ones;
format codes: Go Inferflow's three keep theirs, others are the extension code plus their name."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import inferflow_logging.plugin as logging_plugin
import pytest
from iflog_support import Served, all_types_model
from inferflow_logging import InferenceLogger, LoggingSettings
from inferflow_logging.api import (
    EXTENSION_CODE,
    FORMAT_CODES,
    LogMessage,
    RegisterLogFormat,
    RegisterLogSink,
    hookimpl,
    read_message,
)
from inferflow_logging.cli import _entries, decode_record
from inferflow_logging.formats import ArrowFormat
from inferflow_logging.schema import metadata_byte, unpack_metadata

from inferflow_core.api import Metrics, ObserverHost, PluginError, Runtime
from inferflow_core.testing import make_host


class Renamed(ArrowFormat):
    """Arrow's encoding under another name: an extension format."""

    code = None  # type: ignore[assignment]

    def __init__(self, name: str, code: int | None = None) -> None:
        self.name = name  # type: ignore[misc]
        self.code = code  # type: ignore[assignment]


class ListSink:
    """A sink keeping what it was given (per process: the thread encoder)."""

    written: list[LogMessage] = []

    def __init__(self, name: str = "memory") -> None:
        self.name = name

    def create(self, settings: LoggingSettings, metrics: Metrics) -> Any:
        sink = self

        class Writer:
            def write(self, messages: list[LogMessage]) -> None:
                sink.written.extend(messages)

            def poll(self) -> None:
                pass

            def flush(self, timeout: float) -> int:
                return 0

        return Writer()


class Extra:
    def __init__(self, formats: tuple[Any, ...] = (), sinks: tuple[Any, ...] = ()) -> None:
        self.formats, self.sinks = formats, sinks

    @hookimpl
    def register_log_formats(self, register: RegisterLogFormat) -> None:
        for fmt in self.formats:
            register(fmt)

    @hookimpl
    def register_log_sinks(self, register: RegisterLogSink) -> None:
        for sink in self.sinks:
            register(sink)


def host_with(*extras: Extra, strict: bool = False) -> Any:
    named = {f"extra{i}": extra for i, extra in enumerate(extras)}
    return make_host(strict=strict, logging=logging_plugin, **named)


# -- format codes ---------------------------------------------------------------------------------
def test_go_formats_keep_their_one_byte_and_others_name_themselves() -> None:
    for name, code in FORMAT_CODES.items():
        meta = metadata_byte(True, 7, name)
        assert meta == bytes([1 | 7 << 2 | code << 6])
        assert unpack_metadata(meta) == (True, 7, name)
    meta = metadata_byte(False, 19, "jsonl")
    assert meta[0] >> 6 == EXTENSION_CODE == 3
    assert meta[1:] == b"jsonl"
    assert unpack_metadata(meta) == (False, 3, "jsonl")  # version masked to 4 bits as for Go formats
    assert EXTENSION_CODE not in FORMAT_CODES.values()


@pytest.mark.parametrize(
    ("fmt", "why"),
    [
        (Renamed("arrow2", code=1), "code 1 is Go Inferflow's 'arrow' format"),
        (Renamed("zip", code=7), "code 7 is not a format code"),
        (Renamed("proto"), "the name of a Go Inferflow format must come with its code 0"),
        (Renamed("JSONL"), "lower case"),
        (Renamed("x" * 65), "at most 64 bytes"),
    ],
)
def test_a_format_that_could_be_misread_is_refused_at_registration(fmt: Any, why: str) -> None:
    host = host_with(Extra(formats=(fmt,)))
    reg = host.collect()
    assert fmt.name not in reg.registered("register_log_formats") or fmt.name == "proto"
    assert reg.registered("register_log_formats").get("proto") is not fmt
    (failure,) = host.failures
    assert failure.name == "extra0"
    assert why in failure.error, failure.error
    with pytest.raises(PluginError, match=why.split("'")[0]):
        host_with(Extra(formats=(fmt,)), strict=True).collect()


def test_two_formats_of_one_name_are_refused() -> None:
    host = host_with(Extra(formats=(Renamed("feather"),)), Extra(formats=(Renamed("feather"),)))
    reg = host.collect()
    assert "feather" in reg.registered("register_log_formats")
    assert len(host.failures) == 1
    assert "already registered" in host.failures[0].error


def test_a_sink_named_like_a_switch_is_refused() -> None:
    host = host_with(Extra(sinks=(ListSink("none"),)))
    reg = host.collect()
    assert "none" not in reg.registered("register_log_sinks")
    assert "other than auto, none" in host.failures[0].error


# -- selection -------------------------------------------------------------------------------------
def test_service_config_accepts_any_registered_format_and_refuses_others() -> None:
    runtime = Runtime(host=host_with(Extra(formats=(Renamed("feather"),))))
    key = runtime.settings.service_config_key
    snap = runtime.apply_tree({key: json.dumps({"v2-logging-type": "Feather"})})
    assert snap.service_error is None
    assert snap.service.v2_logging_type == "feather"
    snap = runtime.apply_tree({key: json.dumps({"v2-logging-type": "avro"})})
    assert snap.service_error == (
        "service-config: v2-logging-type 'avro' is not an installed log format "
        "(installed: arrow, feather, parquet, proto)"
    )
    assert snap.service.v2_logging_type == "feather"  # the last good one keeps logging
    leaves = runtime.apply_tree({key + "/v2-logging-type": "parquet"})  # the leaf-key layout too
    assert leaves.service_error is None
    assert leaves.service.v2_logging_type == "parquet"


def test_a_registered_format_and_sink_log_and_read_back(tmp_path: Path) -> None:
    """An extension format selected by service-config and a custom sink by INFERFLOW_LOG_SINK."""
    host = host_with(Extra(formats=(Renamed("feather"),), sinks=(ListSink(),)))
    reg = host.collect()
    ListSink.written = []
    logger = InferenceLogger(LoggingSettings(sink="memory", encoder="thread", linger_ms=0), Metrics())

    async def run() -> None:
        await logger.start(ObserverHost(Metrics(), reg.registered))
        served = Served(all_types_model(batch=10))
        logger.observe(await served.request(4, fmt="feather"))
        await logger.stop(5.0)

    asyncio.run(run())
    (msg,) = ListSink.written
    got = read_message(msg.value)
    assert got.format == "feather"
    assert got.entities == ["t0", "t1", "t2", "t3"]
    schemas = {msg.schema_key: _entries(msg.schema)}
    lines = list(decode_record(msg.value, schemas, reg.registered("register_log_formats")))
    assert [line["entity"] for line in lines] == got.entities
    assert lines[0]["format"] == "feather"
    assert lines[0]["features"] is not None
    unknown = list(decode_record(msg.value, schemas))  # only the built-ins: named, not guessed
    assert unknown[0]["features"] is None
    assert (
        "log format 'feather' is not installed (installed: arrow, parquet, proto)" in unknown[0]["undecoded"]
    )


def test_an_unknown_sink_fails_start_naming_the_installed_ones() -> None:
    reg = host_with(Extra(sinks=(ListSink(),))).collect()
    logger = InferenceLogger(LoggingSettings(sink="memroy"), Metrics())
    with pytest.raises(PluginError) as err:
        asyncio.run(logger.start(ObserverHost(Metrics(), reg.registered)))
    assert str(err.value) == (
        "INFERFLOW_LOG_SINK='memroy' is not an installed log sink "
        "(installed: file, kafka, memory; or auto, none)"
    )
    assert logger._thread is None
