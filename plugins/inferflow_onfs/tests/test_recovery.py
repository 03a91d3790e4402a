"""Recovery after OnFS returns (issue 19): the client's channel reconnects within its bounded backoff
(INFERFLOW_ONFS_RECONNECT_MAX_MS), not gRPC's default of up to 120 s."""

from __future__ import annotations

import asyncio
import time

import pytest
from inferflow_onfs.client import OnfsClient
from inferflow_onfs.settings import OnfsSettings
from onfs_support import all_types_component, fetch_request, free_port, onfs_server

pytestmark = pytest.mark.integration
AUTH = ("--caller-id", "inferflow", "--auth-token", "secret")


async def test_first_clean_answer_within_1s_of_the_backend_returning(store_dir) -> None:
    port = free_port()
    settings = OnfsSettings(
        fs_host="127.0.0.1", fs_port=port, fs_plaintext=True, caller_id="inferflow",
        caller_token="secret", deadline_ms=2000, batch_size=7,
    )  # fmt: skip
    assert settings.reconnect_max_ms <= 500
    client = OnfsClient(settings)
    request = fetch_request(all_types_component())
    keys = [("1",), ("2",)]
    with onfs_server(store_dir[0], *AUTH, port=port):
        assert not (await client.fetch(request, keys, 2.0)).failures
    # outage, long enough for gRPC's default backoff to grow past 1 s; calls fail fast meanwhile
    for _ in range(12):
        assert (await client.fetch(request, keys, 0.3)).failed_all
        await asyncio.sleep(0.3)
    with onfs_server(store_dir[0], *AUTH, port=port):
        back = time.monotonic()
        while (await client.fetch(request, keys, 0.2)).failures:
            assert time.monotonic() - back < 3.0
            await asyncio.sleep(0.02)
        recovered = time.monotonic() - back
    await client.close()
    assert recovered < 1.0, recovered
