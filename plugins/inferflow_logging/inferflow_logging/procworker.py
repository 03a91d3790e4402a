"""The encoder process: formats, envelopes and the sink run in a child process, off the server's GIL.

The server's logging thread only extracts each request's column blocks (:func:`.records.extract_request`,
mostly views of the matrix) and copies each request's frame into a ring of shared memory (a ``memfd``
both processes map: one memcpy per buffer, no pickle of the data, no kernel copy); the pipe carries a
small ``ring`` descriptor per request (one ``writev`` per batch). Frames are pickle protocol 5 with the
numpy / Arrow buffers out of band::

    u64 payload length | u32 buffer count | u64 length of the pickle and of each buffer | pickle | buffers

A request frame's pickle holds plain tuples only (numpy's pickling costs microseconds per array): its
column blocks and masks are raw buffers after the pickle's own, named by position, copied into the ring
straight from the matrix's (possibly strided) views (:func:`pack_request`).

The child reads a frame in place in the ring and reports how far it has finished (``freed``) after each
batch it wrote, which is when the parent may overwrite that part of the ring. Frames too large for the
ring, schema frames and the stop frame travel through the pipe itself.

The child (started with the ``spawn`` context: it never forks a process running gRPC) rebuilds the
tables zero-copy over the frame, encodes with the same code as the thread encoder (identical bytes),
writes to its own sink (file or Kafka producer) and sends counter deltas back on a second pipe
together with how many requests it has finished, so the parent's ``/metrics`` shows them and a crash
loses only the requests sent but not finished (counted as dropped).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import pickle
import select
import struct
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .api import LogMessage
from .records import WRITE_BYTES, Extracted, encode_counted, encode_extracted, message_bytes
from .settings import LoggingSettings
from .table import CellGroup, LogColumn, LogTable, Part

log = logging.getLogger("inferflow.logging")
_HEAD = struct.Struct("<QI")
_F_SETPIPE_SZ = 1031  # Linux fcntl: a 1 MiB pipe takes a whole batch without waking the reader often
STATS_EVERY_S = 0.05


def enlarge_pipe(fd: int, size: int = 1 << 20) -> None:
    with contextlib.suppress(OSError, ImportError):
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)


def pack_frame(message: Any, raw: list[np.ndarray] | None = None) -> list[Any]:
    """One frame as a list of buffers for ``writev`` (numpy / Arrow data not copied when contiguous).

    ``raw`` arrays travel after the pickle's own out-of-band buffers, as they are (a strided one is
    copied once, straight into the ring or for the pipe); the message refers to them by position
    (:func:`unpack_body` hands them to :func:`request_from_wire`)."""
    bufs: list[pickle.PickleBuffer] = []
    head = pickle.dumps(message, protocol=5, buffer_callback=bufs.append)
    raws: list[Any] = [b.raw() for b in bufs]
    if raw:
        raws += raw
    lengths = [len(head), *(r.nbytes for r in raws)]
    table = struct.pack(f"<{len(lengths)}Q", *lengths)
    total = len(table) + sum(lengths)
    return [_HEAD.pack(total, len(raws)) + table, head, *raws]


_SEP = "\x1f"  # joins a table's entity ids in a request frame (unit separator)


def pack_request(schema_id: int, extracted: Extracted) -> list[Any]:
    """A request frame: plain tuples, no array in the pickle. Each table is (event, entity ids joined
    by :data:`_SEP` (a list when an id holds it), its parts (:func:`part_state`), the position of its
    bad-row mask or -1); the column blocks and masks follow as raw buffers. A validity or bad-row mask
    is sent only when some cell or row is missing or bad."""
    raw: list[np.ndarray] = []
    tables = []
    for event, t, bad in extracted.tables:
        ids: str | list[str] = _SEP.join(t.entities)
        if ids.count(_SEP) != max(0, len(t.entities) - 1):
            ids = t.entities
        parts = [part_state(p, raw) for p in t.parts]
        tables.append((event, len(t.entities), ids, parts, _raw(bad, raw) if bad.any() else -1))
    msg = ("req", schema_id, extracted.fmt_name, extracted.batch, extracted.common, tables, len(raw))
    return pack_frame(msg, raw)


def _raw(array: np.ndarray, raw: list[np.ndarray]) -> int:
    raw.append(array)
    return len(raw) - 1


def part_state(part: Part, raw: list[np.ndarray]) -> tuple:
    """A table part as a tuple of plain values, its arrays appended to ``raw`` and named by position
    (:func:`part_from_state` rebuilds it)."""
    valid = -1 if part.all_valid else _raw(part.valid, raw)
    if isinstance(part, CellGroup):
        return ("g", part.start, part.stop, _raw(part.block, raw), part.block.shape, valid)
    if part.block is None:
        return ("a", part.cells, valid, part.rows)
    return ("c", _raw(part.block, raw), part.block.shape, valid, part.rows)


def part_from_state(state: tuple, raw: list[Any]) -> Part:
    kind = state[0]
    if kind == "g":
        _, start, stop, at, shape, valid_at = state
        group = np.frombuffer(raw[at], np.uint8).reshape(shape)
        if valid_at < 0:
            return CellGroup(start, stop, group, np.ones((shape[0], stop - start), bool), True)
        return CellGroup(start, stop, group, np.frombuffer(raw[valid_at], bool).reshape(shape[0], -1))
    block: np.ndarray | None = None
    cells = None
    if kind == "c":
        _, at, shape, valid_at, rows = state
        block = np.frombuffer(raw[at], np.uint8).reshape(shape)
    else:
        _, cells, valid_at, rows = state
    if valid_at < 0:
        return LogColumn(np.ones(rows, bool), block, cells, True)
    return LogColumn(np.frombuffer(raw[valid_at], bool), block, cells)


def request_from_wire(msg: tuple, buffers: list[Any]) -> tuple:
    """A ``req`` frame's message with its tables rebuilt: (event, entity ids, parts, bad-row mask)."""
    tag, schema_id, fmt_name, batch, common, tables, nraw = msg
    raw = buffers[len(buffers) - nraw :]
    rebuilt = []
    for event, count, ids, parts, bad_at in tables:
        entities = ids if isinstance(ids, list) else (ids.split(_SEP) if count else [])
        bad = None if bad_at < 0 else np.frombuffer(raw[bad_at], bool)
        rebuilt.append((event, entities, [part_from_state(p, raw) for p in parts], bad))
    return (tag, schema_id, fmt_name, batch, common, rebuilt)


def contiguous(parts: list[Any]) -> list[Any]:
    """``parts`` with every array as a byte view of one contiguous piece (what ``writev`` needs; a
    strided array is copied)."""
    return [np.ascontiguousarray(p).data.cast("B") if isinstance(p, np.ndarray) else p for p in parts]


def write_frames(fd: int, parts: list[Any]) -> None:
    """``writev`` every part in order, waiting while the pipe is full (the GIL is released meanwhile).
    A numpy part is written as its bytes (a strided one copied first)."""
    parts = contiguous(parts)
    iov_max = 1024
    start = 0
    while start < len(parts):
        group = parts[start : start + iov_max]
        try:
            written = os.writev(fd, group)
        except BlockingIOError:  # a non-blocking pipe that is full: wait until the reader took some
            select.select([], [fd], [], 0.1)
            continue
        for part in group:
            size = len(part) if not isinstance(part, memoryview) else part.nbytes
            if written >= size:
                written -= size
                start += 1
                continue
            parts[start] = memoryview(part).cast("B")[written:]
            break


def _read_exact(fd: int, n: int) -> bytearray | None:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            return None  # the parent went away
        got += k
    return buf


def read_frame(fd: int) -> Any:
    """The next message, or None at end of file."""
    head = _read_exact(fd, _HEAD.size)
    if head is None:
        return None
    total, nbufs = _HEAD.unpack(head)
    body = _read_exact(fd, total)
    if body is None:
        return None
    return unpack_body(memoryview(body), nbufs)


def frame_size(parts: list[Any]) -> int:
    return sum(p.nbytes if isinstance(p, memoryview | np.ndarray) else len(p) for p in parts)


def read_ring_frame(ring: memoryview, offset: int) -> Any:
    """The message of the frame at ``offset`` of the ring, its buffers views of the ring (no copy)."""
    total, nbufs = _HEAD.unpack_from(ring, offset)
    start = offset + _HEAD.size
    return unpack_body(ring[start : start + total], nbufs)


def unpack_body(view: memoryview, nbufs: int) -> Any:
    lengths = struct.unpack_from(f"<{nbufs + 1}Q", view)
    pos = 8 * (nbufs + 1)
    pieces = []
    for length in lengths:
        pieces.append(view[pos : pos + length])
        pos += length
    msg = pickle.loads(pieces[0], buffers=pieces[1:])
    return request_from_wire(msg, pieces[1:]) if msg[0] == "req" else msg


class DeltaMetrics:
    """The child's metrics: counters accumulated as deltas and shipped to the parent."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._keys: dict[tuple[Any, ...], tuple[str, tuple[tuple[str, str], ...]]] = {}

    def count(self, name: str, amount: float = 1.0, **labels: object) -> None:
        try:  # the labels as given -> their sorted text form, worked out once per combination
            raw = (name, *labels.items())
            key = self._keys.get(raw)
        except TypeError:  # a label value that cannot be hashed
            raw, key = None, None
        if key is None:
            key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
            if raw is not None and len(self._keys) < 4096:
                self._keys[raw] = key
        self._counts[key] += amount

    def gauge(self, name: str, value: float, **labels: object) -> None:
        pass  # the parent owns the queue-depth gauge

    def observe(self, name: str, seconds: float, **labels: object) -> None:
        pass

    def drain(self) -> list[tuple[str, dict[str, str], float]]:
        out = [(name, dict(labels), amount) for (name, labels), amount in self._counts.items()]
        self._counts.clear()
        return out


def apply_deltas(metrics: Any, deltas: list[tuple[str, dict[str, str], float]]) -> None:
    for name, labels, amount in deltas:
        metrics.count(name, amount, **labels)


# ------------------------------------------------------------------------------------------ child
class RingHandle:
    """The ring's memfd and size as an argument of the child process: pickled while the child is
    spawned, the descriptor itself is handed to the child (as ``multiprocessing`` hands it a pipe)."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def __reduce__(self) -> tuple[Any, tuple[Any, int]]:
        from multiprocessing import reduction

        return _rebuild_ring, (reduction.DupFd(self.fd), self.size)


def _rebuild_ring(dup: Any, size: int) -> RingHandle:
    return RingHandle(dup.detach(), size)


def open_ring(ring: RingHandle | None) -> memoryview | None:
    """The parent's ring mapped read-only, or None."""
    if ring is None:
        return None
    try:
        return memoryview(mmap.mmap(ring.fd, ring.size, prot=mmap.PROT_READ))
    finally:
        os.close(ring.fd)


class _Child:
    def __init__(
        self,
        settings: LoggingSettings,
        formats: Mapping[str, Any],
        sink: Any,
        stats: Any,
        ring: memoryview | None = None,
    ) -> None:
        self.settings = settings
        self.formats = formats
        self.metrics: Any = DeltaMetrics()  # duck-types the Metrics calls formats and sinks make
        self.writer = sink.create(settings, self.metrics) if sink is not None else None
        self.stats = stats
        self.schemas: dict[int, Any] = {}
        self.done = 0
        self.last_stats = 0.0
        self.ring = ring
        self.freed = 0  # ring position up to which every frame is finished

    def send_stats(self, final: bool = False, pending: int = 0) -> None:
        deltas = self.metrics.drain()
        if deltas or final or time.monotonic() - self.last_stats >= 1.0:
            self.stats.send(("stats", self.done, deltas, final, pending))
            self.last_stats = time.monotonic()

    def encode(self, msg: tuple) -> list[LogMessage]:
        _, schema_id, fmt_name, batch, common, tables = msg
        schema = self.schemas[schema_id]
        rebuilt = []
        for event, entities, parts, bad in tables:
            entries = schema.slate_entries if event.endswith("slate_logs") else schema.entries
            table = LogTable(entries, entities, parts)
            rebuilt.append((event, table, np.zeros(len(entities), bool) if bad is None else bad))
        model_id = common["model_id"]
        extracted = Extracted(fmt_name, batch, common, rebuilt)
        return encode_counted(
            model_id,
            self.metrics,
            lambda: encode_extracted(extracted, schema, self.formats[fmt_name], self.metrics),
        )

    def write(self, messages: list[LogMessage]) -> None:
        if self.writer is None or not messages:
            return
        try:
            self.writer.write(messages)
        except Exception as exc:
            self.metrics.count("logging.sink_errors", sink=self.settings.effective_sink(), error_type="write")
            log.warning("inference logging: sink write failed: %s", exc)

    def run(self, fd: int) -> None:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                if self.writer is not None:
                    self.writer.poll()
                self.send_stats()
                continue
            messages: list[LogMessage] = []
            finished = 0
            freed = self.freed
            size = 0
            while ready and finished < 64 and size < WRITE_BYTES:  # encode what is there, one sink write
                msg = read_frame(fd)
                if msg is None or msg[0] == "stop":
                    self.write(messages)
                    self.done += finished
                    self.finish(msg[1] if msg is not None else 0.0)
                    return
                if msg[0] == "ring":
                    _, position, offset = msg
                    assert self.ring is not None
                    msg = read_ring_frame(self.ring, offset)
                    freed = position
                if msg[0] == "schema":
                    self.schemas[msg[1]] = msg[2]
                else:
                    got = self.encode(msg)
                    size += message_bytes(got)
                    messages += got
                    finished += 1
                ready, _, _ = select.select([fd], [], [], 0)
            msg = None  # no view of the ring is kept past this batch
            self.write(messages)
            self.done += finished
            if freed != self.freed:
                self.freed = freed
                self.stats.send(("freed", freed))
            if time.monotonic() - self.last_stats >= STATS_EVERY_S:
                self.send_stats()

    def finish(self, grace_s: float) -> None:
        pending = 0
        if self.writer is not None:
            pending = int(self.writer.flush(max(0.0, grace_s)))
            close = getattr(self.writer, "close", None)
            if close is not None:
                close()
        self.send_stats(final=True, pending=pending)


def keep_heap() -> None:
    """glibc: keep freed memory in the heap (no trim, no mmap per large buffer). The encoder allocates
    and frees buffers of a few hundred KB per request; returned to the kernel each time, every one came
    back as fresh zeroed pages (a page fault per 4 KB). Best effort, this process only."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD


def lower_priority(increment: int) -> None:
    """Run this process ``increment`` nice levels below its parent: on a busy machine the scheduler gives
    the server's threads (and the other processes of the machine) the CPU first and the encoder what
    they leave idle (the ring and the bounded queue absorb the bursts; what they cannot is dropped and
    counted, never waited for)."""
    if increment > 0:
        with contextlib.suppress(OSError, AttributeError):
            os.nice(increment)
        own_autogroup(increment)


def own_autogroup(increment: int, tries: int = 5, group: Path = Path("/proc/self/autogroup")) -> bool:
    """Where the kernel schedules by session first (autogroup: ``kernel.sched_autogroup_enabled = 1``, for
    processes outside a CPU cgroup, e.g. started from a shell on a VM or a laptop), a nice value only ranks
    a process among its session's: the encoder would still take the server session's share against
    every other session, the server's clients included. There the encoder starts a session of its own
    (it then no longer gets the terminal's Ctrl-C: it stops when the server tells it, or its pipe closes)
    whose group runs ``increment`` nice levels below the server's group. In a container's CPU cgroup
    (Kubernetes) autogroups do not apply and the process nice above is what counts (the session and the
    group's nice are still made there, and change nothing). The same holds in the root group, where the
    server's threads and the encoder already compete as processes: ``group`` then reads empty (a server
    started by an init process without a session of its own, as on CI runners and in some containers)
    and nothing is done. True when done; best effort."""
    try:
        if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() != "1":
            return False
        if not os.access(group, os.W_OK):  # a session of its own at nice 0 would be worse
            return False
        fields = group.read_text().split()  # "/autogroup-<id> nice <n>"; empty in the root group
        if not fields:
            return False
        nice = min(19, int(fields[-1]) + increment)
        if os.getsid(0) != os.getpid():
            os.setsid()
        for _ in range(tries):  # unprivileged writes are rate-limited machine-wide (EAGAIN)
            try:
                group.write_text(str(nice))
                return True
            except BlockingIOError:
                time.sleep(0.1)
    except (OSError, AttributeError, ValueError, IndexError):
        pass
    return False


def child_main(
    settings: LoggingSettings,
    formats: Mapping[str, Any],
    sink: Any,
    data: Any,
    stats: Any,
    ring: RingHandle | None = None,
) -> None:
    """Entry point of the encoder process (``spawn`` context)."""
    logging.basicConfig(level=logging.WARNING)
    keep_heap()
    lower_priority(settings.encoder_nice)
    child = _Child(settings, formats, sink, stats, open_ring(ring))
    with contextlib.suppress(BrokenPipeError, EOFError, KeyboardInterrupt):
        child.run(data.fileno())
