"""Outbound TLS to OnFS: the client against ``inferflow-onfs serve --tls-*`` (real subprocess) with a
custom CA, a client certificate (mTLS) and a server-name override; certificates made in the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from inferflow_onfs.client import OnfsClient
from inferflow_onfs.settings import OnfsSettings
from onfs_support import fetch_request, onfs_server, pair_component

pytestmark = pytest.mark.integration
pytest.importorskip("cryptography")

from inferflow_core.testing.certs import CertAuthority  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("onfs_pki")
    ca = CertAuthority(root, "onfs")
    return {
        "ca": ca,
        "server": ca.issue("onfs-server", dns=("onfs.internal",), ips=()),
        "client": ca.issue("inferflow", client=True, dns=(), ips=()),
    }


@pytest.fixture(scope="module")
def tls_port(store_dir: tuple[Path, dict], pki: dict):
    server = pki["server"]
    args = ("--tls-cert", server.cert_file, "--tls-key", server.key_file, "--tls-client-ca", server.ca_file)
    with onfs_server(store_dir[0], "--auth-token", "secret", *args) as port:
        yield port


def _settings(port: int, pki: dict, **over: object) -> OnfsSettings:
    base = {
        "fs_host": "127.0.0.1", "fs_port": port, "caller_token": "secret", "deadline_ms": 3000,
        "tls_ca_file": pki["ca"].ca_file, "tls_cert_file": pki["client"].cert_file,
        "tls_key_file": pki["client"].key_file, "tls_server_name": "onfs.internal",
    }  # fmt: skip
    return OnfsSettings(**{**base, **over})


async def _fetch(settings: OnfsSettings):  # type: ignore[no-untyped-def]
    client = OnfsClient(settings)
    try:
        return await client.fetch(fetch_request(pair_component()), [("u0", "c1")], None)
    finally:
        await client.close()


async def test_mtls_with_custom_ca_and_server_name(tls_port: int, pki: dict) -> None:
    outcome = await _fetch(_settings(tls_port, pki))
    assert not outcome.failures
    assert outcome.frame.column(0)[1].tolist() == [True]


@pytest.mark.parametrize(
    "over",
    [
        {"tls_cert_file": "", "tls_key_file": ""},  # no client certificate: the server requires one
        {"tls_server_name": ""},  # the certificate names onfs.internal, not 127.0.0.1
        {"tls_ca_file": ""},  # system roots do not know our CA
    ],
)
async def test_each_tls_setting_matters(tls_port: int, pki: dict, over: dict) -> None:
    outcome = await _fetch(_settings(tls_port, pki, **over))
    assert outcome.failed_all
    assert "UNAVAILABLE" in outcome.failures[0][1]


def test_unusable_tls_settings_are_config_problems(pki: dict) -> None:
    plain = _settings(1, pki, fs_plaintext=True)
    assert any("plaintext" in msg for _, msg in plain.problems())
    half = _settings(1, pki, tls_key_file="")
    assert any("needs its key" in msg for _, msg in half.problems())
    missing = _settings(1, pki, tls_ca_file="/no/ca.pem")
    assert any("cannot read" in msg for _, msg in missing.problems())
    assert _settings(1, pki).problems() == []


def test_twin_server_compares_tokens_in_constant_time(monkeypatch) -> None:
    import hmac

    from inferflow_onfs import server

    seen: list[bytes] = []
    real = hmac.compare_digest
    monkeypatch.setattr(server.hmac, "compare_digest", lambda a, b: seen.append(a) or real(a, b))
    assert server._same("secret", "secret")
    assert not server._same("secreT", "secret")
    assert not server._same(None, "secret")
    assert not server._same(b"secret", "secret")
    assert seen == [b"secret", b"secreT"]
