"""The encoder child's CPU per request, replayed in process (no server, no load generator).

Serves the CTR example (scenario S1 of benchmarks/README.md: 200 targets, ~100 schema entries) in process
with ``logging_perc=100``, captures the served requests, extracts them as the server's logger does
(``InferenceLogger.extract``) and packs each into the frame the parent sends. The replay then runs the
child's own code over those frames in a loop, as ``procworker._Child.run`` does: each frame read in place
from a shared-memory ring (``read_ring_frame``), ``_Child.encode``, and one sink write per batch (up to 64
requests or ``WRITE_BYTES``) to the file sink in a temporary directory. It reports user and system CPU
per request (``getrusage``), minor page faults and bytes written per request, per format, rounds
alternating between the formats (median of the rounds, and the best round)::

    .venv/bin/python plugins/inferflow_logging/benchmarks/bench_encoder_child.py [--rounds 7]
        [--formats proto,parquet] [--passes 2] [--sink file|none] [--no-keep-heap] [--digest]

``--process RATE`` runs the real encoder process instead (``EncoderProcess``: spawned child, ring, pipe,
its own run loop), fed with ``offer`` + ``flush`` as the event loop feeds it (descriptors written once per
``INFERFLOW_LOG_LINGER_MS``), ``RATE`` requests per second for ``--seconds`` per round, and reports the
child's CPU per request from ``/proc`` (what the served benchmark measures, without the server and the
load generator competing for the cores). The log files are deleted after every round: rounds of a few
seconds stay within what the page cache absorbs, long ones (GBs of parquet) run into writeback.

``--digest`` prints a hash of every message the replay wrote per format (byte-identical output across
versions gives the same digests). ``--loop SECONDS`` replays one format for that long without reporting
(for a profiler: ``py-spy record --native -- python ... --loop 20 --formats parquet``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import mmap
import os
import pickle
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def capture(fmt: str, count: int, tmp: Path) -> list[tuple[Any, Any]]:
    """(schema, Extracted) of ``count`` served S1 requests logged in ``fmt``."""
    from bench_served_logging import build_requests
    from inferflow_logging import InferenceLogger, LoggingSettings

    from inferflow_core.api import Metrics, Runtime, sources
    from inferflow_core.testing import example
    from inferflow_core.testing.inprocess import InProcessService

    data = example.ensure_data(demo=False, progress=None)
    os.environ.update(example.embedded_env(data))
    cfg = example.write_config(tmp / f"cfg-{fmt}", data, logging_perc=100, models=("bench_ctr",))
    service = cfg / "inferflow/services/inferflow/model-config/service-config.json"
    service.write_text(json.dumps({"v2-logging-type": fmt, "compression-enabled": False}))
    runtime = Runtime()
    runtime.apply_tree(sources.read_config_dir(cfg, runtime.prefixes))
    svc = InProcessService(runtime)
    captured: list[Any] = []

    class Capture:
        def observe(self, served: Any) -> None:
            captured.append(served)

        async def start(self, host: Any) -> None:
            pass

        async def stop(self, grace_s: float) -> None:
            pass

    svc._service.observers = [Capture()]

    async def serve() -> None:
        for raw in build_requests(10000, 100000, count, 200):
            await svc.call("pointwise", raw)

    asyncio.run(serve())
    logger = InferenceLogger(LoggingSettings(sink="none"), metrics=Metrics())
    out = []
    for k, served in enumerate(captured):
        for schema, extracted in logger.extract(served):
            extracted.common["created_at"] = 1_750_000_000 + k  # not the clock: digests comparable
            out.append((schema, extracted))
    if len(out) != count:
        raise SystemExit(f"{fmt}: {len(out)} of {count} requests extracted")
    return out


class Replay:
    """One format's frames in a ring and a child (``procworker._Child``) writing to the file sink."""

    def __init__(self, fmt: str, items: list[tuple[Any, Any]], log_dir: Path, sink: str) -> None:
        from inferflow_logging import LoggingSettings
        from inferflow_logging.formats import FORMATS
        from inferflow_logging.procworker import _Child, contiguous, frame_size, pack_request, read_ring_frame
        from inferflow_logging.sinks import SINKS

        self.fmt, self.log_dir = fmt, log_dir
        schema = items[0][0]
        frames = [pack_request(1, extracted) for _, extracted in items]
        size = sum(frame_size(f) + 64 for f in frames)
        self.map = mmap.mmap(-1, size)
        self.ring = memoryview(self.map)
        self.offsets = []
        pos = 0
        for frame in frames:  # the parent's copy into the ring (not timed)
            self.offsets.append(pos)
            for part in contiguous(frame):
                n = len(part) if not isinstance(part, memoryview) else part.nbytes
                self.ring[pos : pos + n] = part
                pos += n
        settings = LoggingSettings(sink=sink, log_dir=str(log_dir))

        class Stats:
            def send(self, msg: Any) -> None:
                pass

        self.child = _Child(settings, FORMATS, SINKS.get(sink), Stats(), self.ring)
        # the schema as the child gets it: pickled through the pipe
        self.child.schemas[1] = pickle.loads(pickle.dumps(schema, protocol=5))
        self.child.write(self.child.encode(read_ring_frame(self.ring, self.offsets[0])))  # warm-up
        self.digest = hashlib.sha256()
        self.bytes_per_request = 0.0

    def run(self, passes: int, digest: bool = False) -> int:
        """Replay every frame ``passes`` times, batched as ``_Child.run`` batches; requests replayed."""
        from inferflow_logging.procworker import read_ring_frame
        from inferflow_logging.records import WRITE_BYTES, message_bytes

        child = self.child
        done = written = 0
        for _ in range(passes):
            messages: list[Any] = []
            size = finished = 0
            for offset in self.offsets:
                msg = read_ring_frame(self.ring, offset)
                got = child.encode(msg)
                msg = None
                written += message_bytes(got)
                size += message_bytes(got)
                messages += got
                finished += 1
                if finished >= 64 or size >= WRITE_BYTES:
                    if digest:
                        self._digest(messages)
                    child.write(messages)
                    messages, size, finished = [], 0, 0
                done += 1
            if digest:
                self._digest(messages)
            child.write(messages)
        self.bytes_per_request = written / max(1, done)
        return done

    def _digest(self, messages: list[Any]) -> None:
        for m in messages:
            self.digest.update(len(m.value).to_bytes(8, "little"))
            self.digest.update(m.value)

    def clean(self) -> None:
        """Drop the log files written so far (outside the timed part)."""
        writer = self.child.writer
        if writer is not None and hasattr(writer, "close"):
            writer.close()
        if self.log_dir.exists():
            shutil.rmtree(self.log_dir)


def proc_cpu(pid: int) -> tuple[float, float, float, int]:
    """(user, system, total on CPU) seconds of process ``pid`` (the total from schedstat, ns precision)
    and its minor page faults so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    on_cpu = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    return int(fields[11]) / tick, int(fields[12]) / tick, on_cpu, int(fields[7])


class ProcessReplay:
    """One format's requests fed to a real encoder process (``EncoderProcess``) at a fixed rate."""

    def __init__(self, fmt: str, items: list[tuple[Any, Any]], log_dir: Path, sink: str) -> None:
        from inferflow_logging import LoggingSettings
        from inferflow_logging.encoder_process import EncoderProcess
        from inferflow_logging.formats import FORMATS
        from inferflow_logging.sinks import SINKS

        from inferflow_core.api import Metrics

        self.fmt, self.items, self.log_dir = fmt, items, log_dir
        settings = LoggingSettings(sink=sink, log_dir=str(log_dir))
        self.metrics = Metrics()
        self.encoder = EncoderProcess(settings, FORMATS, SINKS.get(sink), self.metrics)
        self.encoder.start()
        self.fed = 0
        self.linger_s = settings.linger_ms / 1000.0
        self.run(0.3, 300.0)  # warm-up: schema, templates

    def run(self, seconds: float, rate: float) -> int:
        """Feed requests at ``rate`` per second for ``seconds``; wait until the child finished them."""
        encoder = self.encoder
        start = time.perf_counter()
        flush_at = start
        n = 0
        while True:
            due = start + n / rate
            now = time.perf_counter()
            if now - start >= seconds:
                break
            if due > now:
                time.sleep(due - now)
            schema, extracted = self.items[self.fed % len(self.items)]
            self.fed += 1
            n += 1
            if not encoder.pending:  # the first descriptor of a batch: written one linger period later
                flush_at = now + self.linger_s
            if not encoder.offer(schema, extracted):
                encoder.send([(schema, extracted)])  # what the logging thread does then
            if now >= flush_at:  # the descriptors go once per linger period, as the logger writes them
                encoder.flush()
            encoder.pump()
        encoder.send([])
        deadline = time.monotonic() + 30
        while encoder.done < encoder.sent and time.monotonic() < deadline:
            encoder.pump()
            time.sleep(0.005)
        return n

    def pid(self) -> int:
        return int(self.encoder.proc.pid)

    def clean(self) -> None:
        if self.log_dir.exists():
            shutil.rmtree(self.log_dir)

    def stop(self) -> None:
        self.encoder.stop(time.monotonic() + 10)


def process_mode(args: argparse.Namespace, formats: list[str], tmp: Path) -> None:
    replays = {
        f: ProcessReplay(f, capture(f, args.requests, tmp), tmp / f"logs-{f}", args.sink) for f in formats
    }
    try:
        rounds: dict[str, list[tuple[float, ...]]] = {f: [] for f in formats}
        for r in range(args.rounds):
            for fmt in formats if r % 2 == 0 else formats[::-1]:
                replay = replays[fmt]
                pid = replay.pid()
                (u0, s0, c0, f0), w0 = proc_cpu(pid), time.perf_counter()
                n = replay.run(args.seconds, args.process)
                (u1, s1, c1, f1), w1 = proc_cpu(pid), time.perf_counter()
                per = [(u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6, (c1 - c0) / n * 1e6, n / (w1 - w0)]
                rounds[fmt].append((*per, (f1 - f0) / n))
                replay.clean()
        print(
            f"encoder process: {args.requests} S1 requests fed at {args.process:.0f}/s"
            f" for {args.seconds:.0f} s"
            f" x {args.rounds} rounds, sink {args.sink}; load {os.getloadavg()[0]:.2f};"
            " child CPU per request, median of rounds"
        )
        head = ("format", "user µs", "sys µs", "cpu µs", "req/s", "faults")
        print("{:10} {:>8} {:>7} {:>7} {:>8} {:>7}".format(*head))
        for fmt in formats:
            med = [statistics.median(r[i] for r in rounds[fmt]) for i in range(5)]
            print(f"{fmt:10} {med[0]:8.0f} {med[1]:7.0f} {med[2]:7.0f} {med[3]:8.0f} {med[4]:7.1f}")
        if args.json:
            args.json.write_text(json.dumps(rounds))
    finally:
        for replay in replays.values():
            replay.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--formats", default="proto,parquet")
    parser.add_argument("--requests", type=int, default=300, help="distinct served requests per format")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--passes", type=int, default=2, help="replays of every request per round")
    parser.add_argument("--sink", default="file", choices=("file", "none"))
    parser.add_argument("--no-keep-heap", action="store_true", help="leave glibc's malloc trimming on")
    parser.add_argument("--digest", action="store_true", help="hash every message written")
    parser.add_argument("--loop", type=float, default=0.0, help="replay the first format for this long")
    parser.add_argument("--process", type=float, default=0.0, help="run the encoder process at this rate")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per round with --process")
    parser.add_argument("--json", type=Path, help="write the per-round numbers here")
    args = parser.parse_args()

    from inferflow_logging.procworker import keep_heap

    if not args.no_keep_heap:
        keep_heap()  # as child_main does
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-encoder-child-"))
    try:
        if args.process:
            process_mode(args, formats, tmp)
            return
        replays = {}
        for fmt in formats:
            items = capture(fmt, args.requests, tmp)
            replays[fmt] = Replay(fmt, items, tmp / f"logs-{fmt}", args.sink)
        if args.loop:
            replay = replays[formats[0]]
            stop = time.monotonic() + args.loop
            while time.monotonic() < stop:
                replay.run(1)
                replay.clean()
            return
        if args.digest:  # one untimed pass hashing what the sink is given
            for fmt in formats:
                replays[fmt].run(1, digest=True)
                replays[fmt].clean()
        rounds: dict[str, list[tuple[float, float, float, float]]] = {f: [] for f in formats}
        for r in range(args.rounds):
            order = formats if r % 2 == 0 else formats[::-1]
            for fmt in order:
                replay = replays[fmt]
                t0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                n = replay.run(args.passes)
                t1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                user, system = t1.ru_utime - t0.ru_utime, t1.ru_stime - t0.ru_stime
                faults = t1.ru_minflt - t0.ru_minflt
                rounds[fmt].append((user / n * 1e6, system / n * 1e6, (w1 - w0) / n * 1e6, faults / n))
                replay.clean()
        heap = "off" if args.no_keep_heap else "on"
        print(
            f"encoder child replay: {args.requests} S1 requests x {args.passes} passes x {args.rounds}"
            f" rounds, sink {args.sink}, keep_heap {heap}; load {os.getloadavg()[0]:.2f};"
            " per request, median of rounds"
        )
        head = ("format", "user µs", "sys µs", "cpu µs", "wall µs", "faults", "bytes")
        print("{:10} {:>8} {:>7} {:>7} {:>8} {:>7} {:>8}".format(*head))
        for fmt in formats:
            med = [statistics.median(r[i] for r in rounds[fmt]) for i in range(4)]
            cpu = [r[0] + r[1] for r in rounds[fmt]]
            size = replays[fmt].bytes_per_request
            print(
                f"{fmt:10} {med[0]:8.0f} {med[1]:7.0f} {statistics.median(cpu):7.0f} {med[2]:8.0f}"
                f" {med[3]:7.1f} {size:8.0f}   best cpu {min(cpu):.0f}"
            )
        if args.digest:
            for fmt in formats:
                print(f"digest {fmt}: {replays[fmt].digest.hexdigest()}")
        if args.json:
            args.json.write_text(json.dumps(rounds))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
