"""The inference logger: a RequestObserver that samples on the event loop and does everything else on a
worker thread (and, with ``INFERFLOW_LOG_ENCODER=process``, a worker process), so a request never waits on
encoding or on a sink.

``observe`` decides (sampling, tracking id, format). With ``INFERFLOW_LOG_ENCODER=thread`` it
``put_nowait``s the finished request on a bounded queue (a full queue drops the request's log and counts
it); the worker thread derives (and caches) the model's schema, encodes, wraps and hands message values
to the sink. With ``process`` it extracts the request's column blocks itself (views) and copies them
into the encoder process's shared-memory ring (:mod:`.encoder_process`), which encodes and owns the
sink, so encoding does not compete with the event loop for the server's GIL; what the ring cannot take
at once goes to the worker thread through the same bounded queue. With ``auto`` (the default) a request
in one of :data:`.settings.PROCESS_FORMATS` goes the process way, any other the thread way. ``stop``
drains the queue within the grace period; what is left is counted as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import pickle
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from inferflow_core.api import Metrics, ObserverHost, ServedRequest

from .api import LogMessage, SinkWriter
from .encoder_process import EncoderProcess
from .formats import FORMATS
from .hookspecs import FORMATS_HOOK, SINKS_HOOK
from .records import (
    WRITE_BYTES,
    Encoded,
    Extracted,
    encode_counted,
    encode_extracted,
    encode_request,
    extract_request,
    message_bytes,
)
from .registration import format_name, unknown_format, unknown_sink
from .sampling import should_log
from .schema import LogSchema, SchemaCache, check_model_config
from .settings import PROCESS_FORMATS, LoggingSettings
from .sinks import SINKS

log = logging.getLogger("inferflow.logging")
_STOP = object()


METRIC_HELP = {
    "logging.logged": "Inference-log records handed to the sink, by model",
    "logging.entities": "Targets (entities) in the inference-log records written",
    "logging.error": "Inference-log records that could not be written (the reference's logging.error)",
    "logging.kafka_sent": "Inference-log messages acknowledged by Kafka (the reference's logging.kafka_sent)",
    "logging.queue_depth": "Inference-log records waiting in the bounded queue",
    "logging.encode_errors": "Inference-log records that failed to encode in the configured format",
    "logging.sink_errors": "Writes to the log sink that failed",
    "logging.worker_restarts": "Restarts of the inference-log encoder process after it died",
}


def _name_native_thread(name: bytes) -> None:
    """Name the calling thread for the OS (``top -H``, ``/proc/<pid>/task/*/comm``; Linux, best effort)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(15, name[:15], 0, 0, 0)  # PR_SET_NAME


class InferenceLogger:
    """Registered through ``register_request_observers``. See the module docstring."""

    BATCH = 64  # requests encoded per sink write at most (whatever is queued when the worker wakes)

    def __init__(
        self,
        settings: LoggingSettings | None = None,
        metrics: Metrics | None = None,
        formats: Mapping[str, Any] | None = None,
        sinks: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings or LoggingSettings()
        self.metrics = metrics or Metrics()
        self.formats = dict(formats or FORMATS)
        self.sinks = dict(sinks or SINKS)
        self.schemas = SchemaCache()
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=self.settings.queue_size)
        self.writer: SinkWriter | None = None
        self._thread: threading.Thread | None = None
        self.encoder: EncoderProcess | None = None  # process mode only
        self._deadline = 0.0  # set by ``stop``: when the process worker must be done
        self._lock = threading.Lock()
        self._queued = 0  # process mode: lists of extracted requests the event loop queued ...
        self._handled = 0  # ... and of those, how many the logging thread has sent (one writer each)
        self._flush_due = False  # process mode: a flush of the ring descriptors is scheduled
        self.offered = 0  # process mode: logs the event loop put in the encoder's ring itself
        self._all_in_process = False  # INFERFLOW_LOG_ENCODER=process (``auto``: only PROCESS_FORMATS)
        self._warned: set[tuple[str, str]] = set()

    def bind(
        self,
        metrics: Metrics | None = None,
        formats: Mapping[str, Any] | None = None,
        sinks: Mapping[str, Any] | None = None,
    ) -> None:
        """Share the host's metrics registry and every registered format and sink (``start`` does this)."""
        if metrics is not None:
            self.metrics = metrics
        if formats:
            self.formats.update(formats)
        if sinks:
            self.sinks.update(sinks)

    # -- request path (event loop) ----------------------------------------------------------------
    def observe(self, served: ServedRequest) -> None:
        """Decide and enqueue; never blocks, never raises."""
        try:
            request = served.ctx.request
            perc = served.model.config.response_config.logging_perc
            if not should_log(request.api, request.tracking_id, request.user_id, perc):
                return
            fmt = format_name(served.service)
            if fmt not in self.formats:  # config validation refuses it: only a bypassed check gets here
                self.metrics.count(
                    "logging.error", model_id=served.model.model_id, error_type="unknown_format"
                )
                if ("", str(fmt)) not in self._warned:
                    self._warned.add(("", str(fmt)))
                    log.error("inference logging: %s", unknown_format(str(fmt), self.formats))
                return
            if self._thread is None:
                self._start_worker()
            if self.encoder is not None and (self._all_in_process or fmt in PROCESS_FORMATS):
                self._offer(served)
                return
            self.queue.put_nowait(served)
        except queue.Full:
            self.metrics.count("logging.dropped", reason="queue_full")
        except Exception:  # an observer must never break serving
            log.exception("inference logging: observe failed")

    def _offer(self, served: ServedRequest) -> None:
        """Process mode, on the event loop: extract the request's column blocks (views) and copy them
        into the encoder's ring, a few dozen microseconds and no hand-off to a thread; what the ring
        cannot take now goes to the logging thread through the bounded queue (``queue.Full`` when it
        is full, counted by ``observe``)."""
        encoder = self.encoder
        assert encoder is not None
        items = self.extract(served)
        if self._queued == self._handled:  # never ahead of requests the thread has still to send
            while items and encoder.offer(*items[0]):
                items.pop(0)
                self.offered += 1
        if encoder.pending and not self._flush_due:
            self._schedule_flush()
        if items:
            self.queue.put_nowait(items)
            self._queued += 1

    def _schedule_flush(self) -> None:
        """Write the ring descriptors once per linger period, not per request: one pipe write (and one
        wake-up of the child) per batch; at once when there is no running loop or no linger."""
        delay = self.settings.linger_ms / 1000.0
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or not delay:
            if self.encoder is not None:
                self.encoder.flush()  # else the logging thread writes them within 0.1 s
            return
        self._flush_due = True
        loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        encoder = self.encoder
        if encoder is not None and (not encoder.flush() or encoder.pending):
            self._schedule_flush()  # the thread holds the encoder, or the pipe was full: later

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self, host: ObserverHost | None = None) -> None:
        if host is not None:
            self.bind(host.metrics, host.registered(FORMATS_HOOK), host.registered(SINKS_HOOK))
            declare = getattr(host.metrics, "declare", None)
            if declare is not None:  # scraped (and on the dashboard) before the first drop
                for name, text in METRIC_HELP.items():
                    host.metrics.describe(name, text)
                declare("counter", "logging.dropped", ("reason",))
        self._start_worker()

    def _start_worker(self) -> None:
        """Start the worker; an ``INFERFLOW_LOG_SINK`` naming no installed sink is a PluginError (the
        server does not start)."""
        with self._lock:
            if self._thread is not None:
                return
            name = self.settings.effective_sink()
            if name != "none" and name not in self.sinks:
                raise unknown_sink(name, self.sinks)
            self.encoder = self._make_encoder()
            self._all_in_process = self.encoder is not None and self.settings.encoder == "process"
            if not self._all_in_process:
                self.writer = self._make_writer()
            run = self._run if self.encoder is None else self._run_process
            self._thread = threading.Thread(target=run, name="inferflow-logging", daemon=True)
            self._thread.start()

    def _make_encoder(self) -> EncoderProcess | None:
        """The process encoder when configured (``process``, or ``auto`` for :data:`PROCESS_FORMATS`) and
        its formats and sink can be sent to a child; ``auto`` starts the child with the first such log."""
        if self.settings.encoder == "thread":
            return None
        name = self.settings.effective_sink()
        sink = None if name == "none" else self.sinks[name]
        try:
            pickle.dumps((self.settings, self.formats, sink))
        except Exception as exc:
            log.warning("inference logging: encoding in the server process (%s cannot go to a child)", exc)
            return None
        if self.settings.encoder == "auto":
            if sink is not None:
                log.info(
                    "inference logging: %s logs are encoded in a child process", "/".join(PROCESS_FORMATS)
                )
        elif sink is None:
            log.warning("inference logging is disabled (INFERFLOW_LOG_SINK=none)")
        else:
            log.info(
                "inference logs go to %s (%s, topic %s), encoder process",
                name,
                self._where(name),
                self.settings.topic,
            )
        return EncoderProcess(self.settings, self.formats, sink, self.metrics)

    def _make_writer(self) -> SinkWriter | None:
        name = self.settings.effective_sink()
        if name == "none":
            log.warning("inference logging is disabled (INFERFLOW_LOG_SINK=none)")
            return None
        writer = self.sinks[name].create(self.settings, self.metrics)
        log.info("inference logs go to %s (%s, topic %s)", name, self._where(name), self.settings.topic)
        return writer

    def _where(self, sink: str) -> str:
        if sink == "kafka":
            return self.settings.bootstrap_servers()
        return self.settings.log_dir if sink == "file" else f"sink {sink}"

    async def stop(self, grace_s: float) -> None:
        """Drain the queue and flush the sink within ``grace_s``; count what could not be written."""
        thread = self._thread
        if thread is None:
            return
        lost_before = self.metrics.value("logging.dropped", reason="shutdown")
        deadline = time.monotonic() + max(0.0, grace_s)
        self._deadline = deadline
        with contextlib.suppress(queue.Full):  # off the loop: a full queue makes this put wait
            await asyncio.to_thread(self.queue.put, _STOP, True, max(0.001, grace_s))
        await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))
        overran = thread.is_alive()
        if self.encoder is not None and thread.is_alive():
            self.encoder.kill()  # overran the grace period: its pipe breaks and the thread ends
            await asyncio.to_thread(thread.join, 1.0)
        left = 0
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            left += item is not _STOP
        if thread.is_alive():  # an overrunning worker took what it took; let it end when it gets here
            with contextlib.suppress(queue.Full):
                self.queue.put_nowait(_STOP)
        if left:
            self.metrics.count("logging.dropped", left, reason="shutdown")
        if self.writer is not None and not thread.is_alive():
            pending = await asyncio.to_thread(self.writer.flush, max(0.0, deadline - time.monotonic()))
            if pending:
                self.metrics.count("logging.dropped", pending, reason="shutdown")
            close = getattr(self.writer, "close", None)
            if close is not None:
                close()
        self._thread = None
        self.metrics.gauge("logging.queue_depth", 0)
        self._report_losses(
            self.metrics.value("logging.dropped", reason="shutdown") - lost_before, overran, grace_s
        )

    def _report_losses(self, lost: float, overran: bool, grace_s: float) -> None:
        """One application-log line at shutdown saying what was not written (counts only, no content)."""
        full = int(self.metrics.value("logging.dropped", reason="queue_full"))
        earlier = f"; {full} dropped earlier because the queue was full" if full else ""
        if lost or overran:
            busy = " (the worker was still busy: logs in flight may be lost too)" if overran else ""
            log.warning(
                "inference logging: %d log record(s) lost at shutdown, not written within the %.1fs grace"
                " period%s%s",
                int(lost),
                grace_s,
                busy,
                earlier,
            )
        elif full:
            log.warning("inference logging: stopped, queue drained%s", earlier)
        else:
            log.info("inference logging: stopped, every queued log record was written")

    # -- worker thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        _name_native_thread(b"inferflow-log")
        while True:
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                self._idle()
                continue
            if item is not _STOP and self.settings.linger_ms:
                time.sleep(self.settings.linger_ms / 1000.0)  # let a batch gather (the GIL is free)
            batch = [item]  # whatever queued meanwhile too: one sink write for all of it
            while item is not _STOP and len(batch) < self.BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
            self.metrics.gauge("logging.queue_depth", self.queue.qsize())
            self._encode_and_write(batch)
            if batch[-1] is _STOP:
                self._idle()
                return

    def _encode_and_write(self, batch: list[Any]) -> None:
        """Encode the requests of ``batch`` here and write them (:meth:`_write_chunked`)."""
        self._write_chunked(
            self.encode(served) for served in batch if served is not _STOP and not isinstance(served, list)
        )

    def _write_chunked(self, encoded: Iterable[list[LogMessage]]) -> None:
        """Write the messages of ``encoded`` (one list per request), a sink call per ~1 MiB."""
        messages: list[LogMessage] = []
        size = 0
        for got in encoded:
            messages += got
            size += message_bytes(got)
            if size >= WRITE_BYTES:  # written while the values are in the CPU cache
                self.write(messages)
                messages, size = [], 0
        self.write(messages)

    def _take_batch(self) -> list[Any] | None:
        """The next batch of queued requests (``_STOP`` last when stopping); None after an idle wait."""
        try:
            item = self.queue.get(timeout=0.1)
        except queue.Empty:
            return None
        if item is not _STOP and self.settings.linger_ms:
            time.sleep(self.settings.linger_ms / 1000.0)  # let a batch gather (the GIL is free)
        batch = [item]
        while item is not _STOP and len(batch) < self.BATCH:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            batch.append(item)
        self.metrics.gauge("logging.queue_depth", self.queue.qsize())
        return batch

    def _run_process(self) -> None:
        """Process and auto modes: send what the event loop could not put in the ring to the encoder
        process (starting it, restarting it when it died), and with ``auto`` encode and write the
        other formats' requests here."""
        _name_native_thread(b"inferflow-logfeed" if self._all_in_process else b"inferflow-log")
        encoder = self.encoder
        assert encoder is not None
        if self._all_in_process:
            encoder.ensure()
        while True:
            batch = self._take_batch()
            if batch is None:
                self._idle()
                if encoder.starts:
                    encoder.pump()
                    encoder.ensure()
                    encoder.send([])  # ring descriptors the event loop has not written yet
                continue
            # extracted on the event loop (what the ring could not take); with ``auto``, requests in
            # the formats encoded here
            items = [got for served in batch if isinstance(served, list) for got in served]
            if items and self.writer is not None and not self._child_ready(encoder):
                self._encode_extracted(items)  # ``auto`` while the child starts: no wait, no drop
                items = []
            encoder.send(items)
            self._handled += sum(isinstance(served, list) for served in batch)
            self._encode_and_write(batch)
            if batch[-1] is _STOP:
                encoder.stop(self._deadline)
                self.metrics.gauge("logging.queue_depth", self.queue.qsize())
                return

    @staticmethod
    def _child_ready(encoder: EncoderProcess) -> bool:
        """Whether the child has reported since it started (starting it when there is none yet)."""
        encoder.pump()
        if not encoder.starts:
            encoder.ensure()
        return encoder.ready

    def _encode_extracted(self, items: list[tuple[LogSchema, Extracted]]) -> None:
        """Encode extracted requests here and write them with this process's writer (``auto``)."""
        self._write_chunked(
            encode_counted(
                str(extracted.common["model_id"]),
                self.metrics,
                functools.partial(
                    encode_extracted, extracted, schema, self.formats[extracted.fmt_name], self.metrics
                ),
            )
            for schema, extracted in items
        )

    def extract(self, served: ServedRequest) -> list[tuple[LogSchema, Extracted]]:
        """The schema and column blocks of one request ([] when it cannot be logged). Never raises."""
        model_id = served.model.model_id
        try:
            schema, new = self.schemas.get(served.model)
            if new:
                self._check(served.model)
            fmt = self.formats[format_name(served.service)]
            got = extract_request(served, schema, fmt.name, self.metrics, self.settings.log_slates)
        except Exception as exc:
            self.metrics.count("logging.error", model_id=model_id, error_type="encoding_error")
            self.metrics.count("logging.encode_errors", model_id=model_id, error_type="encoding_error")
            log.warning("inference logging: model %s: encoding failed: %s", model_id, exc)
            return []
        return [] if got is None else [(schema, got)]

    def _idle(self) -> None:
        self.metrics.gauge("logging.queue_depth", self.queue.qsize())
        if self.writer is not None:
            try:
                self.writer.poll()
            except Exception:
                log.exception("inference logging: sink poll failed")

    def process(self, served: ServedRequest) -> int:
        """Encode one request and write it; returns the number of messages written. Never raises."""
        return self.write(self.encode(served))

    def encode(self, served: ServedRequest) -> list[LogMessage]:
        """The message values of one request (empty when it cannot be encoded). Never raises."""
        model_id = served.model.model_id

        def encode() -> Encoded:
            schema, new = self.schemas.get(served.model)
            if new:
                self._check(served.model)
            fmt = self.formats[format_name(served.service)]
            return encode_request(served, schema, fmt, self.metrics, self.settings.log_slates)

        return encode_counted(model_id, self.metrics, encode)

    def write(self, messages: list[LogMessage]) -> int:
        """Hand ``messages`` to the sink in one call; the number handed over. Never raises."""
        if self.writer is None or not messages:
            return 0
        try:
            self.writer.write(messages)
        except Exception as exc:
            self.metrics.count("logging.sink_errors", sink=self.settings.effective_sink(), error_type="write")
            log.warning("inference logging: sink write failed: %s", exc)
            return 0
        return len(messages)

    def _check(self, model: Any) -> None:
        for path, message in check_model_config(model):
            self.metrics.count("logging.error", model_id=model.model_id, error_type="cache_version_overflow")
            if (model.model_id, path) not in self._warned:
                self._warned.add((model.model_id, path))
                log.warning("inference logging: %s: %s", path, message)
