"""Embedded backend for endpoints ``onnx://PATH``: ONNX Runtime in process, same tensors as the wire path.

``PATH`` is a Triton-layout model repository (``PATH/<model_name>/<version>/model.onnx``), so the file that
runs here is the file Triton serves in production. A session is created once per (model, version), lazily,
and ``run`` executes on :class:`OnnxWorkers` (an explicitly sized set of threads) — or, when the call is
small, inline on the event loop.

A request's batches go to ONNX Runtime as one job: one hand-off to a worker thread (one thread wake-up
there, one event-loop wake-up back) per request, the batches run one after the other. A job whose
expected time (the session's measured microseconds per row x its rows) is at most ``inline_us`` runs
inline instead: ONNX Runtime releases the GIL while it computes, but the loop waits, so only calls
shorter than the hand-off's own cost and jitter are worth it. When the process executes no other request
(``RunContext.concurrent_requests() == 1``), nothing waits for the loop, so calls up to ``idle_inline_us``
run inline too: the hand-off's two thread wake-ups (~100 us together on a 2-vCPU VM) are saved from
the request's latency. The rate is a moving average over the
session's own calls of the CPU time of the thread that ran them (with the default one intra-op thread,
ORT computes in the calling thread): unlike wall time it does not count a worker's wait for the GIL or
the CPU, so calls on a thread and inline calls measure alike and a busy machine does not push small
calls off the loop. Until a session has a measured call, its calls go to a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any

import numpy as np

from inferflow_core.api import ComponentError

from .tensors import Tensor, datatype_of


def _settle(future: asyncio.Future[Any], ok: bool, result: Any) -> None:
    if future.done():  # timed out or cancelled meanwhile: drop the late result
        return
    if ok:
        future.set_result(result)
    else:
        future.set_exception(result)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class OnnxWorkers:
    """``workers`` threads running ONNX Runtime calls off the event loop.

    Cheaper per call than ``loop.run_in_executor`` (measured ~40-60 us less on the S1 request here): jobs go
    through one ``SimpleQueue`` and each result comes back with one ``loop.call_soon_threadsafe`` onto a
    plain asyncio future — no ``concurrent.futures.Future``, no chained callbacks. Threads start on first
    use; ``shutdown`` mirrors ``ThreadPoolExecutor.shutdown`` (queued jobs can be cancelled, a running ORT
    call finishes in the background and its result is dropped).
    """

    def __init__(self, workers: int, name: str = "inferflow-onnx", nice: int = 0) -> None:
        self.workers = max(1, workers)
        self.name = name
        self.nice = nice  # > 0: the threads run at a lower OS priority (Linux: per thread; shadow models)
        self._queue: SimpleQueue[tuple[Any, ...] | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` on a worker; the returned future belongs to the running loop."""
        if self._closed:
            raise RuntimeError(f"{self.name}: workers are shut down")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if len(self._threads) < self.workers:
            self._start()
        self._queue.put((loop, future, fn, args))
        return future

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        if self.nice > 0 and hasattr(os, "setpriority"):
            with contextlib.suppress(OSError):  # Linux applies it to this thread only
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        queue = self._queue
        while True:
            job = queue.get()
            if job is None:
                return
            loop, future, fn, args = job
            if future.done():  # cancelled or timed out while queued
                continue
            try:
                result, ok = fn(*args), True
            except BaseException as exc:  # handed to the awaiting coroutine
                result, ok = exc, False
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, future, ok, result)

    def shutdown(self, wait: bool = False, cancel_futures: bool = False) -> None:
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    job = self._queue.get_nowait()
                except Empty:
                    break
                if job is not None:
                    loop, future = job[0], job[1]
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(future.cancel)
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()


Outcome = dict[str, Tensor] | ComponentError  # one batch's outputs, or its error


def _run_all(sess: Any, outputs: list[str], feeds: list[dict[str, np.ndarray]]) -> tuple[float, list[Any]]:
    """Every batch of a job, one after the other: ``(CPU seconds of this thread, [outputs or the exception,
    per batch])``."""
    started = time.thread_time()
    results: list[Any] = []
    for feed in feeds:
        try:
            results.append(sess.run(outputs, feed))
        except Exception as exc:  # this batch's error; the others still run
            results.append(exc)
    return time.thread_time() - started, results


class OnnxBackend:
    _SMOOTH = 0.2  # weight of a new measurement in the per-row rate

    def __init__(
        self,
        repository: str,
        executor: OnnxWorkers,
        intra_op_threads: int,
        inline_us: float = 0.0,
        idle_inline_us: float = 0.0,
    ) -> None:
        self.repository = Path(repository)
        self.target = f"onnx://{repository}"
        self.executor = executor
        self.intra_op_threads = intra_op_threads
        # 0 and 0: never inline (shadow models: always their low-priority thread)
        self.inline_us = inline_us
        self.idle_inline_us = max(inline_us, idle_inline_us)  # the limit when no other request runs
        self._sessions: dict[tuple[str, str], Any] = {}
        self._rate: dict[tuple[str, str], float] = {}  # CPU microseconds per row, per session
        self._lock = asyncio.Lock()

    def _create(self, path: Path) -> Any:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ComponentError(
                f"{self.target}: onnx:// endpoints need ONNX Runtime: pip install 'inferflow-predator[onnx]'",
                "predator-client-not-found",
            ) from None

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.intra_op_threads
        opts.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    async def session(self, model: str, version: str) -> Any:
        key = (model, version)
        sess = self._sessions.get(key)
        if sess is not None:
            return sess
        async with self._lock:
            sess = self._sessions.get(key)
            if sess is None:
                path = self.repository / model / version / "model.onnx"
                try:
                    sess = await self.executor.submit(self._create, path)
                except Exception as exc:
                    raise ComponentError(
                        f"{self.target}: cannot load {model!r} version {version!r} from {path}: {exc}",
                        "predator-model-not-found",
                    ) from None
                self._sessions[key] = sess
        return sess

    async def check_ready(self, model: str, version: str, timeout: float | None) -> None:
        await self.session(model, version)

    async def infer(
        self,
        model: str,
        version: str,
        inputs: Sequence[Tensor],
        outputs: Sequence[str],
        timeout: float | None,
    ) -> dict[str, Tensor]:
        got = (await self.infer_many(model, version, [inputs], outputs, timeout))[0]
        if isinstance(got, ComponentError):
            raise got
        return got

    async def infer_many(
        self,
        model: str,
        version: str,
        batches: Sequence[Sequence[Tensor]],
        outputs: Sequence[str],
        timeout: float | None,
        alone: bool = False,
    ) -> list[Outcome]:
        """Run every batch (inline or as one job on a worker thread); per batch its outputs or its error.
        ``alone``: the process executes no other request (the larger inline limit applies). A failure of
        the whole call (model not loadable, timeout) raises ComponentError."""
        names = outputs if isinstance(outputs, list) else list(outputs)
        feeds = [{t.name: _feed(t) for t in batch} for batch in batches]
        rows = sum([len(batch[0].array) if batch else 0 for batch in batches])
        results = await self._run(model, version, names, feeds, rows, timeout, alone)
        return [self._outcome(model, names, got) for got in results]

    async def infer_rows(
        self,
        model: str,
        version: str,
        inputs: Sequence[Tensor],
        bounds: Sequence[tuple[int, int]],
        outputs: Sequence[str],
        timeout: float | None,
        alone: bool = False,
    ) -> dict[str, Tensor] | list[Outcome]:
        """:meth:`infer_many` of ``inputs`` cut into the consecutive row ranges ``bounds``, with no tensor
        per batch: every output of every batch joined along the rows when each batch answered its own rows
        alike (one tensor per output); else, per batch, its outputs or its error."""
        names = outputs if isinstance(outputs, list) else list(outputs)
        arrays = [(t.name, _feed(t)) for t in inputs]
        feeds = [{name: arr[a:b] for name, arr in arrays} for a, b in bounds]
        results = await self._run(
            model, version, names, feeds, bounds[-1][1] if bounds else 0, timeout, alone
        )
        joined = _joined(names, results, bounds)
        if joined is not None:
            return joined
        return [self._outcome(model, names, got) for got in results]

    async def _run(
        self,
        model: str,
        version: str,
        names: list[str],
        feeds: list[dict[str, np.ndarray]],
        rows: int,
        timeout: float | None,
        alone: bool,
    ) -> list[Any]:
        """ONNX Runtime's outputs (or the exception) of every feed, inline or on a worker thread."""
        key = (model, version)
        sess = self._sessions.get(key)
        if sess is None:
            sess = await self.session(model, version)
        rows = rows or 1
        rate = self._rate.get(key)
        limit = self.idle_inline_us if alone else self.inline_us
        if limit > 0 and rate is not None and rate * rows <= limit:
            if timeout is not None and timeout <= 0:
                raise ComponentError(f"{self.target} {model!r}: timed out", "predator-api-timeout")
            seconds, results = _run_all(sess, names, feeds)
        else:
            seconds, results = await self._off_loop(model, sess, names, feeds, timeout)
        per_row = seconds * 1e6 / rows
        self._rate[key] = per_row if rate is None else rate + self._SMOOTH * (per_row - rate)
        return results

    async def _off_loop(
        self,
        model: str,
        sess: Any,
        names: list[str],
        feeds: list[dict[str, np.ndarray]],
        timeout: float | None,
    ) -> tuple[float, list[Any]]:
        future = self.executor.submit(_run_all, sess, names, feeds)
        # a timer that fails the future (cheaper than asyncio.timeout's context manager per call)
        timer = None if timeout is None else asyncio.get_running_loop().call_later(timeout, _expire, future)
        try:
            return await future
        except TimeoutError:
            raise ComponentError(f"{self.target} {model!r}: timed out", "predator-api-timeout") from None
        except ComponentError:
            raise
        except Exception as exc:
            raise ComponentError(
                f"{self.target} {model!r}: {type(exc).__name__}: {exc}", "predator-api-error"
            ) from None
        finally:
            if timer is not None:
                timer.cancel()

    def _outcome(self, model: str, names: list[str], got: Any) -> Outcome:
        if isinstance(got, list):  # ONNX Runtime's outputs, in ``names`` order
            return {name: Tensor(name, datatype_of(arr), arr) for name, arr in zip(names, got, strict=True)}
        if isinstance(got, ComponentError):
            return got
        if isinstance(got, Exception):
            return ComponentError(
                f"{self.target} {model!r}: {type(got).__name__}: {got}", "predator-api-error"
            )
        return {name: Tensor(name, datatype_of(arr), arr) for name, arr in zip(names, got, strict=True)}

    async def close(self) -> None:
        self._sessions.clear()


def _joined(
    names: list[str], results: list[Any], bounds: Sequence[tuple[int, int]]
) -> dict[str, Tensor] | None:
    """Each output of every batch joined along the rows, as one tensor; None when a batch failed, or an
    output is not an array whose first dimension is its batch's rows, of one type and row shape."""
    joined: dict[str, Tensor] = {}
    for k, name in enumerate(names):
        parts: list[np.ndarray] = []
        for got, (a, b) in zip(results, bounds, strict=True):
            arr = got[k] if isinstance(got, list) and len(got) == len(names) else None
            if not isinstance(arr, np.ndarray) or arr.ndim == 0 or arr.shape[0] != b - a:
                return None
            if parts and (arr.dtype != parts[0].dtype or arr.shape[1:] != parts[0].shape[1:]):
                return None
            parts.append(arr)
        values = parts[0] if len(parts) == 1 else np.concatenate(parts)
        joined[name] = Tensor(name, datatype_of(values), values)
    return joined


def _feed(tensor: Tensor) -> np.ndarray:
    if tensor.datatype == "BYTES":
        return np.vectorize(_text, otypes=[object])(tensor.array) if tensor.array.size else tensor.array
    return tensor.array


def _text(value: object) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
