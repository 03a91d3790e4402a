"""The worker's event loop polls before it sleeps only while I/O is arriving, and never past a timeout."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from pydantic import ValidationError

from inferflow_core.config.settings import ServiceSettings
from inferflow_core.serving import eventloop
from inferflow_core.serving.eventloop import SpinningSelector


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def _active(pair, spin_s: float) -> SpinningSelector:
    """A selector over ``pair[0]`` that has just seen I/O (so its next idle wait polls first)."""
    a, b = pair
    sel = SpinningSelector(spin_s)
    sel.register(a, 1)
    b.send(b"x")
    assert sel.select(1.0)
    a.recv(1)
    return sel


def _cpu_of(fn):
    started = time.thread_time()
    result = fn()
    return result, time.thread_time() - started


def test_long_waits_bring_the_window_to_zero_and_quick_ones_back(pair):
    a, b = pair
    sel = SpinningSelector(0.01)
    sel.register(a, 1)
    assert sel.window == 0.01  # polls from the start
    assert sel.select(0.015) == []  # outlasted the 10 ms window: reset to 0
    assert sel.window == 0.0
    ready, cpu = _cpu_of(lambda: sel.select(0.1))
    assert ready == []
    assert cpu < 0.02  # slept: polling would have used the whole 100 ms
    for _ in range(12):  # I/O within the window: doubled from 10 µs back up to it
        b.send(b"x")
        assert sel.select(1.0)
        a.recv(1)
    assert sel.window == 0.01
    sel.close()


def test_after_io_it_polls_then_sleeps(pair):
    sel = _active(pair, 0.05)
    ready, cpu = _cpu_of(lambda: sel.select(0.2))
    assert ready == []
    assert 0.03 < cpu < 0.15  # ~50 ms polling, then asleep for the rest of the 200 ms
    sel.close()


def test_polling_never_outlasts_the_timeout(pair):
    sel = _active(pair, 5.0)
    started = time.perf_counter()
    assert sel.select(0.02) == []
    assert time.perf_counter() - started < 1.0  # the 20 ms timeout, not the 5 s of polling
    sel.close()


def test_io_arriving_while_polling_is_returned(pair):
    a, b = pair
    sel = _active(pair, 2.0)
    threading.Timer(0.01, b.send, (b"y",)).start()
    ready = sel.select(None)
    assert [key.fileobj for key, _ in ready] == [a]
    sel.close()


def test_run_serves_a_coroutine_on_the_polling_loop():
    async def main() -> str:
        loop = asyncio.get_running_loop()
        assert isinstance(loop._selector, SpinningSelector)  # type: ignore[attr-defined]
        reader, writer = await asyncio.open_connection(*server_address)
        writer.write(b"ping\n")
        await writer.drain()
        answer = await reader.readline()
        writer.close()
        return answer.decode()

    listener = socket.create_server(("127.0.0.1", 0))
    server_address = listener.getsockname()

    def echo() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(conn.recv(16))

    threading.Thread(target=echo, daemon=True).start()
    try:
        assert eventloop.run(main(), 500) == "ping\n"
    finally:
        listener.close()


def test_zero_is_asyncio_default_loop():
    loop = eventloop.new_loop(0)
    try:
        assert not isinstance(getattr(loop, "_selector", None), SpinningSelector)
    finally:
        loop.close()


def test_setting_is_validated(monkeypatch):
    monkeypatch.setenv("INFERFLOW_IDLE_SPIN_US", "-1")
    with pytest.raises(ValidationError, match="INFERFLOW_IDLE_SPIN_US"):
        ServiceSettings()
    monkeypatch.setenv("INFERFLOW_IDLE_SPIN_US", "0")
    assert ServiceSettings().idle_spin_us == 0
