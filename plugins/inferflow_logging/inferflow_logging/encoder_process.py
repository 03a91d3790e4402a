"""The server side of the encoder process (:mod:`.procworker`): start, feed, read counters, restart, stop.

Owned by the logger's thread: starting a child and writing frames to its pipe may block. The event
loop only calls :meth:`EncoderProcess.offer` and :meth:`EncoderProcess.flush`, which try the encoder's
lock, copy into the shared-memory ring and write descriptors without ever waiting. A child that dies
is restarted (``logging.worker_restarts``) with a growing pause when it dies right after starting; the
requests it had been sent but not finished are counted as dropped (``reason=worker_crash``). Never
raises into the logger.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from .procworker import (
    RingHandle,
    apply_deltas,
    child_main,
    enlarge_pipe,
    frame_size,
    pack_frame,
    pack_request,
    write_frames,
)
from .records import Extracted
from .schema import LogSchema
from .settings import LoggingSettings

log = logging.getLogger("inferflow.logging")
MAX_BACKOFF_S = 5.0
RING_BYTES = 8 << 20  # shared-memory ring the request frames are copied into (~80 S1 requests)


class EncoderProcess:
    def __init__(
        self, settings: LoggingSettings, formats: Mapping[str, Any], sink: Any, metrics: Any
    ) -> None:
        self.settings = settings
        self.formats = dict(formats)
        self.sink = sink
        self.metrics = metrics
        self.proc: Any = None
        self._data: Any = None
        self._stats: Any = None
        self._schemas: dict[int, tuple[LogSchema, int]] = {}
        self.sent = 0  # requests sent to the current child
        self.done = 0  # ... of which it reported finished
        self.starts = 0
        self.ready = False  # the current child has reported (it is up and reading its pipe)
        self._started_at = 0.0
        self._backoff = 0.25
        self._stopping = False  # set by ``kill``: a dead child is then not restarted
        self._retry_at = 0.0  # after a start that failed: not tried again before this (monotonic)
        self._ring_fd = -1
        self._map: mmap.mmap | None = None
        self._ring: memoryview | None = None  # the shared-memory ring (None: frames go through the pipe)
        self._ring_size = 0
        self._pending = bytearray()  # ``ring`` descriptors offered, to be written in ring order
        self._head = 0  # ring position (bytes ever reserved) where the next frame goes
        self._tail = 0  # ring position up to which the child has finished every frame
        # held by the logging thread while it uses the child; the event loop only tries it (``offer``)
        self._lock = threading.RLock()
        self.ring_frames = 0  # request frames sent through the ring ...
        self.pipe_frames = 0  # ... and through the pipe itself

    def _open_ring(self) -> RingHandle | None:
        """The ring for the child to map; None where memfd is unavailable."""
        if self._ring is None:
            try:
                fd = os.memfd_create("inferflow-logging-ring")
                os.ftruncate(fd, RING_BYTES)
                self._map = mmap.mmap(fd, RING_BYTES)
            except (AttributeError, OSError) as exc:
                log.info("inference logging: no shared-memory ring (%s), frames go through the pipe", exc)
                return None
            self._ring, self._ring_fd, self._ring_size = memoryview(self._map), fd, RING_BYTES
        self._head = self._tail = 0
        return RingHandle(self._ring_fd, self._ring_size)

    def _close_ring(self) -> None:
        if self._ring is not None and self._map is not None:
            self._ring.release()
            self._map.close()
            os.close(self._ring_fd)
            self._ring, self._map, self._ring_fd = None, None, -1

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs gRPC
        data_r, data_w = ctx.Pipe(duplex=False)
        stats_r, stats_w = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=child_main,
            args=(self.settings, self.formats, self.sink, data_r, stats_w, self._open_ring()),
            name="inferflow-logging-encoder",
            daemon=True,
        )
        proc.start()
        data_r.close()
        stats_w.close()
        enlarge_pipe(data_w.fileno())
        os.set_blocking(data_w.fileno(), False)  # ``offer`` on the event loop must never wait
        enlarge_pipe(stats_r.fileno())  # room for the child's reports while this thread is in a writev
        self.proc, self._data, self._stats = proc, data_w, stats_r
        self._schemas.clear()
        self._pending.clear()  # descriptors for the child that died (counted as lost with ``sent``)
        self.sent = self.done = 0
        self.ready = False
        self.starts += 1
        self._started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def ensure(self) -> bool:
        """Restart a dead child (counted); False while pausing after a child that died at once, and for
        :data:`MAX_BACKOFF_S` after a start that failed (each batch does not try again)."""
        with self._lock:
            if self.alive():
                return True
            if self._stopping:
                if self.proc is not None:
                    self._crashed()
                return False
            if self.proc is not None:
                self._crashed()
                quick = time.monotonic() - self._started_at < 2.0
                self._backoff = min(MAX_BACKOFF_S, self._backoff * 2) if quick else 0.25
                if quick:
                    time.sleep(self._backoff)
            if time.monotonic() < self._retry_at:
                return False
            try:
                self.start()
            except Exception:
                log.exception(
                    "inference logging: cannot start the encoder process (next try in %.0fs)", MAX_BACKOFF_S
                )
                self.proc = None
                self._retry_at = time.monotonic() + MAX_BACKOFF_S
                return False
            return True

    def _crashed(self) -> None:
        self.pump()
        lost = max(0, self.sent - self.done)
        code = self.proc.exitcode if self.proc is not None else None
        if self._stopping:  # killed by ``stop`` after the grace period
            if lost:
                self.metrics.count("logging.dropped", lost, reason="shutdown")
            self._close()
            return
        log.error("inference logging: encoder process died (exit code %s); %d requests lost", code, lost)
        self.metrics.count("logging.worker_restarts")
        if lost:
            self.metrics.count("logging.dropped", lost, reason="worker_crash")
        self._close()

    def _close(self) -> None:
        for conn in (self._data, self._stats):
            with contextlib.suppress(OSError):
                conn.close()
        self._data = self._stats = None
        if self.proc is not None:
            self.proc.join(0.1)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(1.0)
        self.proc = None

    # -- work -------------------------------------------------------------------------------------
    def offer(self, schema: LogSchema, extracted: Extracted) -> bool:
        """From the event loop: copy one request's frame into the ring and queue its descriptor (written
        by :meth:`flush`, or by the thread before anything else it sends), without ever waiting. False
        when that cannot be done now (the logging thread holds the encoder, the child is not up, the ring
        has no room, the frame is too large): the caller then queues the request for the logging thread,
        which sends it with :meth:`send`."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._ring is None or self._data is None or self._stopping:
                return False
            head, known = self._head, dict(self._schemas)
            sid, schema_frame = self._schema_id(schema)
            descriptors: list[Any] = []
            for frame in (schema_frame, pack_request(sid, extracted)):
                placed = self._place(frame, None) if frame else []
                if placed is None:  # undo: the child must see every frame it is told of
                    self._head, self._schemas = head, known
                    return False
                descriptors += placed
            for descriptor in descriptors:
                self._pending += descriptor
            self.sent += 1
            self.ring_frames += 1
            return True
        finally:
            self._lock.release()

    @property
    def pending(self) -> int:
        """Bytes of descriptors :meth:`offer` queued that are not written to the child yet."""
        return len(self._pending)

    def flush(self) -> bool:
        """From the event loop: write the descriptors :meth:`offer` queued (one non-blocking write; what
        the pipe does not take stays queued). False when the logging thread holds the encoder."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._pending and self._data is not None:
                try:
                    written = os.write(self._data.fileno(), self._pending)
                except BlockingIOError:
                    return True
                except OSError:  # the child died: the thread counts what it had been sent
                    self._pending.clear()
                    return True
                del self._pending[:written]
            return True
        finally:
            self._lock.release()

    def _schema_id(self, schema: LogSchema) -> tuple[int, list[Any]]:
        """The id the child knows ``schema`` by, and the frame that tells it (empty when it knows)."""
        got = self._schemas.get(id(schema))
        if got is not None and got[0] is schema:
            return got[1], []
        sid = len(self._schemas) + 1
        self._schemas[id(schema)] = (schema, sid)
        return sid, pack_frame(("schema", sid, schema))

    def send(self, items: list[tuple[LogSchema, Extracted]]) -> None:
        """Send one batch with one ``writev`` (what cannot be sent is counted as dropped), after the
        ring descriptors :meth:`offer` queued (all an empty batch sends)."""
        if not items and not self._pending:
            return
        with self._lock:
            if items:
                self._send(items)
            elif self._pending and self._data is not None:
                with contextlib.suppress(OSError):  # a dead child: ``ensure`` counts what it lost
                    write_frames(self._data.fileno(), [bytes(self._pending)])
                self._pending.clear()

    def _send(self, items: list[tuple[LogSchema, Extracted]]) -> None:
        if not self.ensure():
            reason = "shutdown" if self._stopping else "worker_down"
            self.metrics.count("logging.dropped", len(items), reason=reason)
            return
        parts: list[Any] = [bytes(self._pending)] if self._pending else []  # ring order kept
        self._pending.clear()
        for schema, extracted in items:
            sid, schema_frame = self._schema_id(schema)
            parts += schema_frame
            frame = pack_request(sid, extracted)
            placed = self._place(frame, parts)
            if placed is None:
                self.pipe_frames += 1
                parts += frame
            else:
                self.ring_frames += 1
                parts += placed
        try:
            write_frames(self._data.fileno(), parts)
        except OSError:  # the child died mid-batch: these were never finished
            self.sent += len(items)
            self.ensure()
            return
        self.sent += len(items)
        self.pump()

    def _place(self, frame: list[Any], pending: list[Any] | None) -> list[Any] | None:
        """Copy ``frame`` into the ring; its ``ring`` descriptor frame, or None to send it inline.

        Without room in the ring: None at once when ``pending`` is None (the event loop's
        :meth:`offer`), else (the logging thread; the bounded queue in front drops when it is full)
        waits for the child to free some, after sending it ``pending``.
        """
        ring, ring_size = self._ring, self._ring_size
        size = frame_size(frame)
        if ring is None or size > ring_size // 4:
            return None
        offset = self._head % ring_size
        skip = ring_size - offset if offset + size > ring_size else 0  # a frame never wraps
        end = self._head + skip + size
        if end - self._tail > ring_size:
            self.pump()
            if end - self._tail > ring_size and pending is None:
                return None
            if end - self._tail > ring_size:
                assert pending is not None
                write_frames(self._data.fileno(), pending)
                pending.clear()
                while end - self._tail > ring_size:
                    if not self.alive():
                        return None  # the write below fails and the batch is counted as lost
                    if self._stats.poll(0.05):
                        self.pump()
        offset = (self._head + skip) % ring_size
        pos = offset
        for part in frame:
            if isinstance(part, np.ndarray):  # a column block or mask, strided or not: one copy
                np.ndarray(part.shape, part.dtype, ring, pos)[...] = part
                pos += part.nbytes
                continue
            n = len(part) if not isinstance(part, memoryview) else part.nbytes
            ring[pos : pos + n] = part
            pos += n
        self._head = end
        return pack_frame(("ring", end, offset))

    def pump(self) -> bool:
        """Apply the counter deltas the child sent; True when its final report arrived."""
        with self._lock:
            final = False
            try:
                while self._stats is not None and self._stats.poll(0):
                    final |= self._apply(self._stats.recv())
            except (EOFError, OSError):
                pass
            return final

    def _apply(self, msg: tuple) -> bool:
        self.ready = True
        if msg[0] == "freed":
            self._tail = msg[1]
            return False
        _, done, deltas, final, pending = msg
        self.done = done
        apply_deltas(self.metrics, deltas)
        if final and pending:
            self.metrics.count("logging.dropped", pending, reason="shutdown")
        return bool(final)

    def stop(self, deadline: float) -> None:
        """Let the child finish what it was sent and flush its sink by ``deadline``; count the rest."""
        with self._lock:
            if self.proc is None:
                return
            final = False
            try:
                remaining = max(0.0, deadline - time.monotonic())
                stop = pack_frame(("stop", max(0.0, remaining - 0.05)))
                write_frames(self._data.fileno(), [bytes(self._pending), *stop])
                self._pending.clear()
                while (
                    not final
                    and time.monotonic() < deadline
                    and self._stats.poll(max(0.0, deadline - time.monotonic()))
                ):
                    final = self._apply(self._stats.recv())
            except (EOFError, OSError):
                pass
            lost = max(0, self.sent - self.done)
            if lost:
                self.metrics.count("logging.dropped", lost, reason="shutdown")
            self._close()
            self._close_ring()

    def kill(self) -> None:
        """Stop the child now (``stop`` overran the grace period)."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.is_alive():
            proc.kill()
