"""Log sinks registered through ``register_log_sinks``: ``kafka`` (confluent-kafka) and ``file``.

A sink is a factory (``name``, ``create(settings, metrics)``) of a writer that the logging worker
thread owns: ``write(messages)`` never blocks on the network (the Kafka producer queues in librdkafka
and reports deliveries through callbacks served by ``poll``), ``flush(timeout)`` is for shutdown.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inferflow_core.api import Metrics, codecs

from .api import LoggingSettings, LogMessage


def _sink_error(metrics: Metrics, sink: str, kind: str, count: int = 1) -> None:
    metrics.count("logging.sink_errors", count, sink=sink, error_type=kind)


# ------------------------------------------------------------------------------------------- file
def varint(n: int) -> bytes:
    """The base-128 varint of a non-negative int (a record's length prefix)."""
    return codecs.varint(n)


def read_delimited(path: str | Path) -> Iterator[bytes]:
    """The varint-length-delimited records of a ``.binpb`` log file (protobuf's delimited framing)."""
    data = Path(path).read_bytes()
    pos = 0
    while pos < len(data):
        length = shift = 0
        while True:
            if pos >= len(data):
                raise ValueError(f"{path}: truncated length prefix at byte {pos}")
            byte = data[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if pos + length > len(data):
            raise ValueError(f"{path}: truncated record at byte {pos} ({length} bytes announced)")
        yield data[pos : pos + length]
        pos += length


def schema_path(log_file: str | Path) -> Path:
    """The sidecar holding the schemas of the models logged in ``log_file``."""
    return Path(str(log_file) + ".schema.json")


_IOV_MAX = 1024  # Linux's IOV_MAX


def _writev_all(fd: int, parts: list[bytes]) -> None:
    """Write every part, in order, with as few ``writev`` calls as the kernel allows."""
    start = 0
    while start < len(parts):
        group = parts[start : start + _IOV_MAX]
        written = os.writev(fd, group)
        for part in group:
            if written >= len(part):
                written -= len(part)
                start += 1
                continue
            parts[start] = part[written:]  # a short write: the rest of this part goes next
            break


PREALLOCATE_BYTES = 8 << 20  # disk space reserved ahead of the file's end at a time


class _Fallocate:
    """Linux ``fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length)``: reserve disk blocks past the end
    of a file without changing its size (readers see only what was written). None where unavailable."""

    KEEP_SIZE = 1

    def __init__(self) -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        self._call = libc.fallocate
        self._call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
        self._errno = ctypes.get_errno

    def __call__(self, fd: int, offset: int, length: int) -> None:
        if self._call(fd, self.KEEP_SIZE, offset, length) != 0:
            err = self._errno()
            raise OSError(err, os.strerror(err))


def _fallocate() -> _Fallocate | None:
    try:
        return _Fallocate()
    except (OSError, AttributeError):  # not Linux / no glibc symbol
        return None


class FileWriter:
    """Appends delimited KafkaRequest bytes to ``<dir>/<topic>-<UTC yyyymmddHHMMSS>-<n>.binpb``.

    Rotates by size and age, and when a model's schema changes inside one file, so each file's sidecar
    ``.schema.json`` names exactly one schema per model.

    Disk space is reserved :data:`PREALLOCATE_BYTES` at a time ahead of the writes (``fallocate`` with
    ``FALLOC_FL_KEEP_SIZE``; the file's size is only what was written): on ext4 an append into reserved
    blocks costs the writer ~40 % less kernel time than one that allocates them page by page (a parquet
    S1 request writes ~350 KB), as long as the page cache absorbs the writes; under GBs of sustained
    writes with writeback running flat out, copying into fresh page-cache pages dominates and the gain
    is within the noise. What is left over is released when the file is closed; a file system without
    ``fallocate`` (tmpfs gains nothing from it either way) is written without reservation.
    """

    def __init__(self, settings: LoggingSettings, metrics: Metrics) -> None:
        self.dir = Path(settings.log_dir)
        self.topic = settings.topic
        self.max_bytes = settings.file_max_bytes
        self.max_age = settings.file_max_age_s
        self.metrics = metrics
        self._file: Any = None  # an unbuffered FileIO
        self._path: Path | None = None
        self._opened = 0.0
        self._size = 0
        self._seq = 0
        self._schemas: dict[str, list[list[str]]] = {}
        self.paths: list[Path] = []
        self._fallocate = _fallocate()
        self._reserved = 0  # bytes of the open file reserved on disk (0: none, or not possible)

    def _open(self) -> None:
        self.close()
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        while True:
            path = self.dir / f"{self.topic}-{stamp}-{self._seq}.binpb"
            self._seq += 1
            try:
                self._file = open(path, "xb", buffering=0)  # noqa: SIM115 - owned until rotation
                break
            except FileExistsError:
                continue
        self._path, self._opened, self._size, self._schemas = path, time.monotonic(), 0, {}
        self._reserved = 0
        self.paths.append(path)

    def _reserve(self, end: int) -> None:
        """Reserve disk blocks up to past ``end`` (best effort; never again for this file on failure)."""
        if self._fallocate is None or self._reserved < 0 or end <= self._reserved:
            return
        start = self._reserved
        length = max(PREALLOCATE_BYTES, end - start)
        try:
            self._fallocate(self._file.fileno(), start, length)
        except OSError as exc:  # the write reports ENOSPC; a file system without it: never again
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS):
                self._fallocate = None
            self._reserved = -1
            return
        self._reserved = start + length

    def _note_schema(self, msg: LogMessage) -> None:
        known = self._schemas.get(msg.schema_key)
        if known is msg.schema or known == msg.schema:
            self._schemas[msg.schema_key] = msg.schema  # the identity check in ``write`` is then enough
            return
        if known is not None:
            self._open()  # schema changed: start a new file so the sidecar stays unambiguous
        self._schemas[msg.schema_key] = msg.schema
        assert self._path is not None
        tmp = schema_path(self._path).with_suffix(".tmp")
        tmp.write_text(json.dumps({"schemas": self._schemas}), encoding="utf-8")
        os.replace(tmp, schema_path(self._path))

    def write(self, messages: list[LogMessage]) -> None:
        """Append ``messages``: one ``writev`` per file for the whole batch (no copy of the values)."""
        pending: list[bytes] = []
        counts: dict[str, int] = {}
        pending_ids: list[str] = []
        for msg in messages:
            try:
                if self._file is None or self._size >= self.max_bytes or self._expired():
                    self._write_out(pending, pending_ids, counts)
                    self._open()
                if self._schemas.get(msg.schema_key) is not msg.schema:
                    self._write_out(pending, pending_ids, counts)  # a rotation must not split the batch
                    self._note_schema(msg)
            except OSError as exc:
                self._failed([msg.model_id], exc)
                continue
            head = varint(len(msg.value))
            pending += (head, msg.value)
            pending_ids.append(msg.model_id)
            self._size += len(head) + len(msg.value)
        self._write_out(pending, pending_ids, counts)
        for model_id, n in counts.items():
            self.metrics.count("logging.logged", n, model_id=model_id, sink="file")

    def _write_out(self, pending: list[bytes], ids: list[str], counts: dict[str, int]) -> None:
        """Write ``pending`` (head, value, ...) to the open file and clear it; count per model."""
        if not pending:
            return
        try:
            assert self._file is not None
            self._reserve(self._size)
            _writev_all(self._file.fileno(), pending)
            for model_id in ids:
                counts[model_id] = counts.get(model_id, 0) + 1
        except OSError as exc:
            self._failed(ids, exc)
        pending.clear()
        ids.clear()

    def _failed(self, ids: list[str], exc: OSError) -> None:
        _sink_error(self.metrics, "file", type(exc).__name__, len(ids))
        for model_id in ids:
            self.metrics.count("logging.error", model_id=model_id, error_type="file-write-error")

    def _expired(self) -> bool:
        return time.monotonic() - self._opened >= self.max_age

    def poll(self) -> None:
        if self._file is not None and self._expired():
            self.close()

    def flush(self, timeout: float) -> int:
        return 0  # unbuffered: every batch is written when ``write`` returns

    def close(self) -> None:
        if self._file is not None:
            if self._reserved > 0:  # release the reserved blocks past the end (the size stays)
                with contextlib.suppress(OSError):
                    fd = self._file.fileno()
                    os.ftruncate(fd, os.fstat(fd).st_size)
            self._file.close()
            self._file = None


class FileSink:
    name = "file"

    def create(self, settings: LoggingSettings, metrics: Metrics) -> FileWriter:
        return FileWriter(settings, metrics)


# ------------------------------------------------------------------------------------------- kafka
class KafkaWriter:
    """confluent-kafka producer: async, no key, no headers; deliveries counted by model id."""

    def __init__(self, settings: LoggingSettings, metrics: Metrics) -> None:
        from confluent_kafka import Producer

        self.metrics = metrics
        self.topic = settings.topic
        conf: dict[str, Any] = {
            "bootstrap.servers": settings.bootstrap_servers(),
            "compression.type": settings.kafka_compression,
            "linger.ms": 10,  # Go Inferflow's 10 ms batch timeout
            "queue.buffering.max.messages": 100_000,
            "queue.buffering.max.kbytes": 131_072,
            "message.timeout.ms": 120_000,
            "reconnect.backoff.max.ms": 2_000,
            "error_cb": self._on_error,
            "logger": logging.getLogger("inferflow.logging.kafka"),  # librdkafka logs via Python logging
        }
        conf.update(settings.kafka_config)
        self.producer = Producer(conf)

    def _on_error(self, err: Any) -> None:
        _sink_error(self.metrics, "kafka", str(err.name()) if hasattr(err, "name") else "error")

    def _delivered(self, model_id: str) -> Any:
        def report(err: Any, _msg: Any) -> None:
            if err is None:
                self.metrics.count("logging.kafka_sent", model_id=model_id)
            else:
                self.metrics.count("logging.error", model_id=model_id, error_type="kafka-v2-error")
                _sink_error(self.metrics, "kafka", "delivery_failed")

        return report

    def write(self, messages: list[LogMessage]) -> None:
        from confluent_kafka import KafkaException

        for msg in messages:
            try:
                self.producer.produce(self.topic, value=msg.value, on_delivery=self._delivered(msg.model_id))
                self.metrics.count("logging.logged", model_id=msg.model_id, sink="kafka")
            except BufferError:  # librdkafka's local queue is full (broker away for long): drop, count
                self.metrics.count("logging.dropped", reason="sink_full")
                self.metrics.count("logging.error", model_id=msg.model_id, error_type="kafka-v2-error")
                _sink_error(self.metrics, "kafka", "queue_full")
            except KafkaException as exc:
                self.metrics.count("logging.error", model_id=msg.model_id, error_type="kafka-v2-error")
                _sink_error(self.metrics, "kafka", str(exc.args[0].name()) if exc.args else "error")
        self.producer.poll(0)

    def poll(self) -> None:
        self.producer.poll(0)

    def flush(self, timeout: float) -> int:
        return int(self.producer.flush(max(0.0, timeout)))

    def close(self) -> None:
        self.producer.poll(0)


class KafkaSink:
    name = "kafka"

    def create(self, settings: LoggingSettings, metrics: Metrics) -> KafkaWriter:
        return KafkaWriter(settings, metrics)


SINKS = {s.name: s for s in (KafkaSink(), FileSink())}
