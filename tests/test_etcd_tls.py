"""etcd over TLS against the real etcd (``--cert-file``/``--key-file``/``--trusted-ca-file``/
``--client-cert-auth``, https URLs), and refusal to start when TLS is requested but cannot be set up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferflow_core import cli
from inferflow_core._proto import predict_pb2_grpc
from inferflow_core.config.etcd_source import etcd_client, etcd_tls, parse_endpoint
from inferflow_core.config.settings import ServiceSettings
from inferflow_core.config.sources import read_config_dir, write_config_dir
from inferflow_core.push import push
from inferflow_core.serving.server import InferflowServer, make_source
from inferflow_core.testing.certs import CertAuthority
from inferflow_core.testing.etcd import EtcdProcess
from inferflow_core.testing.server import running_server
from inferflow_core.tls import TlsConfigError
from tests.serving_support import PREFIX, _wait_for, _with_value, make_runtime

pytestmark = pytest.mark.integration
pytest.importorskip("cryptography")


@pytest.fixture
def tls_etcd(tmp_path: Path) -> Iterator[dict[str, Any]]:
    ca = CertAuthority(tmp_path / "pki", "etcd")
    server = ca.issue("etcd-server", dns=("localhost", "etcd.internal"))
    client = ca.issue("inferflow", client=True, dns=(), ips=())
    etcd = EtcdProcess(tls=server, client=client)
    try:
        etcd.start()
    except RuntimeError as exc:
        etcd.cleanup()
        pytest.fail(f"cannot start etcd: {exc}")
    try:
        yield {"etcd": etcd, "ca": ca, "client": client, "dir": tmp_path}
    finally:
        etcd.cleanup()


def _settings(env: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "etcd_server": env["etcd"].url,
        "etcd_ca_file": env["ca"].ca_file,
        "etcd_cert_file": env["client"].cert_file,
        "etcd_key_file": env["client"].key_file,
        **over,
    }


async def test_serve_and_hot_reload_from_etcd_over_mtls(tls_etcd, tmp_path: Path) -> None:
    settings = _settings(tls_etcd, etcd_server_name="etcd.internal")
    tls = etcd_tls(ServiceSettings(**settings))
    assert tls is not None
    write_config_dir(tmp_path / "cfg", {PREFIX + "point": _with_value(0.5)})
    plan = await push(tls_etcd["etcd"].url, read_config_dir(tmp_path / "cfg"), dry_run=False, tls=tls)
    assert len(plan.added) == 1
    runtime = make_runtime(**settings)
    async with running_server(runtime, source=make_source(runtime)) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        await _wait_for(stub, 0.5, within=5.0)
        host, port = parse_endpoint(tls_etcd["etcd"].url)
        async with etcd_client(host, port, tls=tls) as client:
            await client.put(f"/config/{PREFIX}point".encode(), _with_value(0.25).encode())
        await _wait_for(stub, 0.25, within=5.0)


async def test_plaintext_client_cannot_read_tls_etcd(tls_etcd) -> None:
    """A plaintext connection is refused by etcd (the config never arrives; the server is not ready)."""
    runtime = make_runtime(etcd_server=tls_etcd["etcd"].endpoint)
    async with running_server(runtime, source=make_source(runtime)) as srv:
        await asyncio.sleep(0.5)
        assert not srv.server.readiness()[0]


async def test_etcd_without_our_client_certificate_is_not_a_downgrade(tls_etcd) -> None:
    runtime = make_runtime(etcd_server=tls_etcd["etcd"].url, etcd_ca_file=tls_etcd["ca"].ca_file)
    async with running_server(runtime, source=make_source(runtime)) as srv:
        await asyncio.sleep(0.5)
        assert not srv.server.readiness()[0]


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"etcd_server": "https://127.0.0.1:2379", "etcd_ca_file": "/no/ca.pem"}, "cannot read"),
        ({"etcd_server": "https://127.0.0.1:2379", "etcd_cert_file": "/no/c.pem"}, "needs its key"),
        ({"etcd_server": "http://127.0.0.1:2379", "etcd_server_name": "etcd"}, "http:// but TLS"),
        ({"etcd_server": "https://a:2379,http://b:2379"}, "mixes schemes"),
    ],
)
async def test_unusable_etcd_tls_refuses_to_start(settings: dict[str, Any], text: str) -> None:
    server = InferflowServer(make_runtime(**settings), 0, None, host="127.0.0.1")  # source from settings
    with pytest.raises(TlsConfigError, match=text):
        await server.start()
    await server.stop(0)


def test_serve_cli_refuses_with_one_clear_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ETCD_SERVER": "https://127.0.0.1:2379",
        "INFERFLOW_ETCD_CA_FILE": str(tmp_path / "missing-ca.pem"),
        "ETCD_PASSWORD": "s3cret-password",
        "ETCD_USERNAME": "root",
        "INFERFLOW_LOG_JSON": "false",
    }
    exe = Path(sys.executable).parent / "inferflow"
    done = subprocess.run(
        [str(exe), "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "cannot start" in out
    assert "missing-ca.pem" in out
    assert "Traceback" not in out
    assert "s3cret-password" not in out


def test_config_push_cli_refuses_unusable_tls(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ETCD_SERVER", "https://127.0.0.1:1")
    monkeypatch.setenv("INFERFLOW_ETCD_CERT_FILE", str(tmp_path / "c.pem"))
    write_config_dir(tmp_path, {PREFIX + "point": _with_value(0.5)})
    assert cli.main(["config", "push", str(tmp_path), "--dry-run"]) == 2
    assert "certificate needs its key" in capsys.readouterr().err


def test_bare_endpoint_with_tls_files_uses_tls_and_http_without_is_plaintext() -> None:
    assert etcd_tls(ServiceSettings(etcd_server="127.0.0.1:2379")) is None
    assert etcd_tls(ServiceSettings(etcd_server="http://127.0.0.1:2379")) is None
    got = etcd_tls(ServiceSettings(etcd_server="127.0.0.1:2379", etcd_server_name="etcd"))
    assert got is not None
    assert got.server_name == "etcd"
    assert etcd_tls(ServiceSettings(etcd_server="https://127.0.0.1:2379")) is not None  # system roots
